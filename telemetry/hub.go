package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/feed"
)

// Policy is what a subscription does when its queue is full.
type Policy uint8

const (
	// DropOldest discards the oldest queued sample and counts it.
	DropOldest Policy = iota
	// Lossless never drops: when its queue is at its bound (Capacity, default
	// feed.DefaultLosslessCapacity), Publish waits until the consumer makes
	// room (back-pressure on the publisher), counted as a wait.
	Lossless
	// Squash keeps every sample while the queue has room; when it is full it
	// squashes the queue to the latest sample of each channel (in the order of
	// those latest samples) and counts the samples it removed (Squashed). A live
	// viewer so always ends on the latest value of every channel. Only when the
	// queue holds more channels than it has room for does it drop the oldest
	// sample, counted as Dropped.
	Squash
)

var policyNames = [...]string{"drop_oldest", "lossless", "squash"}

// String returns the policy's name as used in logs and status: "drop_oldest",
// "lossless" or "squash".
func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return "unknown"
}

func (p Policy) feed() feed.Policy {
	switch p {
	case Lossless:
		return feed.Lossless
	case Squash:
		return feed.Squash
	}
	return feed.DropOldest
}

// ErrStalled ends a subscription whose queue stayed full with nothing drained
// for SubscribeOptions.StallAfter (Subscription.Err).
var ErrStalled = errors.New("subscriber stalled: its queue stayed full and unread")

// SubscribeOptions configures a Subscription. The zero value is a DropOldest
// subscription to every sample with room for 4096 samples.
type SubscribeOptions struct {
	// Name identifies the subscriber in metrics and logs. Default "anonymous".
	Name string
	// Peer says who is at the other end (an API client's address), for logs and
	// the Watchdog's status; it is not a metric label. Default none.
	Peer string
	// Capacity bounds the queue in samples. Default 4096; for Lossless
	// feed.DefaultLosslessCapacity (about a million).
	Capacity int
	// MaxBytes bounds the queue in bytes (SampleSize of each sample): past it
	// the policy applies as at Capacity. Default 0: no byte bound.
	MaxBytes int64
	// StallAfter ends the subscription with ErrStalled when its queue has been
	// full this long with nothing drained (a consumer that stopped reading).
	// Default 0: never.
	StallAfter time.Duration
	// OnStall, if set, is called once when the subscription ends itself
	// (ErrStalled), on a publisher's goroutine; it must not block. Default none.
	OnStall func()
	// Policy on overflow. Default DropOldest.
	Policy Policy
	// Match selects samples; nil selects all. It runs on the publisher's goroutine,
	// so it must be cheap and must not block.
	Match func(*Sample) bool
	// Now is the clock of stall detection. Default time.Now.
	Now func() time.Time
}

// SampleSize is what a queued sample counts against SubscribeOptions.MaxBytes:
// the struct and the bytes of its strings.
func SampleSize(s *Sample) int64 {
	return int64(unsafe.Sizeof(*s)) + int64(len(s.Device)+len(s.Channel)+len(s.Err)+len(s.Value.S))
}

// Hub fans samples out to subscriptions. The zero value is not usable; call NewHub.
type Hub struct {
	mu   sync.Mutex                      // guards writes to subs
	subs atomic.Pointer[[]*Subscription] // copy-on-write list read by Publish

	// latest holds each channel's most recent sample. A channel's slot is
	// written by its publisher (one device goroutine) under the slot's own
	// lock, so publishers of different channels share no lock.
	latest ChannelIndex[*latestSlot]

	published prometheus.Counter
	dropped   *prometheus.CounterVec
	squashed  *prometheus.CounterVec
	depth     *prometheus.GaugeVec
	waits     *prometheus.CounterVec
}

