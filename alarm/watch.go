package alarm

import "sync"

// DefaultWatchCapacity bounds a Watch's queue when Options.WatchCapacity is zero.
const DefaultWatchCapacity = 4096

// Watch receives the transitions an Engine emits that its filter selects. Its queue
// is bounded: when full, the oldest transition is dropped and counted.
type Watch struct {
	engine *Engine
	match  func(*Transition) bool
	wake   chan struct{}

	mu      sync.Mutex
	q       []Transition
	cap     int
	dropped uint64
}

func (w *Watch) offer(t *Transition) {
	if w.match != nil && !w.match(t) {
		return
	}
	w.mu.Lock()
	if len(w.q) >= w.cap {
		w.q = w.q[1:]
		w.dropped++
	}
	w.q = append(w.q, *t)
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Ready receives a value whenever transitions may be waiting; drain with Take.
func (w *Watch) Ready() <-chan struct{} { return w.wake }

// Take returns the queued transitions in the order they happened.
func (w *Watch) Take() []Transition {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.q
	w.q = nil
	return out
}

// Dropped returns how many transitions this watch lost to overflow.
func (w *Watch) Dropped() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dropped
}

// Close stops the watch. It is idempotent.
func (w *Watch) Close() {
	w.engine.watchMu.Lock()
	delete(w.engine.watches, w)
	w.engine.watchMu.Unlock()
}
