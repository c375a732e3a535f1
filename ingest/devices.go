package ingest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// DeviceStatuses is where DeviceEvents learns device state changes (the device
// manager's status watch: devicemgr.StatusWatch of a WatchEvery, which keeps
// every change up to its bound).
type DeviceStatuses interface {
	// Ready receives a value whenever changes may be waiting (coalesced).
	Ready() <-chan struct{}
	// Take returns the pending changes in order.
	Take() []telemetry.DeviceStatus
	// Skipped counts the changes the watch did not hand out (squashed by a
	// newer state of the device, or dropped past its bound).
	Skipped() uint64
	// Close stops the watch.
	Close()
}

// DeviceEvents archives device state changes (connecting, connected, backoff,
// stopped, and restarts) into an EventWriter. Build it with NewDeviceEvents
// and run Serve. Its Serve goroutine alone reads the watch.
//
// Give it a watch that keeps every change (a WatchEvery), so that a device's
// quick succession of states (a restart: STOPPED, CONNECTING, CONNECTED within
// milliseconds) is archived whole. When this reader falls so far behind that
// the watch skips changes anyway, that is never silent: it is recorded as a
// "squashed" event of source "switchyard" with the count.
//
// Each change is one event of the device (source) whose kind is the state in
// lower case, its detail the last error, its message the state with the
// address and identity (CONNECTED) or the next attempt (BACKOFF); a change
// that came with a reconnection is preceded by a "restarted" event at the same
// time whose message holds the count. DeviceHistory reads them back.
type DeviceEvents struct {
	watch   DeviceStatuses
	w       *EventWriter
	last    map[string]telemetry.DeviceStatus
	skipped uint64 // of the watch, recorded so far
	syncs   chan chan struct{}
}

// NewDeviceEvents returns a DeviceEvents that reads watch (and closes it when
// Serve returns) and records into w.
func NewDeviceEvents(watch DeviceStatuses, w *EventWriter) *DeviceEvents {
	return &DeviceEvents{watch: watch, w: w, last: map[string]telemetry.DeviceStatus{}, syncs: make(chan chan struct{})}
}

// finalTimeout bounds how long Serve, once its context ended, tries to record
// the changes still waiting (the devices' last states at shutdown).
const finalTimeout = 5 * time.Second

// Serve records state changes until ctx ends, then records those still
// waiting (its EventWriter must still run; it is stopped after this).
func (d *DeviceEvents) Serve(ctx context.Context) error {
	defer d.watch.Close()
	for {
		if d.takeAll(ctx) != nil {
			return nil // ctx ended while the archive's queue was full
		}
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalTimeout)
			_ = d.takeAll(fctx)
			cancel()
			return nil
		case <-d.watch.Ready():
		case done := <-d.syncs:
			if d.takeAll(ctx) != nil {
				return nil
			}
			close(done)
		}
	}
}