// NewHub returns a hub whose metrics are registered with reg (nil registers nothing).
func NewHub(reg prometheus.Registerer) *Hub {
	h := &Hub{
		published: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_hub_published_samples_total",
			Help: "Samples published into the telemetry hub.",
		}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hub_dropped_samples_total",
			Help: "Samples a DropOldest subscription lost because its queue was full.",
		}, []string{"subscriber"}),
		squashed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hub_squashed_samples_total",
			Help: "Samples a Squash subscription replaced by a later sample of the same channel because its queue was full.",
		}, []string{"subscriber"}),
		depth: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_hub_queue_depth",
			Help: "Samples waiting in a subscription's queue (set at each drain and at each check of a running Watchdog, which shows the deepest queue of subscribers sharing a name).",
		}, []string{"subscriber"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hub_backpressure_waits_total",
			Help: "Publishes that waited for room in a full Lossless subscription's queue (back-pressure).",
		}, []string{"subscriber"}),
	}
	empty := []*Subscription{}
	h.subs.Store(&empty)
	if reg != nil {
		reg.MustRegister(h.published, h.dropped, h.squashed, h.depth, h.waits)
	}
	return h
}

// Publish delivers a batch of samples to every matching subscription and records
// them as the latest values. It never blocks on a consumer, except on a Lossless
// subscription at its bound: then it waits for that consumer to make room
// (back-pressure, counted), since that consumer must see every sample.
func (h *Hub) Publish(batch ...Sample) { h.publish(batch, false) }

// PublishNoWait is Publish for the few samples a producer must never wait for
// (the server's own health, which has to reach the alarm engine while the
// archive applies back-pressure): a Lossless subscription at its bound takes
// them beyond it.
func (h *Hub) PublishNoWait(batch ...Sample) { h.publish(batch, true) }

func (h *Hub) publish(batch []Sample, force bool) {
	if len(batch) == 0 {
		return
	}
	// One encoding cache per sample, shared by every copy delivered (the caller's
	// batch itself is left as it is).
	caches := make([]encodedCache, len(batch))
	for i := range batch {
		s := &batch[i]
		slot := h.latest.GetOrAdd(s.Device, s.Channel, newLatestSlot)
		slot.mu.Lock()
		slot.s = *s
		slot.s.enc = &caches[i]
		slot.mu.Unlock()
	}
	for _, s := range *h.subs.Load() {
		s.offer(batch, caches, force)
	}
	h.published.Add(float64(len(batch)))
}

// Latest returns the most recent sample of every channel that match selects (all
// channels when match is nil), in no particular order.
func (h *Hub) Latest(match func(*Sample) bool) []Sample {
	out := make([]Sample, 0, h.latest.Len())
	h.latest.Range(func(_, _ string, slot *latestSlot) bool {
		slot.mu.Lock()
		s := slot.s
		slot.mu.Unlock()
		if match == nil || match(&s) {
			out = append(out, s)
		}
		return true
	})
	return out
}

// latestSlot is one channel's most recent sample.
type latestSlot struct {
	mu sync.Mutex
	s  Sample
}

func newLatestSlot() *latestSlot { return new(latestSlot) }

// Forget drops the latest values match selects: those of channels that no
// longer exist (a device removed from the configuration). Subscriptions are
// not affected.
func (h *Hub) Forget(match func(*Sample) bool) {
	h.latest.DeleteFunc(func(_, _ string, slot *latestSlot) bool {
		slot.mu.Lock()
		s := slot.s
		slot.mu.Unlock()
		return match(&s)
	})
}

// Subscribe adds a subscription. Close it when done.
func (h *Hub) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.Name == "" {
		opts.Name = "anonymous"
	}
	s := &Subscription{}
	fo := feed.Options[Sample]{
		Policy: opts.Policy.feed(), Capacity: opts.Capacity, MaxBytes: opts.MaxBytes,
		StallAfter: opts.StallAfter, Now: opts.Now,
		OnStall: func() {
			// On a publisher's goroutine, under the queue's lock: the hub
			// lock is never held while taking a queue's, so this is safe.
			if !s.closing.Swap(true) {
				h.remove(s)
			}
			if opts.OnStall != nil {
				opts.OnStall()
			}
		},
	}
	if opts.MaxBytes > 0 {
		fo.Size = SampleSize
	}
	*s = Subscription{
		hub:       h,
		opts:      opts,
		q:         feed.NewKeyed(fo, func(s *Sample) chanKey { return chanKey{s.Device, s.Channel} }),
		dropCtr:   h.dropped.WithLabelValues(opts.Name),
		squashCtr: h.squashed.WithLabelValues(opts.Name),
		depth:     h.depth.WithLabelValues(opts.Name),
	}
	if opts.Policy == Lossless {
		s.waitCtr = h.waits.WithLabelValues(opts.Name)
	}
	h.mu.Lock()
	old := *h.subs.Load()
	next := make([]*Subscription, len(old), len(old)+1)
	copy(next, old)
	next = append(next, s)
	h.subs.Store(&next)
	h.mu.Unlock()
	return s
}

