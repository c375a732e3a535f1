package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrWatchdogRunning is returned by Watchdog.Serve when the watchdog is already
// serving: one watchdog checks a hub from one goroutine.
var ErrWatchdogRunning = errors.New("telemetry: watchdog is already serving")

// WatchdogOptions configures a Watchdog. The zero value works.
type WatchdogOptions struct {
	// Period between checks. Default 1s.
	Period time.Duration
	// StallAfter is how long a subscription may hold queued samples without a
	// Drain before it counts as stalled. Default 10s.
	StallAfter time.Duration
	// LosslessWarnDepth is the depth above which a Lossless subscription is
	// reported as over limit. The report clears when the depth falls to half
	// of it or below, so a queue hovering at the limit does not chatter.
	// Default 1,000,000 samples.
	LosslessWarnDepth int
	// Logger receives one Warn when a subscription stalls or goes over limit
	// and one Info when it recovers. Default slog.Default() at construction.
	Logger *slog.Logger
	// Registerer, if set, gets the watchdog's metrics. The queue depth gauge
	// is the hub's own (registered by NewHub). Default none.
	Registerer prometheus.Registerer
	// Now is the clock that dates drains and stalls. Default time.Now.
	Now func() time.Time
	// PublishHealth makes every check publish, as channel
	// SystemDevice/BackpressureChannel, how many Lossless subscriptions are at
	// their bound holding publishers back, so the alarm engine can raise it and
	// the archive keeps it. Default false.
	PublishHealth bool
	// OnStatus, if set, is called from the watchdog's goroutine with the new
	// status (see Status) at the first check and whenever the subscription
	// count or the set of stalled or over-limit subscriptions changes; not
	// when only a depth or a duration changes. ctx is Serve's context (a
	// supervisor's ReportStatus takes it). It must not block for long: checks
	// wait for it. Default none.
	OnStatus func(ctx context.Context, status string)
}

// SubscriptionHealth is one subscription as seen by the last check of a
// Watchdog.
type SubscriptionHealth struct {
	Name     string
	Peer     string // SubscribeOptions.Peer
	Policy   Policy
	Depth    int    // queued samples
	Dropped  uint64 // see Subscription.Dropped
	Squashed uint64 // see Subscription.Squashed
	// LastDrain is the check at which the watchdog first saw a Drain it had
	// not seen before, so it is late by up to one Period; zero if the
	// watchdog has seen no Drain of this subscription.
	LastDrain time.Time
	// NoDrainFor is how long queued samples have waited with no Drain, as
	// far as the watchdog can tell (it can only be less than the truth);
	// zero when the queue is empty or has been drained since the last check.
	NoDrainFor time.Duration
	// Stalled is set once NoDrainFor reaches StallAfter, until a Drain.
	Stalled bool
	// OverLimit is set for a Lossless subscription deeper than
	// LosslessWarnDepth, until its depth falls to half of that.
	OverLimit bool
	// Full is set for a Lossless subscription at its bound: since the last
	// check, publishers waited for it (back-pressure) or it is full.
	Full bool
	// Waits counts the publishes that waited for room in it.
	Waits uint64
}

// Watchdog watches the health of a Hub's fan-out: it keeps the queue depth
// gauge current, reports subscriptions that stopped draining (stalled) and
// Lossless subscriptions that grew too deep (over limit), and keeps a one-line
// status. Run it with Serve, typically as a process of a supervisor.
//
// It reads each subscription's counters under that subscription's lock, as
// Len does, so it never delays a publisher by more than Len would.
type Watchdog struct {
	hub        *Hub
	period     time.Duration
	stallAfter time.Duration
	warnDepth  int
	log        *slog.Logger
	now        func() time.Time
	onStatus   func(context.Context, string)

	stalls       *prometheus.CounterVec
	stalledGauge prometheus.Gauge

	publish   bool   // PublishHealth
	healthSeq uint64 // seq of the health channel; survives restarts of Serve

	// Owned by the serving goroutine (one at a time, see running).
	tracks   map[*Subscription]*subTrack
	lastKey  []problemKey
	lastSubs int
	reported bool

	mu      sync.Mutex // guards the fields below
	running bool
	status  string
	health  []SubscriptionHealth
}

// subTrack is what the watchdog remembers of one subscription between checks.
type subTrack struct {
	waits     uint64    // back-pressure waits at the last check
	full      bool      // Lossless at its bound: publishers wait
	drains    uint64    // drains at the last check
	lastDrain time.Time // check that saw drains change; zero if none yet
	waiting   time.Time // since when samples wait with no Drain; zero if none
	stalled   bool
	overLimit bool
}

// problemKey identifies what OnStatus reports: which subscriptions are in
// trouble and how, but not by how much.
type problemKey struct {
	sub       *Subscription
	stalled   bool
	overLimit bool
	full      bool
}

