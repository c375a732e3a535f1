package devicemgr

import "sync"

// StateFeed fans device state changes out to watchers. A watcher keeps only the
// latest Info per device, so a slow watcher skips intermediate states but always
// ends on the current one, and a publisher never blocks. The zero value is ready.
type StateFeed struct {
	mu       sync.Mutex
	watchers map[*StateWatch]struct{}
}

// Publish records a device's new state for every watcher. It never blocks.
func (f *StateFeed) Publish(info Info) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for w := range f.watchers {
		w.offer(info)
	}
}

// Watch returns a new watcher. Close it when done.
func (f *StateFeed) Watch() *StateWatch {
	w := &StateWatch{feed: f, wake: make(chan struct{}, 1), pending: make(map[string]Info)}
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
	wake chan struct{}

	mu      sync.Mutex
	pending map[string]Info
	order   []string // device names in the order their first pending change arrived
	squash  uint64
}

func (w *StateWatch) offer(info Info) {
	w.mu.Lock()
	if _, ok := w.pending[info.Name]; ok {
		w.squash++
	} else {
		w.order = append(w.order, info.Name)
	}
	w.pending[info.Name] = info
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Ready receives a value whenever changes may be waiting; drain with Take.
func (w *StateWatch) Ready() <-chan struct{} { return w.wake }

// Take returns the pending changes, the latest per device, in arrival order.
func (w *StateWatch) Take() []Info {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]Info, 0, len(w.order))
	for _, name := range w.order {
		out = append(out, w.pending[name])
	}
	clear(w.pending)
	w.order = w.order[:0]
	return out
}

// Squashed returns how many intermediate states this watcher skipped because a newer
// state of the same device arrived before it took the older one.
func (w *StateWatch) Squashed() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.squash
}

// Close stops the watcher. It is idempotent.
func (w *StateWatch) Close() {
	w.feed.mu.Lock()
	delete(w.feed.watchers, w)
	w.feed.mu.Unlock()
}
