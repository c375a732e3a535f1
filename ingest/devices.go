package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// DeviceStatuses is where DeviceEvents learns device state changes (the device
// manager's status watch), keeping the latest status per device.
type DeviceStatuses interface {
	// Ready receives a value whenever changes may be waiting (coalesced).
	Ready() <-chan struct{}
	// Take returns the pending changes, the latest per device.
	Take() []telemetry.DeviceStatus
	// Squashed counts the intermediate states replaced by newer ones before
	// they were taken.
	Squashed() uint64
	// Close stops the watch.
	Close()
}

// DeviceEvents archives device state changes (connecting, connected, backoff,
// stopped, and restarts) into an EventWriter. Build it with NewDeviceEvents
// and run Serve. Its Serve goroutine alone reads the watch.
//
// The watch keeps the latest state per device, so when this reader falls behind
// a device's intermediate states can be squashed: that is never silent, it is
// recorded as a "squashed" event of source "switchyard" with the count.
type DeviceEvents struct {
	watch DeviceStatuses
	w     *EventWriter
	last  map[string]telemetry.DeviceStatus
}

// NewDeviceEvents returns a DeviceEvents that reads watch (and closes it when
// Serve returns) and records into w.
func NewDeviceEvents(watch DeviceStatuses, w *EventWriter) *DeviceEvents {
	return &DeviceEvents{watch: watch, w: w, last: map[string]telemetry.DeviceStatus{}}
}

// Serve records state changes until ctx ends.
func (d *DeviceEvents) Serve(ctx context.Context) error {
	defer d.watch.Close()
	var squashed uint64
	for {
		for _, st := range d.watch.Take() {
			if err := d.record(ctx, st); err != nil {
				return nil // ctx ended while the archive's queue was full
			}
		}
		if n := d.watch.Squashed(); n > squashed {
			if d.w.Record(ctx, Event{Source: telemetry.SystemDevice, Kind: "squashed",
				Message: fmt.Sprintf("%d device states were replaced by newer ones before they were archived", n-squashed)}) != nil {
				return nil
			}
			squashed = n
		}
		select {
		case <-ctx.Done():
			return nil
		case <-d.watch.Ready():
		}
	}
}

func (d *DeviceEvents) record(ctx context.Context, st telemetry.DeviceStatus) error {
	prev, seen := d.last[st.Device]
	d.last[st.Device] = st
	at := st.ChangedAt
	if at.IsZero() {
		at = time.Now()
	}
	if seen && st.Restarts > prev.Restarts {
		if err := d.w.Record(ctx, Event{TimeNs: at.UnixNano(), Source: st.Device, Kind: "restarted",
			Message: fmt.Sprintf("reconnection %d after a failure", st.Restarts), Detail: prev.LastError}); err != nil {
			return err
		}
	}
	if seen && st.State == prev.State {
		return nil
	}
	msg := st.State
	switch st.State {
	case "CONNECTED":
		msg += " " + st.Address
		if st.Identity != "" {
			msg += " (" + st.Identity + ")"
		}
	case "BACKOFF":
		if !st.NextAttempt.IsZero() {
			msg += ", next attempt " + st.NextAttempt.UTC().Format(time.RFC3339Nano)
		}
	}
	return d.w.Record(ctx, Event{TimeNs: at.UnixNano(), Source: st.Device, Kind: strings.ToLower(st.State),
		Message: msg, Detail: st.LastError})
}