// NewWatchdog returns a watchdog for h. It fails if h is nil or not made by
// NewHub, if an option is negative, or if the metrics cannot be registered
// (for example twice with the same Registerer).
func NewWatchdog(h *Hub, opts WatchdogOptions) (*Watchdog, error) {
	if h == nil {
		return nil, errors.New("telemetry watchdog: hub is nil")
	}
	if h.subs.Load() == nil {
		return nil, errors.New("telemetry watchdog: hub was not made by NewHub")
	}
	if opts.Period < 0 {
		return nil, fmt.Errorf("telemetry watchdog: Period must be >= 0, got %v", opts.Period)
	}
	if opts.StallAfter < 0 {
		return nil, fmt.Errorf("telemetry watchdog: StallAfter must be >= 0, got %v", opts.StallAfter)
	}
	if opts.LosslessWarnDepth < 0 {
		return nil, fmt.Errorf("telemetry watchdog: LosslessWarnDepth must be >= 0, got %d", opts.LosslessWarnDepth)
	}
	if opts.Period == 0 {
		opts.Period = time.Second
	}
	if opts.StallAfter == 0 {
		opts.StallAfter = 10 * time.Second
	}
	if opts.LosslessWarnDepth == 0 {
		opts.LosslessWarnDepth = 1_000_000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	w := &Watchdog{
		hub:        h,
		period:     opts.Period,
		stallAfter: opts.StallAfter,
		warnDepth:  opts.LosslessWarnDepth,
		log:        opts.Logger,
		now:        opts.Now,
		onStatus:   opts.OnStatus,
		publish:    opts.PublishHealth,
		stalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "switchyard_hub_stalls_total",
			Help: "Times a hub subscription stalled: it held queued samples with no drain for the watchdog's StallAfter.",
		}, []string{"subscriber"}),
		stalledGauge: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "switchyard_hub_stalled_subscriptions",
			Help: "Hub subscriptions stalled at the watchdog's last check.",
		}),
		tracks: make(map[*Subscription]*subTrack),
	}
	if reg := opts.Registerer; reg != nil {
		if err := reg.Register(w.stalls); err != nil {
			return nil, fmt.Errorf("telemetry watchdog: register switchyard_hub_stalls_total: %w", err)
		}
		if err := reg.Register(w.stalledGauge); err != nil {
			reg.Unregister(w.stalls)
			return nil, fmt.Errorf("telemetry watchdog: register switchyard_hub_stalled_subscriptions: %w", err)
		}
	}
	return w, nil
}

