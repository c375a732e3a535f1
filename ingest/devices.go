package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
)

// DeviceEvents archives device state changes (connecting, connected, backoff,
// stopped, and restarts) from a devicemgr.StateWatch into an EventWriter. Build
// it with NewDeviceEvents and run Serve. Its Serve goroutine alone reads the
// watch.
//
// The watch keeps the latest state per device, so when this reader falls behind
// a device's intermediate states can be squashed: that is never silent, it is
// recorded as a "squashed" event of source "switchyard" with the count.
type DeviceEvents struct {
	watch *devicemgr.StateWatch
	w     *EventWriter
	last  map[string]devicemgr.Info
}

// NewDeviceEvents returns a DeviceEvents that reads watch (and closes it when
// Serve returns) and records into w.
func NewDeviceEvents(watch *devicemgr.StateWatch, w *EventWriter) *DeviceEvents {
	return &DeviceEvents{watch: watch, w: w, last: map[string]devicemgr.Info{}}
}

// Serve records state changes until ctx ends.
func (d *DeviceEvents) Serve(ctx context.Context) error {
	defer d.watch.Close()
	var squashed uint64
	for {
		for _, info := range d.watch.Take() {
			d.record(info)
		}
		if n := d.watch.Squashed(); n > squashed {
			_ = d.w.Record(Event{Source: "switchyard", Kind: "squashed",
				Message: fmt.Sprintf("%d device states were replaced by newer ones before they were archived", n-squashed)})
			squashed = n
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.watch.Ready():
		}
	}
}

func (d *DeviceEvents) record(info devicemgr.Info) {
	prev, seen := d.last[info.Name]
	d.last[info.Name] = info
	at := info.ChangedAt
	if at.IsZero() {
		at = time.Now()
	}
	if seen && info.Restarts > prev.Restarts {
		_ = d.w.Record(Event{TimeNs: at.UnixNano(), Source: info.Name, Kind: "restarted",
			Message: fmt.Sprintf("reconnection %d after a failure", info.Restarts), Detail: prev.LastError})
	}
	if seen && info.State == prev.State {
		return
	}
	msg := info.State.String()
	switch info.State {
	case devicemgr.Connected:
		msg += " " + info.Address
		if info.Identity != "" {
			msg += " (" + info.Identity + ")"
		}
	case devicemgr.Backoff:
		if !info.NextAttempt.IsZero() {
			msg += ", next attempt " + info.NextAttempt.UTC().Format(time.RFC3339Nano)
		}
	}
	_ = d.w.Record(Event{TimeNs: at.UnixNano(), Source: info.Name, Kind: strings.ToLower(info.State.String()),
		Message: msg, Detail: info.LastError})
}
