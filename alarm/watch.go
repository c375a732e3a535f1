package alarm

import "github.com/switchyard/switchyard/feed"

// DefaultWatchCapacity bounds a Watch's queue when Options.WatchCapacity is zero.
const DefaultWatchCapacity = 4096

// Watch receives the transitions an Engine emits that its filter selects. Its queue
// is bounded (a feed.Queue): when full, the oldest transition is dropped and counted.
type Watch struct {
	engine *Engine
	match  func(*Transition) bool
	q      *feed.Queue[Transition]
	after  int64 // see After
}

func newWatch(e *Engine, match func(*Transition) bool, capacity int) *Watch {
	return &Watch{engine: e, match: match, q: feed.New(feed.Options[Transition]{Policy: feed.DropOldest, Capacity: capacity})}
}

func (w *Watch) offer(t *Transition) {
	if w.match != nil && !w.match(t) {
		return
	}
	w.q.Offer(*t)
}

// Ready receives a value whenever transitions may be waiting; drain with Take.
func (w *Watch) Ready() <-chan struct{} { return w.q.Ready() }

// Take returns the queued transitions in the order they happened.
func (w *Watch) Take() []Transition { return w.q.Drain(nil, 0) }

// After returns the time (µs since the Unix epoch) of the newest transition
// the engine had handed to its watches when this one was made, or the
// engine's start if none: the watch gets exactly the transitions after it that
// its filter selects (but those it drops). Transition times are unique and increasing, so it is the
// point from which a replay (WatchAlarms since_ns) completes the watch.
func (w *Watch) After() int64 { return w.after }

// Dropped returns how many transitions this watch lost to overflow.
func (w *Watch) Dropped() uint64 { return w.q.Dropped() }

// Close stops the watch. It is idempotent.
func (w *Watch) Close() {
	w.engine.watchMu.Lock()
	delete(w.engine.watches, w)
	w.engine.watchMu.Unlock()
	w.q.Close()
}
