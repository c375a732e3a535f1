package telemetry

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// Policy is what a subscription does when its queue is full.
type Policy uint8

const (
	// DropOldest discards the oldest queued sample and counts it.
	DropOldest Policy = iota
	// Lossless grows the queue instead of dropping.
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

// SubscribeOptions configures a Subscription. The zero value is a DropOldest
// subscription to every sample with room for 4096 samples.
type SubscribeOptions struct {
	// Name identifies the subscriber in metrics and logs. Default "anonymous".
	Name string
	// Peer says who is at the other end (an API client's address), for logs and
	// the Watchdog's status; it is not a metric label. Default none.
	Peer string
	// Capacity bounds the queue of a DropOldest or Squash subscription. Default 4096.
	Capacity int
	// Policy on overflow. Default DropOldest.
	Policy Policy
	// Match selects samples; nil selects all. It runs on the publisher's goroutine,
	// so it must be cheap and must not block.
	Match func(*Sample) bool
}

// Hub fans samples out to subscriptions. The zero value is not usable; call NewHub.
type Hub struct {
	mu   sync.Mutex                      // guards writes to subs
	subs atomic.Pointer[[]*Subscription] // copy-on-write list read by Publish

	latestMu sync.RWMutex
	latest   map[chanKey]Sample

	published prometheus.Counter
	dropped   *prometheus.CounterVec
	squashed  *prometheus.CounterVec
	depth     *prometheus.GaugeVec
}

// NewHub returns a hub whose metrics are registered with reg (nil registers nothing).
func NewHub(reg prometheus.Registerer) *Hub {
	h := &Hub{
		latest: make(map[chanKey]Sample),
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
	}
	empty := []*Subscription{}
	h.subs.Store(&empty)
	if reg != nil {
		reg.MustRegister(h.published, h.dropped, h.squashed, h.depth)
	}
	return h
}

// Publish delivers a batch of samples to every matching subscription and records
// them as the latest values. It never blocks on a consumer.
func (h *Hub) Publish(batch ...Sample) {
	if len(batch) == 0 {
		return
	}
	// One encoding cache per sample, shared by every copy delivered (the caller's
	// batch itself is left as it is).
	caches := make([]encodedCache, len(batch))
	h.latestMu.Lock()
	for i := range batch {
		s := batch[i]
		s.enc = &caches[i]
		h.latest[chanKey{s.Device, s.Channel}] = s
	}
	h.latestMu.Unlock()
	for _, s := range *h.subs.Load() {
		s.offer(batch, caches)
	}
	h.published.Add(float64(len(batch)))
}

// Latest returns the most recent sample of every channel that match selects (all
// channels when match is nil), in no particular order.
func (h *Hub) Latest(match func(*Sample) bool) []Sample {
	h.latestMu.RLock()
	defer h.latestMu.RUnlock()
	out := make([]Sample, 0, len(h.latest))
	for _, s := range h.latest {
		if match == nil || match(&s) {
			out = append(out, s)
		}
	}
	return out
}

// Forget drops the latest values match selects: those of channels that no
// longer exist (a device removed from the configuration). Subscriptions are
// not affected.
func (h *Hub) Forget(match func(*Sample) bool) {
	h.latestMu.Lock()
	defer h.latestMu.Unlock()
	for k, s := range h.latest {
		if match(&s) {
			delete(h.latest, k)
		}
	}
}

// Subscribe adds a subscription. Close it when done.
func (h *Hub) Subscribe(opts SubscribeOptions) *Subscription {
	if opts.Name == "" {
		opts.Name = "anonymous"
	}
	if opts.Capacity <= 0 {
		opts.Capacity = 4096
	}
	s := &Subscription{
		hub:       h,
		opts:      opts,
		wake:      make(chan struct{}, 1),
		dropCtr:   h.dropped.WithLabelValues(opts.Name),
		squashCtr: h.squashed.WithLabelValues(opts.Name),
		depth:     h.depth.WithLabelValues(opts.Name),
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

// Subscription is one consumer's queue of samples.
type Subscription struct {
	hub       *Hub
	opts      SubscribeOptions
	wake      chan struct{}
	dropCtr   prometheus.Counter
	squashCtr prometheus.Counter
	depth     prometheus.Gauge

	mu       sync.Mutex
	q        []Sample // ring buffer when DropOldest, plain slice otherwise
	head, n  int
	dropped  uint64
	squashed uint64
	drains   uint64 // calls to Drain, so a Watchdog can tell a stalled consumer
	closed   bool
}

// Ready returns a channel that receives a value whenever samples may be waiting.
// Wake-ups are coalesced: one receive may stand for many samples, so drain fully.
func (s *Subscription) Ready() <-chan struct{} { return s.wake }

func (s *Subscription) offer(batch []Sample, caches []encodedCache) {
	match := s.opts.Match
	delivered := false
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	for i := range batch {
		if match != nil && !match(&batch[i]) {
			continue
		}
		delivered = true
		smp := batch[i]
		smp.enc = &caches[i]
		if s.opts.Policy == Lossless {
			s.q = append(s.q, smp)
			s.n++
			continue
		}
		if s.opts.Policy == Squash {
			if s.n >= s.opts.Capacity {
				s.squash()
			}
			s.q = append(s.q, smp)
			s.n++
			continue
		}
		if s.q == nil {
			s.q = make([]Sample, s.opts.Capacity)
		}
		if s.n == len(s.q) {
			// Full: overwrite the oldest.
			s.q[s.head] = smp
			s.head = (s.head + 1) % len(s.q)
			s.dropped++
			s.dropCtr.Inc()
			continue
		}
		s.q[(s.head+s.n)%len(s.q)] = smp
		s.n++
	}
	s.mu.Unlock()
	if delivered {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// Drain appends up to max queued samples (all when max <= 0) to dst in the order
// they were published and returns it.
func (s *Subscription) Drain(dst []Sample, max int) []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.n
	if max > 0 && k > max {
		k = max
	}
	if s.opts.Policy != DropOldest {
		dst = append(dst, s.q[:k]...)
		rest := copy(s.q, s.q[k:])
		clear(s.q[rest:])
		s.q = s.q[:rest]
		s.n = rest
		if s.n == 0 && cap(s.q) > 1<<16 {
			s.q = nil // give back memory after a burst
		}
	} else {
		for i := 0; i < k; i++ {
			j := (s.head + i) % len(s.q)
			dst = append(dst, s.q[j])
			s.q[j] = Sample{}
		}
		if k > 0 {
			s.head = (s.head + k) % len(s.q)
		}
		s.n -= k
	}
	s.drains++
	s.depth.Set(float64(s.n))
	if s.n > 0 {
		// Leave a wake-up for what we did not take.
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
	return dst
}

// chanKey identifies a channel in maps without building its Key() string, which
// would cost an allocation per sample on the publisher's goroutine.
type chanKey struct{ device, channel string }

// squash reduces a full Squash queue to the latest sample of each channel, and if
// that is still full, drops the oldest. s.mu must be held.
func (s *Subscription) squash() {
	last := make(map[chanKey]int, len(s.q))
	for i := range s.q {
		last[chanKey{s.q[i].Device, s.q[i].Channel}] = i
	}
	k := 0
	for i := range s.q {
		if last[chanKey{s.q[i].Device, s.q[i].Channel}] == i {
			s.q[k] = s.q[i]
			k++
		}
	}
	removed := len(s.q) - k
	clear(s.q[k:])
	s.q = s.q[:k]
	if removed == 0 {
		// Every queued sample is the only one of its channel: drop the oldest.
		copy(s.q, s.q[1:])
		s.q[len(s.q)-1] = Sample{}
		s.q = s.q[:len(s.q)-1]
		s.dropped++
		s.dropCtr.Inc()
	}
	s.squashed += uint64(removed)
	s.squashCtr.Add(float64(removed))
	s.n = len(s.q)
}

// Squashed returns how many samples this subscription replaced by a later sample
// of the same channel (Squash policy).
func (s *Subscription) Squashed() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.squashed
}

// Len returns how many samples are queued.
func (s *Subscription) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Dropped returns how many samples this subscription has lost to overflow.
func (s *Subscription) Dropped() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// Close removes the subscription from the hub. Queued samples stay drainable.
// Close is idempotent.
func (s *Subscription) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.hub.remove(s)
	}
}
