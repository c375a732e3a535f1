package feed

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Policy is what a Queue does with an item that arrives when it is full.
type Policy uint8

const (
	// DropOldest discards the oldest queued items, counted in Dropped.
	DropOldest Policy = iota
	// Squash reduces the queue to the latest item of each key (counted in
	// Squashed), then drops the oldest if that is not enough.
	Squash
	// LatestPerKey keeps one item per key, replacing a queued one in place.
	LatestPerKey
	// Lossless never drops: TryPush refuses what does not fit, Push waits.
	Lossless
)

var policyNames = [...]string{"drop_oldest", "squash", "latest_per_key", "lossless"}

// String returns the policy's name as used in logs and metrics.
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

// Default bounds.
const (
	DefaultCapacity         = 4096
	DefaultLosslessCapacity = 1 << 20
)

// Errors.
var (
	// ErrClosed is returned by Push to a closed queue.
	ErrClosed = errors.New("feed: queue closed")
	// ErrStalled is the error of a queue that ended itself because its
	// consumer did not take anything for Options.StallAfter while it was full.
	ErrStalled = errors.New("feed: consumer stalled")
)

// Options configures a Queue. The zero value is a DropOldest queue of
// DefaultCapacity items.
type Options[T any] struct {
	// Policy on overflow. Default DropOldest.
	Policy Policy
	// Capacity bounds the items queued. Default DefaultCapacity, or
	// DefaultLosslessCapacity for Lossless.
	Capacity int
	// MaxBytes bounds the bytes queued, as Size counts them. Default 0: no
	// byte bound. A single item larger than MaxBytes is still queued alone; a
	// Lossless queue drains items while it holds less than MaxBytes.
	MaxBytes int64
	// Size is an item's size in bytes for MaxBytes. Required with MaxBytes.
	Size func(*T) int64
	// StallAfter ends the queue (ErrStalled) when a push finds it full and
	// nothing was taken for this long. Default 0: never.
	StallAfter time.Duration
	// OnStall, if set, is called once when the queue ends itself, on the
	// goroutine of the push that noticed; it must not block.
	OnStall func()
	// Now is the clock of stall detection. Default time.Now.
	Now func() time.Time
}

// Stats is a snapshot of a queue's counters.
type Stats struct {
	Len      int
	Bytes    int64
	Dropped  uint64 // items discarded by DropOldest (or Squash/LatestPerKey past the bound)
	Squashed uint64 // items replaced by a later item of their key
	Drains   uint64 // calls to Drain, so a watcher can tell a consumer that stopped
	// Waits counts the waits for room of Lossless producers (from when each
	// began) and Waited their total length once over; Refused counts items
	// TryPush did not take.
	Waits   uint64
	Waited  time.Duration
	Refused uint64
	// FullFor is how long the queue has been at its bound with no Drain (zero
	// when not full or taken since).
	FullFor time.Duration
	Closed  bool
}

// Queue is a bounded queue with an overflow policy; see the package doc.
type Queue[T any] struct {
	opts    Options[T]
	keyer   keyer[T] // nil for New's queues
	indexed bool     // LatestPerKey: keyer tracks each key's position
	wake    chan struct{}

	mu       sync.Mutex
	tmp      T   // offerLocked's copy of the item offered
	buf      []T // ring of len(buf) slots
	head, n  int
	taken    int64 // items ever removed from the head (taken or dropped), for keyer positions
	bytes    int64
	dropped  uint64
	squashed uint64
	drains   uint64
	waits    uint64
	waited   time.Duration
	refused  uint64
	full     time.Time     // when a push first found the queue full since the last Drain; zero if not
	room     chan struct{} // closed when room is made or the queue closes; nil when nobody waits
	closed   bool
	err      error
}

// New returns a queue of the DropOldest or Lossless policy.
func New[T any](opts Options[T]) *Queue[T] {
	if opts.Policy == Squash || opts.Policy == LatestPerKey {
		panic("feed: " + opts.Policy.String() + " needs a key: use NewKeyed")
	}
	return newQueue(opts, nil)
}

// NewKeyed returns a queue whose items have a key: any policy, Squash and
// LatestPerKey use the key.
func NewKeyed[T any, K comparable](opts Options[T], key func(*T) K) *Queue[T] {
	return newQueue[T](opts, &keyed[T, K]{key: key})
}

