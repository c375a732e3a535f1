package devicemgr

import (
	"sync"

	"github.com/switchyard/switchyard/feed"
	"github.com/switchyard/switchyard/telemetry"
)

// stateFeedKeys bounds a watcher's queue: one entry per device at most, so it
// is reached only by more devices than any configuration holds.
const stateFeedKeys = 1 << 20

// StateFeed fans device state changes out to watchers. A watcher (Watch) keeps
// only the latest Info per device (a feed.LatestPerKey queue), so a slow
// watcher skips intermediate states but always ends on the current one; one
// made with WatchEvery keeps every change up to a bound. A publisher never
// blocks. The zero value is ready.
type StateFeed struct {
	mu       sync.Mutex
	watchers map[*StateWatch]struct{}
}

// Publish records a device's new state for every watcher. It never blocks.
func (f *StateFeed) Publish(info Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		w.q.Offer(info)
	}
}

// Watch returns a new watcher. Close it when done.
func (f *StateFeed) Watch() *StateWatch {
	return f.add(&StateWatch{feed: f, q: feed.NewKeyed(feed.Options[Info]{Policy: feed.LatestPerKey, Capacity: stateFeedKeys},
		func(i *Info) string { return i.Name })})
}

// DefaultWatchEveryCapacity bounds a WatchEvery watcher's queue when its
// capacity is not positive.
const DefaultWatchEveryCapacity = 4096

// WatchEvery returns a watcher that keeps every change, in order, not only the
// latest per device: past capacity (DefaultWatchEveryCapacity when not
// positive) it drops the oldest, counted in Skipped. It is for a reader that
// must not skip intermediate states (a WatchDevices replay joined to the live
// changes). Close it when done.
func (f *StateFeed) WatchEvery(capacity int) *StateWatch {
	if capacity <= 0 {
		capacity = DefaultWatchEveryCapacity
	}
	return f.add(&StateWatch{feed: f, q: feed.New(feed.Options[Info]{Policy: feed.DropOldest, Capacity: capacity})})
}

func (f *StateFeed) add(w *StateWatch) *StateWatch {
	f.mu.Lock()
	if f.watchers == nil {
		f.watchers = make(map[*StateWatch]struct{})
	}
	f.watchers[w] = struct{}{}
	f.mu.Unlock()
	return w
}

// StateWatch receives device state changes from a StateFeed.
type StateWatch struct {
	feed *StateFeed
	q    *feed.Queue[Info]
}

// Ready receives a value whenever changes may be waiting; drain with Take.
func (w *StateWatch) Ready() <-chan struct{} { return w.q.Ready() }

// Take returns the pending changes: of a Watch the latest per device, in the
// order each device's first pending change arrived; of a WatchEvery each one,
// in order.
func (w *StateWatch) Take() []Info { return w.q.Drain(make([]Info, 0, w.q.Len()), 0) }

// Squashed returns how many intermediate states this watcher skipped because a newer
// state of the same device arrived before it took the older one.
func (w *StateWatch) Squashed() uint64 { return w.q.Squashed() }

// Skipped returns how many changes this watcher did not hand out: squashed
// (Watch) or dropped past its bound (WatchEvery).
func (w *StateWatch) Skipped() uint64 { return w.q.Squashed() + w.q.Dropped() }

// Close stops the watcher. It is idempotent.
func (w *StateWatch) Close() {
	w.feed.mu.Lock()
	delete(w.feed.watchers, w)
	w.feed.mu.Unlock()
	w.q.Close()
}

// Status is the device's state as the consumers of its telemetry see it.
func (i Info) Status() telemetry.DeviceStatus {
	return telemetry.DeviceStatus{
		Device: i.Name, State: i.State.String(),
		Up:      i.State == Connected || i.State == Connecting && i.Restarts == 0 && i.LastError == "",
		Stopped: i.State == Stopped, Removed: i.Removed,
		Address: i.Address, Identity: i.Identity, LastError: i.LastError, Restarts: i.Restarts,
		ChangedAt: i.ChangedAt, NextAttempt: i.NextAttempt,
	}
}

// StatusWatch is a StateWatch that hands out each device's telemetry.DeviceStatus
// instead of its whole Info: what the alarm engine and the device-event archive
// take.
type StatusWatch struct{ *StateWatch }

// WatchStatus returns a new watcher of device status changes. Close it when done.
func (m *Manager) WatchStatus() StatusWatch { return StatusWatch{m.WatchStates()} }

// WatchStatusEvery returns a new watcher of every device status change, in
// order, up to capacity (see StateFeed.WatchEvery): what the device-event
// archive takes, so that no state is left out. Close it when done.
func (m *Manager) WatchStatusEvery(capacity int) StatusWatch {
	return StatusWatch{m.WatchEvery(capacity)}
}

// Take returns the pending changes (see StateWatch.Take).
func (w StatusWatch) Take() []telemetry.DeviceStatus {
	infos := w.StateWatch.Take()
	out := make([]telemetry.DeviceStatus, len(infos))
	for i := range infos {
		out[i] = infos[i].Status()
	}
	return out
}