// Sync returns once every change published to the watch before the call has
// been handed to the EventWriter, so that its Archived covers them. It waits
// for Serve, until ctx ends.
func (d *DeviceEvents) Sync(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case d.syncs <- done:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// takeAll records what the watch holds, and a "squashed" event for the
// states it skipped meanwhile.
func (d *DeviceEvents) takeAll(ctx context.Context) error {
	for _, st := range d.watch.Take() {
		if err := d.record(ctx, st); err != nil {
			return err
		}
	}
	if n := d.watch.Skipped(); n > d.skipped {
		if err := d.w.Record(ctx, Event{Source: telemetry.SystemDevice, Kind: kindSquashed,
			Message: fmt.Sprintf(squashedFormat, n-d.skipped)}); err != nil {
			return err
		}
		d.skipped = n
	}
	return nil
}

// The event kinds and messages DeviceEvents writes besides the states, and
// that DeviceHistory reads back.
const (
	kindRestarted   = "restarted"
	kindSquashed    = "squashed"
	restartedFormat = "reconnection %d after a failure"
	squashedFormat  = "%d device states were replaced by newer ones before they were archived"
	nextAttemptText = ", next attempt "
)

func (d *DeviceEvents) record(ctx context.Context, st telemetry.DeviceStatus) error {
	prev, seen := d.last[st.Device]
	d.last[st.Device] = st
	at := st.ChangedAt
	if at.IsZero() {
		at = time.Now()
	}
	if seen && st.Restarts > prev.Restarts {
		if err := d.w.Record(ctx, Event{TimeNs: at.UnixNano(), Source: st.Device, Kind: kindRestarted,
			Message: fmt.Sprintf(restartedFormat, st.Restarts), Detail: prev.LastError}); err != nil {
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
			msg += nextAttemptText + st.NextAttempt.UTC().Format(time.RFC3339Nano)
		}
	}
	return d.w.Record(ctx, Event{TimeNs: at.UnixNano(), Source: st.Device, Kind: strings.ToLower(st.State),
		Message: msg, Detail: st.LastError})
}

// DeviceChange is one archived device state change: the status DeviceEvents
// recorded, as far as its event says. ChangedAt has the archive's microsecond
// precision; Address and Identity are known for CONNECTED, NextAttempt for
// BACKOFF; Up is true for CONNECTED.
type DeviceChange struct {
	telemetry.DeviceStatus
	// Reconnected: the change came with a reconnection after a failure, and
	// Restarts is the device's count from then on. Otherwise Restarts is 0:
	// the archive records the count only when it grows.
	Reconnected bool
}

// DeviceHistory reads archived device state changes back (WatchDevices with
// since_ns). Build it with NewDeviceHistory. It is safe for concurrent use.
type DeviceHistory struct {
	log *Log[Event]
	de  *DeviceEvents
}

// NewDeviceHistory returns the history of the changes de archives (into its
// EventWriter's table at QuestDB's HTTP address).
func NewDeviceHistory(httpAddr string, de *DeviceEvents) (*DeviceHistory, error) {
	l, err := NewLog(httpAddr, de.w.Writer)
	if err != nil {
		return nil, err
	}
	return &DeviceHistory{log: l, de: de}, nil
}

// Settle returns once every state change published before the call is
// archived and visible to queries. It waits through QuestDB outages, until ctx
// ends.
func (h *DeviceHistory) Settle(ctx context.Context) error {
	if err := h.de.Sync(ctx); err != nil {
		return err
	}
	return h.log.Settle(ctx)
}

// Replay hands every archived state change from fromNs on to each, in time
// order, as Log.Replay does (retrying outages). It returns how many states
// the archive itself missed in that time ("squashed" events: DeviceEvents fell
// behind; their devices are not recorded).
func (h *DeviceHistory) Replay(ctx context.Context, fromNs int64, opts ReplayOptions, each func([]DeviceChange) error) (missed uint64, err error) {
	err = h.log.Replay(ctx, fromNs, opts, func(es []Event) error {
		changes, n := deviceChanges(es)
		missed += n
		if len(changes) == 0 {
			return nil
		}
		return each(changes)
	})
	return missed, err
}

// deviceChanges turns events into the changes they record, and counts the
// states the archive missed. A "restarted" event and its change have the same
// time and device, and Log.Replay never splits a microsecond between pages.
func deviceChanges(es []Event) (out []DeviceChange, missed uint64) {
	type key struct {
		us     int64
		device string
	}
	at := map[key]int{}       // index in out of a device's change at a time
	restarts := map[key]int{} // a "restarted" event's count
	for _, e := range es {
		k := key{e.TimeNs / 1000, e.Source}
		switch e.Kind {
		case kindRestarted:
			var n int
			if _, err := fmt.Sscanf(e.Message, restartedFormat, &n); err == nil {
				restarts[k] = n
			}
		case kindSquashed:
			var n uint64
			if _, err := fmt.Sscanf(e.Message, squashedFormat, &n); err == nil && e.Source == telemetry.SystemDevice {
				missed += n
			}
		case "connecting", "connected", "backoff", "stopped":
			at[k] = len(out)
			out = append(out, deviceChangeOf(&e))
		}
	}
	for k, n := range restarts {
		if i, ok := at[k]; ok {
			out[i].Restarts, out[i].Reconnected = n, true
		}
	}
	return out, missed
}

// deviceChangeOf is the change a state event records (the inverse of
// DeviceEvents.record).
func deviceChangeOf(e *Event) DeviceChange {
	st := telemetry.DeviceStatus{Device: e.Source, State: strings.ToUpper(e.Kind), LastError: e.Detail,
		ChangedAt: time.Unix(0, e.TimeNs)}
	rest := strings.TrimPrefix(e.Message, st.State)
	switch st.State {
	case "CONNECTED":
		st.Up = true
		addr, identity, _ := strings.Cut(strings.TrimPrefix(rest, " "), " (")
		st.Address, st.Identity = addr, strings.TrimSuffix(identity, ")")
	case "BACKOFF":
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimPrefix(rest, nextAttemptText)); err == nil {
			st.NextAttempt = t
		}
	case "STOPPED":
		st.Stopped = true
	}
	return DeviceChange{DeviceStatus: st}
}