func newQueue[T any](opts Options[T], k keyer[T]) *Queue[T] {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
		if opts.Policy == Lossless {
			opts.Capacity = DefaultLosslessCapacity
		}
	}
	if opts.MaxBytes > 0 && opts.Size == nil {
		panic("feed: MaxBytes needs Size")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Queue[T]{opts: opts, keyer: k, indexed: opts.Policy == LatestPerKey, wake: make(chan struct{}, 1)}
}

// Policy returns the queue's policy.
func (q *Queue[T]) Policy() Policy { return q.opts.Policy }

// Capacity returns the queue's bound in items.
func (q *Queue[T]) Capacity() int { return q.opts.Capacity }

// Ready receives a value whenever items may be waiting (coalesced).
func (q *Queue[T]) Ready() <-chan struct{} { return q.wake }

func (q *Queue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// isFull reports whether an item of sz bytes would pass a bound. A Lossless
// queue drains an item while it holds less than MaxBytes (so it may pass the
// byte bound by one item, and a producer waiting for room never spins); the
// others make room for the whole item. q.mu held.
func (q *Queue[T]) isFull(sz int64) bool {
	if q.n >= q.opts.Capacity {
		return true
	}
	if q.opts.MaxBytes <= 0 || q.n == 0 {
		return false
	}
	if q.opts.Policy == Lossless {
		return q.bytes >= q.opts.MaxBytes
	}
	return q.bytes+sz > q.opts.MaxBytes
}

func (q *Queue[T]) size(v *T) int64 {
	if q.opts.Size == nil {
		return 0
	}
	return q.opts.Size(v)
}

// at returns the slot of the i-th queued item. q.mu held.
func (q *Queue[T]) at(i int) *T { return &q.buf[(q.head+i)%len(q.buf)] }

// appendLocked queues v, growing the ring as needed. q.mu held.
func (q *Queue[T]) appendLocked(v *T) {
	if q.n == len(q.buf) {
		q.grow()
	}
	*q.at(q.n) = *v
	q.n++
	if q.opts.Size != nil {
		q.bytes += q.opts.Size(v)
	}
	if q.indexed {
		q.keyer.store(v, q.taken+int64(q.n-1))
	}
}

func (q *Queue[T]) grow() {
	size := min(max(2*len(q.buf), 16), q.opts.Capacity)
	if size <= len(q.buf) {
		size = len(q.buf) + 1
	}
	nb := make([]T, size)
	for i := range q.n {
		nb[i] = *q.at(i)
	}
	q.buf, q.head = nb, 0
}

// popLocked removes the oldest item into dst (if not nil). q.mu held; q.n > 0.
func (q *Queue[T]) popLocked(dst *T) {
	slot := q.at(0)
	if q.opts.Size != nil {
		q.bytes -= q.opts.Size(slot)
	}
	if q.indexed {
		q.keyer.forget(slot, q.taken)
	}
	if dst != nil {
		*dst = *slot
	}
	var zero T
	*slot = zero
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	q.taken++
}

// makeRoom applies the overflow policy to a full queue so one more item fits,
// and reports whether it does (never for Lossless). q.mu held.
func (q *Queue[T]) makeRoom(v *T) bool {
	sz := q.size(v)
	if !q.isFull(sz) {
		return true
	}
	q.noteFull()
	if q.closed {
		return false
	}
	if q.opts.Policy == Lossless {
		return false
	}
	if q.opts.Policy == Squash {
		q.squash()
	}
	for q.n > 0 && q.isFull(sz) {
		q.popLocked(nil)
		q.dropped++
	}
	return true
}

// noteFull dates the start of a full period and ends a queue that has been
// full with no Drain for StallAfter. q.mu held.
func (q *Queue[T]) noteFull() {
	now := q.opts.Now()
	if q.full.IsZero() {
		q.full = now
		return
	}
	if q.opts.StallAfter > 0 && !q.closed && now.Sub(q.full) >= q.opts.StallAfter {
		q.closeLocked(ErrStalled)
		if q.opts.OnStall != nil {
			q.opts.OnStall() // under q.mu, as documented: it must not block
		}
	}
}

// squash reduces the queue to the latest item of each key, in place. Only
// Squash queues call it, whose keyer keeps no positions. q.mu held.
func (q *Queue[T]) squash() {
	if q.head+q.n > len(q.buf) {
		q.linearize()
	}
	items := q.buf[q.head : q.head+q.n]
	kept := q.keyer.squash(items)
	removed := q.n - len(kept)
	q.n = len(kept)
	q.taken += int64(removed)
	q.squashed += uint64(removed)
	if q.opts.Size != nil {
		q.bytes = 0
		for i := range kept {
			q.bytes += q.opts.Size(&kept[i])
		}
	}
}

// linearize moves the queued items to the start of a fresh ring. q.mu held.
func (q *Queue[T]) linearize() {
	nb := make([]T, len(q.buf))
	for i := range q.n {
		nb[i] = *q.at(i)
	}
	q.buf, q.head = nb, 0
}

// offerLocked queues one item under the policy and reports whether it was
// taken (only Lossless and closed queues refuse). q.mu held.
func (q *Queue[T]) offerLocked(in *T) bool {
	if q.closed {
		return false
	}
	// The key and size functions see a copy inside the queue, so that the
	// caller's item does not escape to the heap through them (the telemetry
	// hub offers items built on its stack).
	q.tmp = *in
	v := &q.tmp
	defer func() { q.tmp = *new(T) }()
	if q.opts.Policy == LatestPerKey {
		if pos, ok := q.keyer.lookup(v); ok {
			slot := q.at(int(pos - q.taken))
			if q.opts.Size != nil {
				q.bytes += q.opts.Size(v) - q.opts.Size(slot)
			}
			*slot = *v
			q.squashed++
			return true
		}
	}
	if !q.makeRoom(v) {
		return false
	}
	q.appendLocked(v)
	return true
}

// Offer queues items under the policy without ever waiting, and returns how
// many it took: all of them, except for a Lossless queue, which takes what fits
// (in order) and counts the first it refused as Refused, and a closed queue,
// which takes none.
func (q *Queue[T]) Offer(items ...T) int {
	b := q.Begin()
	n := 0
	for n < len(items) && b.Offer(&items[n]) {
		n++
	}
	b.End()
	return n
}

// Batch is a run of offers under one hold of the queue's lock, for a producer
// that builds items one by one and must not allocate (the telemetry hub). Get
// one with Begin, offer, and End it; nothing else may be done with the queue
// in between on that goroutine.
type Batch[T any] struct {
	q                 *Queue[T]
	offered           bool
	dropped, squashed uint64
}

// Begin locks the queue for a run of offers; End unlocks it.
func (q *Queue[T]) Begin() Batch[T] {
	q.mu.Lock()
	return Batch[T]{q: q, dropped: q.dropped, squashed: q.squashed}
}

// Offer queues *v under the policy and reports whether it was taken (a full
// Lossless queue refuses and counts it as Refused; a closed queue refuses).
func (b *Batch[T]) Offer(v *T) bool {
	if !b.q.offerLocked(v) {
		if !b.q.closed {
			b.q.refused++
		}
		return false
	}
	b.offered = true
	return true
}

// Force queues *v like Offer, except that a Lossless queue takes it past its
// bound: for the few items a producer must never wait for. It refuses only on a
// closed queue.
func (b *Batch[T]) Force(v *T) bool {
	q := b.q
	if q.opts.Policy != Lossless {
		return b.Offer(v)
	}
	if q.closed {
		return false
	}
	q.tmp = *v
	q.appendLocked(&q.tmp)
	q.tmp = *new(T)
	b.offered = true
	return true
}

// End unlocks the queue, wakes the consumer if anything was queued, and
// returns what the run cost: items dropped and squashed by the policy, and
// whether the queue is closed.
func (b *Batch[T]) End() (dropped, squashed uint64, closed bool) {
	q := b.q
	dropped, squashed, closed = q.dropped-b.dropped, q.squashed-b.squashed, q.closed
	q.mu.Unlock()
	if b.offered {
		q.signal()
	}
	return dropped, squashed, closed
}

// TryPush is Offer for a Lossless queue, named for what it promises: it drains
// what fits and returns the rest, never waiting.
func (q *Queue[T]) TryPush(items ...T) (rest []T) {
	return items[q.Offer(items...):]
}

// Push queues every item, waiting for room while a Lossless queue is full
// (back-pressure), and returns nil; ErrClosed (or the queue's stall error) if
// the queue is closed first; context.Cause(ctx) if ctx ends first, with the
// items not yet queued left out. On other policies it never waits.
func (q *Queue[T]) Push(ctx context.Context, items ...T) error {
	for len(items) > 0 {
		k := q.Offer(items...)
		items = items[k:]
		if len(items) == 0 {
			return nil
		}
		if err := q.WaitRoom(ctx); err != nil {
			return err
		}
	}
	return nil
}

// WaitRoom waits until the queue has room for one more item (at once if it
// has), the queue is closed (its error: ErrClosed or ErrStalled) or ctx ends
// (context.Cause). The time spent is counted in Stats.Waits and Waited.
func (q *Queue[T]) WaitRoom(ctx context.Context) error {
	var start time.Time
	for {
		q.mu.Lock()
		if q.closed {
			err := q.err
			q.mu.Unlock()
			return err
		}
		if !q.isFull(0) {
			if !start.IsZero() {
				q.waited += time.Since(start)
			}
			q.mu.Unlock()
			return nil
		}
		if start.IsZero() {
			start = time.Now()
			q.waits++ // counted when it starts: a watcher sees a producer held back now
		}
		if q.room == nil {
			q.room = make(chan struct{})
		}
		room := q.room
		q.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			q.mu.Lock()
			q.waited += time.Since(start)
			q.mu.Unlock()
			return context.Cause(ctx)
		}
	}
}

