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

	mu        sync.Mutex
	watches   map[*Watch]struct{}
	ordered   bool  // offered transitions in time order (one Engine's); see Watch.After
	offeredUs int64 // the time of the newest transition offered (µs); see Watch.After
}

// NewWatchers returns a set of watches, each with a queue of capacity
// transitions (DefaultWatchCapacity when <= 0).
func NewWatchers(capacity int) *Watchers {
	if capacity <= 0 {
		capacity = DefaultWatchCapacity
	}
	return &Watchers{capacity: capacity, watches: map[*Watch]struct{}{}}
}

// orderedFrom says the transitions offered come in time order, unique, all
// later than us (an Engine's, us its start): a watch's After is then a join
// point.
func (ws *Watchers) orderedFrom(us int64) {
	ws.mu.Lock()
	ws.ordered, ws.offeredUs = true, us
	ws.mu.Unlock()
}

// Watch returns a new watch of the transitions match selects (all when nil).
// Close it when done.
func (ws *Watchers) Watch(match func(*Transition) bool) *Watch {
	w := &Watch{owner: ws, match: match, q: feed.New(feed.Options[Transition]{Policy: feed.DropOldest, Capacity: ws.capacity})}
	ws.mu.Lock()
	ws.watches[w] = struct{}{}
	w.after, w.ordered = ws.offeredUs, ws.ordered
	ws.mu.Unlock()
	return w
}

// Offer hands a transition to every watch that selects it. It never blocks.
func (ws *Watchers) Offer(t *Transition) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	ws.offeredUs = t.Time.UnixMicro()
	for w := range ws.watches {
		w.offer(t)
	}
}

// Watch receives the transitions its Watchers are offered that its filter
// selects. Its queue is bounded (a feed.Queue): when full, the oldest
// transition is dropped and counted.
type Watch struct {
	owner   *Watchers
	match   func(*Transition) bool
	q       *feed.Queue[Transition]
	after   int64 // see After
	ordered bool
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
// its Watchers had been offered when this watch was made, or the engine's
// start if none, and ok true, for an Engine's watch: its transition times are
// unique and increasing, so the watch gets exactly the transitions after that
// time that its filter selects (but those it drops), and it is the point from
// which a replay (WatchAlarms since_ns) completes the watch. Watchers fed from
// several sources (a cluster node's view of every owner's transitions) are
// offered transitions out of time order: ok is false, there is no such point.
func (w *Watch) After() (us int64, ok bool) { return w.after, w.ordered }

// Dropped returns how many transitions this watch lost to overflow.
func (w *Watch) Dropped() uint64 { return w.q.Dropped() }

// Close stops the watch. It is idempotent.
func (w *Watch) Close() {
	w.owner.mu.Lock()
	delete(w.owner.watches, w)
	w.owner.mu.Unlock()
	w.q.Close()
}