func (h *Hub) remove(s *Subscription) {
	h.mu.Lock()
	defer h.mu.Unlock()
	old := *h.subs.Load()
	next := make([]*Subscription, 0, len(old))
	for _, o := range old {
		if o != s {
			next = append(next, o)
		}
	}
	h.subs.Store(&next)
}

// Subscription is one consumer's queue of samples (a feed.Queue with the
// subscription's policy).
type Subscription struct {
	hub       *Hub
	opts      SubscribeOptions
	q         *feed.Queue[Sample]
	dropCtr   prometheus.Counter
	squashCtr prometheus.Counter
	depth     prometheus.Gauge
	waitCtr   prometheus.Counter
	closing   atomic.Bool
}

// Ready returns a channel that receives a value whenever samples may be waiting.
// Wake-ups are coalesced: one receive may stand for many samples, so drain fully.
func (s *Subscription) Ready() <-chan struct{} { return s.q.Ready() }

func (s *Subscription) offer(batch []Sample, caches []encodedCache, force bool) {
	match := s.opts.Match
	for i := 0; i < len(batch); {
		b := s.q.Begin()
		for ; i < len(batch); i++ {
			if match != nil && !match(&batch[i]) {
				continue
			}
			smp := batch[i]
			smp.enc = &caches[i]
			if force {
				b.Force(&smp)
			} else if !b.Offer(&smp) {
				break
			}
		}
		dropped, squashed, closed := b.End()
		if dropped > 0 {
			s.dropCtr.Add(float64(dropped))
		}
		if squashed > 0 {
			s.squashCtr.Add(float64(squashed))
		}
		if i == len(batch) || closed {
			return
		}
		// A Lossless consumer at its bound: wait for it (back-pressure).
		s.waitCtr.Inc()
		if s.q.WaitRoom(context.Background()) != nil {
			return // closed meanwhile
		}
	}
}

// Drain appends up to max queued samples (all when max <= 0) to dst in the order
// they were published and returns it.
func (s *Subscription) Drain(dst []Sample, max int) []Sample { return s.DrainBytes(dst, max, 0) }

// DrainBytes is Drain that also stops once the samples taken add up to
// maxBytes (SampleSize; at least one sample is taken when any is queued). With
// no byte bound on the subscription (SubscribeOptions.MaxBytes) it is Drain.
func (s *Subscription) DrainBytes(dst []Sample, max int, maxBytes int64) []Sample {
	dst = s.q.DrainBytes(dst, max, maxBytes)
	s.depth.Set(float64(s.q.Len()))
	return dst
}

// chanKey identifies a channel in maps without building its Key() string, which
// would cost an allocation per sample on the publisher's goroutine.
type chanKey struct{ device, channel string }

// Squashed returns how many samples this subscription replaced by a later sample
// of the same channel (Squash policy).
func (s *Subscription) Squashed() uint64 { return s.q.Squashed() }

// Len returns how many samples are queued.
func (s *Subscription) Len() int { return s.q.Len() }

// Dropped returns how many samples this subscription has lost to overflow.
func (s *Subscription) Dropped() uint64 { return s.q.Dropped() }

// Stats returns the subscription's queue counters (depth, bytes, losses,
// drains, back-pressure waits, how long it has been full).
func (s *Subscription) Stats() feed.Stats { return s.q.Stats() }

// Err is nil while the subscription is open; ErrStalled once it ended itself
// because its consumer stopped reading (SubscribeOptions.StallAfter), else
// feed.ErrClosed after Close.
func (s *Subscription) Err() error {
	if errors.Is(s.q.Err(), feed.ErrStalled) {
		return ErrStalled
	}
	return s.q.Err()
}

// Close removes the subscription from the hub. Queued samples stay drainable; a
// publisher waiting for room in it stops waiting. Close is idempotent.
func (s *Subscription) Close() {
	if s.closing.Swap(true) {
		return
	}
	s.q.Close()
	s.hub.remove(s)
}