// freeRoom wakes the producers waiting for room. q.mu held.
func (q *Queue[T]) freeRoom() {
	if q.room != nil {
		close(q.room)
		q.room = nil
	}
}

// Drain appends up to max queued items (all when max <= 0) to dst, oldest
// first, and returns it. It leaves a wake-up behind when items remain.
func (q *Queue[T]) Drain(dst []T, max int) []T { return q.DrainBytes(dst, max, 0) }

// DrainBytes is Drain that also stops once the items taken add up to maxBytes
// or more, as Options.Size counts them (maxBytes <= 0: no byte bound). It takes
// at least one item when any is queued, so a consumer always gets on.
func (q *Queue[T]) DrainBytes(dst []T, max int, maxBytes int64) []T {
	q.mu.Lock()
	k := q.n
	if max > 0 && k > max {
		k = max
	}
	bounded := maxBytes > 0 && q.opts.Size != nil
	var took int
	for bytes := int64(0); took < k && (!bounded || bytes < maxBytes); took++ {
		dst = append(dst, *new(T))
		q.popLocked(&dst[len(dst)-1])
		if bounded {
			bytes += q.opts.Size(&dst[len(dst)-1])
		}
	}
	q.drains++
	q.full = time.Time{}
	if took > 0 {
		q.freeRoom()
	}
	if q.n == 0 && len(q.buf) > 1<<16 {
		q.buf, q.head = nil, 0 // give back the memory of a burst
	}
	left := q.n > 0
	q.mu.Unlock()
	if left {
		q.signal()
	}
	return dst
}

