package alarm

import (
	"sync"

	"github.com/switchyard/switchyard/feed"
)

// DefaultWatchCapacity bounds a Watch's queue when Options.WatchCapacity is zero.
const DefaultWatchCapacity = 4096

// Watchers hands transitions to watches: an Engine's own, or, in a cluster,
// a node's view of every owner's transitions. Safe for concurrent use.
type Watchers struct {
	capacity int

	mu      sync.Mutex
	watches map[*Watch]struct{}
}

// NewWatchers returns a set of watches, each with a queue of capacity
// transitions (DefaultWatchCapacity when <= 0).
func NewWatchers(capacity int) *Watchers {
	if capacity <= 0 {
		capacity = DefaultWatchCapacity
	}
	return &Watchers{capacity: capacity, watches: map[*Watch]struct{}{}}
}

// Watch returns a new watch of the transitions match selects (all when nil).
// Close it when done.
func (ws *Watchers) Watch(match func(*Transition) bool) *Watch {
	w := &Watch{owner: ws, match: match, q: feed.New(feed.Options[Transition]{Policy: feed.DropOldest, Capacity: ws.capacity})}
	ws.mu.Lock()
	ws.watches[w] = struct{}{}
	ws.mu.Unlock()
	return w
}

// Offer hands a transition to every watch that selects it. It never blocks.
func (ws *Watchers) Offer(t *Transition) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for w := range ws.watches {
		w.offer(t)
	}
}

// Watch receives the transitions its Watchers are offered that its filter
// selects. Its queue is bounded (a feed.Queue): when full, the oldest
// transition is dropped and counted.
type Watch struct {
	owner *Watchers
	match func(*Transition) bool
	q     *feed.Queue[Transition]
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

// Dropped returns how many transitions this watch lost to overflow.
func (w *Watch) Dropped() uint64 { return w.q.Dropped() }

// Close stops the watch. It is idempotent.
func (w *Watch) Close() {
	w.owner.mu.Lock()
	delete(w.owner.watches, w)
	w.owner.mu.Unlock()
	w.q.Close()
}