// Serve checks the hub at once and then every Period until ctx ends, and
// returns nil. It returns ErrWatchdogRunning if the watchdog is already
// serving. State survives a return, so a restarted watchdog neither forgets a
// stall nor counts it twice.
func (w *Watchdog) Serve(ctx context.Context) error {
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return ErrWatchdogRunning
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()

	tick := time.NewTicker(w.period)
	defer tick.Stop()
	for {
		w.check(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Status returns the one-line status of the last check, such as
// "7 subscriptions; all draining" or
// "7 subscriptions; 1 stalled: archive (lossless) 120000 queued, no drain for 42s".
// It is empty before the first check. Safe for concurrent use.
func (w *Watchdog) Status() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status
}

// Health returns every live subscription as of the last check, in the order
// they subscribed; nil before the first check. Safe for concurrent use.
func (w *Watchdog) Health() []SubscriptionHealth {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.health)
}

// check inspects every subscription once. Only the serving goroutine calls it.
func (w *Watchdog) check(ctx context.Context) {
	now := w.now()
	subs := *w.hub.subs.Load()
	health := make([]SubscriptionHealth, 0, len(subs))
	var key []problemKey
	type deepest struct {
		gauge prometheus.Gauge
		depth int
	}
	depths := make(map[string]*deepest)
	live := make(map[*Subscription]bool, len(subs))
	stalled, full := 0, 0

	for _, s := range subs {
		st := s.q.Stats()
		n, drains, dropped, squashed, closed := st.Len, st.Drains, st.Dropped, st.Squashed, st.Closed
		if closed {
			continue // Close is removing it from the list
		}
		live[s] = true
		name, peer, pol := s.opts.Name, s.opts.Peer, s.opts.Policy

		t := w.tracks[s]
		if t == nil {
			t = &subTrack{drains: drains}
			w.tracks[s] = t
		}
		waitedBefore := t.waiting // for the recovery log
		if drains != t.drains {
			// Drained since the last check. What is queued now arrived
			// after or was left by that Drain: its wait starts now.
			t.drains, t.lastDrain, t.waiting = drains, now, time.Time{}
		}
		switch {
		case n == 0:
			t.waiting = time.Time{}
		case t.waiting.IsZero():
			t.waiting = now
		}
		var waited time.Duration
		if !t.waiting.IsZero() {
			waited = now.Sub(t.waiting)
		}

		isStalled := n > 0 && waited >= w.stallAfter
		switch {
		case isStalled && !t.stalled:
			w.log.Warn("hub subscription stalled: queued samples are not being drained",
				"subscriber", name, "peer", peer, "policy", pol.String(), "depth", n, "no_drain_for", waited)
			w.stalls.WithLabelValues(name).Inc()
		case !isStalled && t.stalled:
			w.log.Info("hub subscription draining again",
				"subscriber", name, "peer", peer, "policy", pol.String(), "depth", n,
				"waited", now.Sub(waitedBefore))
		}
		t.stalled = isStalled
		if isStalled {
			stalled++
		}

		isFull := pol == Lossless && (st.FullFor > 0 || st.Waits != t.waits || n >= s.q.Capacity())
		t.waits = st.Waits
		switch {
		case isFull && !t.full:
			w.log.Error("hub lossless subscription at its bound: publishers wait for it (back-pressure)",
				"subscriber", name, "depth", n, "bound", s.q.Capacity())
		case !isFull && t.full:
			w.log.Info("hub lossless subscription has room again", "subscriber", name, "depth", n)
		}
		t.full = isFull
		if isFull {
			full++
		}
		if pol == Lossless {
			switch {
			case !t.overLimit && n > w.warnDepth:
				t.overLimit = true
				w.log.Warn("hub lossless subscription over its depth limit: memory grows until it drains",
					"subscriber", name, "depth", n, "limit", w.warnDepth)
			case t.overLimit && n <= w.warnDepth/2:
				t.overLimit = false
				w.log.Info("hub lossless subscription back under its depth limit",
					"subscriber", name, "depth", n, "limit", w.warnDepth)
			}
		}

		if d := depths[name]; d == nil {
			depths[name] = &deepest{s.depth, n}
		} else if n > d.depth {
			d.depth = n
		}
		if t.stalled || t.overLimit || t.full {
			key = append(key, problemKey{s, t.stalled, t.overLimit, t.full})
		}
		health = append(health, SubscriptionHealth{
			Name: name, Peer: peer, Policy: pol, Depth: n, Dropped: dropped, Squashed: squashed,
			LastDrain: t.lastDrain, NoDrainFor: waited, Stalled: t.stalled, OverLimit: t.overLimit,
			Full: t.full, Waits: st.Waits,
		})
	}

	for s, t := range w.tracks {
		if live[s] {
			continue
		}
		if t.stalled || t.overLimit {
			w.log.Info("hub subscription closed while stalled or over limit",
				"subscriber", s.opts.Name, "policy", s.opts.Policy.String(),
				"stalled", t.stalled, "over_limit", t.overLimit)
		}
		delete(w.tracks, s)
	}
	for _, d := range depths {
		d.gauge.Set(float64(d.depth))
	}
	w.stalledGauge.Set(float64(stalled))
	if w.publish {
		w.healthSeq++
		w.hub.PublishNoWait(Sample{Device: SystemDevice, Channel: BackpressureChannel, TimeNs: now.UnixNano(),
			Seq: w.healthSeq, Value: Float(float64(full))})
	}

	status := w.statusLine(health)
	w.mu.Lock()
	w.status, w.health = status, health
	w.mu.Unlock()

	if w.reported && len(health) == w.lastSubs && slices.Equal(key, w.lastKey) {
		return
	}
	w.reported, w.lastSubs, w.lastKey = true, len(health), key
	if w.onStatus != nil {
		w.onStatus(ctx, status)
	}
}

// statusLine summarises health in one line, naming each subscription in
// trouble.
func (w *Watchdog) statusLine(health []SubscriptionHealth) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d subscription", len(health))
	if len(health) != 1 {
		b.WriteByte('s')
	}
	var stalled, over, full int
	for _, h := range health {
		if h.Stalled {
			stalled++
		}
		if h.OverLimit {
			over++
		}
		if h.Full {
			full++
		}
	}
	if stalled == 0 && over == 0 && full == 0 {
		b.WriteString("; all draining")
		return b.String()
	}
	b.WriteString("; ")
	var parts []string
	if stalled > 0 {
		parts = append(parts, fmt.Sprintf("%d stalled", stalled))
	}
	if over > 0 {
		parts = append(parts, fmt.Sprintf("%d over limit", over))
	}
	if full > 0 {
		parts = append(parts, fmt.Sprintf("%d holding publishers back", full))
	}
	b.WriteString(strings.Join(parts, ", "))
	b.WriteString(": ")
	first := true
	for _, h := range health {
		if !h.Stalled && !h.OverLimit && !h.Full {
			continue
		}
		if !first {
			b.WriteString("; ")
		}
		first = false
		if h.Peer != "" {
			fmt.Fprintf(&b, "%s (%s, %s) %d queued", h.Name, h.Policy, h.Peer, h.Depth)
		} else {
			fmt.Fprintf(&b, "%s (%s) %d queued", h.Name, h.Policy, h.Depth)
		}
		if h.Stalled {
			fmt.Fprintf(&b, ", no drain for %v", roundDuration(h.NoDrainFor))
		}
		if h.OverLimit {
			fmt.Fprintf(&b, ", over %d", w.warnDepth)
		}
		if h.Full {
			b.WriteString(", at its bound")
		}
	}
	return b.String()
}

// roundDuration drops sub-second noise from durations of a second or more.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}