// Len returns how many items are queued.
func (q *Queue[T]) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n
}

// Dropped returns how many items the policy discarded.
func (q *Queue[T]) Dropped() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dropped
}

// Squashed returns how many items were replaced by a later item of their key.
func (q *Queue[T]) Squashed() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.squashed
}

// Stats returns the queue's counters.
func (q *Queue[T]) Stats() Stats {
	q.mu.Lock()
	defer q.mu.Unlock()
	st := Stats{
		Len: q.n, Bytes: q.bytes, Dropped: q.dropped, Squashed: q.squashed, Drains: q.drains,
		Waits: q.waits, Waited: q.waited, Refused: q.refused, Closed: q.closed,
	}
	if !q.full.IsZero() {
		st.FullFor = q.opts.Now().Sub(q.full)
	}
	return st
}

// Close ends the queue: pushes are refused and waiting producers return
// ErrClosed; queued items stay takeable. A Ready wake-up is left, so a
// consumer waiting on it sees the end. Close is idempotent.
func (q *Queue[T]) Close() {
	q.mu.Lock()
	q.closeLocked(ErrClosed)
	q.mu.Unlock()
	q.signal()
}

func (q *Queue[T]) closeLocked(err error) {
	if q.closed {
		return
	}
	q.closed, q.err = true, err
	q.freeRoom()
}

// Err returns nil while the queue is open, then ErrClosed, or ErrStalled if it
// ended itself.
func (q *Queue[T]) Err() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}
