package telemetry

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

// Clock is the time a Stream keeps: Now dates samples for the filter and
// responses for heartbeats; After waits for the batch window, held samples
// falling due and heartbeats. The zero StreamOptions use the system clock (a
// synctest bubble fakes it).
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Archive is what a Stream replays from (StreamOptions.Since).
type Archive interface {
	// Settle returns once every sample published before the call is queryable.
	Settle(ctx context.Context) error
	// Since returns up to limit archived samples of every channel at or after
	// fromNs, in time order (QuestDB's microsecond precision). An error that
	// may pass (backoff.IsRecoverable) is retried with a backoff; any other
	// ends the stream.
	Since(ctx context.Context, fromNs int64, limit int) ([]Sample, error)
}

// Replayer is a replay source whose samples carry the seq the live samples
// carry (a cluster's stream, which numbers each channel once for every node):
// a Stream joins it to the live samples by each channel's seq.
type Replayer interface {
	// Replay calls fn with the samples of the devices (every device when
	// devices is nil) taken at or after fromNs that were published to the hub
	// before the call, and returns once it gave them all; each channel's come
	// once and in seq order. Later samples may come too. An error ends the
	// stream.
	Replay(ctx context.Context, devices []string, fromNs int64, fn func([]Sample) error) error
}

// StateFeed is where a Stream takes device states from, to interleave them
// with the samples (StreamOptions.States). D is the caller's device state type.
type StateFeed[D any] struct {
	// Watch hands out state changes (the latest per device); the Stream
	// closes it when it ends.
	Watch interface {
		Ready() <-chan struct{}
		Take() []D
		Close()
	}
	// Current returns every device's state now, sent once at the start.
	Current func() []D
	// Name is the device a state belongs to.
	Name func(*D) string
	// Match selects the devices the stream wants; nil selects all.
	Match func(name string) bool
}

// Stream defaults and bounds.
const (
	DefaultBatchWindow   = 50 * time.Millisecond
	DefaultMaxBatch      = 1000
	DefaultStreamBytes   = 8 << 20
	defaultStreamSamples = 8192
	replayPage           = 10000
)

// StreamOptions configures a Stream. The zero value streams every sample in
// batches of DefaultMaxBatch or DefaultBatchWindow.
type StreamOptions[D any] struct {
	// Name and Peer identify the subscriber in the hub (metrics, watchdog).
	// Default Name "api" ("api-since" with Since).
	Name, Peer string
	// Match selects samples; nil selects all.
	Match func(*Sample) bool
	// Window is how long a batch collects samples after its first one;
	// MaxBatch sends a batch at once when it holds that many.
	Window   time.Duration
	MaxBatch int
	// Filter is the subscriber's deadband and rate cap per channel.
	Filter FilterOptions
	// Initial sends the latest value of every selected channel first (one
	// batch marked Initial, possibly empty).
	Initial bool
	// Heartbeat sends an empty batch marked Heartbeat when nothing was sent
	// for this long and nothing waits. Zero: none.
	Heartbeat time.Duration
	// States, if Watch is set, interleaves device states with the samples:
	// the current ones after the initial values, then each change after the
	// samples published before it.
	States StateFeed[D]
	// Since, with Archive or Replay, replays from this time (ns) before the
	// live samples, with no gap and no repeat at the join; the replay stands in
	// for the initial values. Replay, when set, is used instead of Archive.
	Since   int64
	Archive Archive
	Replay  Replayer
	// Devices are the devices Match can select, when the caller knows them: a
	// Replayer then reads only theirs (none when empty). Default nil: any
	// device.
	Devices []string
	// Capacity bounds the subscription's queue in samples (default 8192) and
	// MaxBytes in bytes (default DefaultStreamBytes). A live stream squashes
	// to the latest per channel past them; a replaying one drops the oldest,
	// counted. MaxBytes also bounds what the stream takes out of its queue
	// into the batch it is making (and so each batch), so that the stream
	// holds at most about twice MaxBytes (see Bytes).
	Capacity int
	MaxBytes int64
	// StallAfter ends the stream with ErrStalled when its queue stays full
	// and unread this long (a client that stopped reading). Default 0: never.
	StallAfter time.Duration
	// OnStall, if set, is called once when the stream's subscription ends for
	// not being read (StallAfter), on a publisher's goroutine: it must not
	// block. The caller ends a send that waits for its client with it (Next
	// cannot return while the caller is stuck in a send). Default none.
	OnStall func()
	// Clock is the stream's time. Default the system clock.
	Clock Clock
}

// Batch is one response of a Stream: samples (initial values, replayed or
// live), device states, or a heartbeat; with the subscription's loss counters
// as of now.
type Batch[D any] struct {
	Samples   []Sample
	Initial   bool
	Heartbeat bool
	States    []D
	// Dropped and Squashed are the subscription's counters (see Subscription).
	Dropped, Squashed uint64

	bytes int64 // SampleSize of Samples, counted in the stream's held bytes
}

// Stream is one subscriber's view of the hub: batching window, maximum batch,
// heartbeats, the deadband and rate cap (with the due times of held samples),
// device states interleaved in order, and the replay of the archive joined to
// the live samples. It is the whole of a Subscribe call but the encoding: the
// API layer only translates what Next returns. A Stream is owned by one
// goroutine; Close it when done.
type Stream[D any] struct {
	opts   StreamOptions[D]
	hub    *Hub
	sub    *Subscription
	filter *Filter
	clock  Clock

	started  bool
	ready    []Batch[D] // made, not yet returned from head on
	head     int
	raw      []Sample  // drained from the hub
	buf      []Sample  // filtered, waiting for the window
	bufBytes int64     // SampleSize of buf
	spare    []Sample  // the buffer of the batches made before (see flush)
	window   time.Time // when the batch being built goes; zero if none is
	sentAt   time.Time // when the last batch went, for heartbeats
	// held is the SampleSize of every sample the stream holds outside its
	// queue: in buf, in ready, and in the batch Next returned last (its
	// caller may still be sending it); lastBytes is that batch's share.
	held      atomic.Int64
	lastBytes int64
	// replay is the archive replay in progress (nil once it is done or
	// without Since): one page is read at a time, when the batches of the
	// page before have all been returned.
	replay *replay[D]
	// replayed holds, per channel key, the last sample the replay sent;
	// live samples that are not past it are skipped (replaySeq: by seq and
	// time, else by time at the archive's microseconds). A channel leaves
	// the map with its first newer sample.
	replayed  map[string]replayMark
	replaySeq bool
}

// replayMark is the last sample a replay queued of a channel.
type replayMark struct {
	seq    uint64
	timeNs int64
}

// replay is the state of an archive replay between pages.
type replay[D any] struct {
	pages  *archivePages
	marks  map[string]replayMark // the last sample sent per channel key
	states *Batch[D]             // the current device states, sent when the replay ends
}

// NewStream subscribes to hub at once, so that everything published from now
// on reaches the stream (the API layer then tells the client the stream is
// established). Next makes the batches.
func NewStream[D any](hub *Hub, opts StreamOptions[D]) *Stream[D] {
	if opts.Window <= 0 {
		opts.Window = DefaultBatchWindow
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Capacity <= 0 {
		opts.Capacity = defaultStreamSamples
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultStreamBytes
	}
	clock := opts.Clock
	if clock == nil {
		clock = newTimerClock()
	}
	so := SubscribeOptions{Name: "api", Peer: opts.Peer, Capacity: opts.Capacity, MaxBytes: opts.MaxBytes,
		Policy: Squash, Match: opts.Match, StallAfter: opts.StallAfter, OnStall: opts.OnStall, Now: clock.Now}
	if opts.Since != 0 {
		// A replaying stream promises every seq: it drops (counted) rather
		// than squashes if it falls behind while the archive is read.
		so.Name, so.Policy = "api-since", DropOldest
	}
	if opts.Name != "" {
		so.Name = opts.Name
	}
	return &Stream[D]{opts: opts, hub: hub, sub: hub.Subscribe(so), filter: NewFilter(opts.Filter), clock: clock}
}

// Bytes is what the stream holds, as SampleSize counts samples: its queue in
// the hub (at most MaxBytes), and what it took out of the queue or read from
// the archive and has not yet seen sent: the batch being made (at most
// MaxBytes and a sample; all that was queued when a device state changes,
// since the samples before the change go first), the batches made, and the
// batch Next returned last. The bytes a transport holds of a batch being sent
// are the caller's to count. Bytes is safe to call from any goroutine.
func (st *Stream[D]) Bytes() int64 { return st.sub.Stats().Bytes + st.held.Load() }

// Close ends the stream's subscription and state watch. It is idempotent.
func (st *Stream[D]) Close() {
	st.sub.Close()
	if st.opts.States.Watch != nil {
		st.opts.States.Watch.Close()
	}
}

// Next returns the stream's next batch, waiting for it until ctx ends
// (context.Cause(ctx)). The first batches are the replay (with Since), the
// initial values and the current device states; then live batches, device
// state changes and heartbeats. It returns ErrStalled once the subscription
// was ended for not being read, and the archive's error when a replay fails
// for good. The batch's slices are valid until the next call to Next.
func (st *Stream[D]) Next(ctx context.Context) (Batch[D], error) {
	if !st.started {
		st.started = true
		if err := st.start(ctx); err != nil {
			return Batch[D]{}, err
		}
	}
	// The batch returned last has been sent: it is no longer held.
	st.held.Add(-st.lastBytes)
	st.lastBytes = 0
	for st.head == len(st.ready) {
		st.ready, st.head = st.ready[:0], 0
		var err error
		if st.replay != nil {
			err = st.replayPage(ctx)
		} else {
			err = st.wait(ctx)
		}
		if err != nil {
			return Batch[D]{}, err
		}
	}
	b := st.ready[st.head]
	st.ready[st.head] = Batch[D]{}
	st.head++
	st.lastBytes = b.bytes
	b.Dropped, b.Squashed = st.sub.Dropped(), st.sub.Squashed()
	st.sentAt = st.clock.Now()
	return b, nil
}

// batch makes a batch of samples and counts them as held.
func (st *Stream[D]) batch(samples []Sample, initial bool) Batch[D] {
	b := Batch[D]{Samples: samples, Initial: initial, bytes: sizeOf(samples)}
	st.held.Add(b.bytes)
	return b
}

func sizeOf(samples []Sample) int64 {
	var n int64
	for i := range samples {
		n += SampleSize(&samples[i])
	}
	return n
}

// start makes the first batches: the replay (which stands in for the initial
// values; it goes on page by page in Next) or the initial values, then the
// current device states (after the replay's last page).
func (st *Stream[D]) start(ctx context.Context) error {
	now := st.clock.Now()
	switch {
	case st.opts.Since != 0 && st.opts.Replay != nil:
		if err := st.replayFrom(ctx); err != nil {
			return err
		}
	case st.opts.Since != 0 && st.opts.Archive != nil:
		if err := st.opts.Archive.Settle(ctx); err != nil {
			return err
		}
		st.replay = &replay[D]{pages: newArchivePages(st.opts.Archive, st.opts.Since, 0, st.clock),
			marks: map[string]replayMark{}}
	case st.opts.Initial:
		latest := st.hub.Latest(st.opts.Match)
		slices.SortFunc(latest, func(a, b Sample) int {
			return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Channel, b.Channel))
		})
		for i := range latest {
			st.filter.Offer(now, &latest[i], nil) // the deadband starts from what the client saw
		}
		st.ready = append(st.ready, st.batch(latest, true))
	}
	if f := &st.opts.States; f.Watch != nil && f.Current != nil {
		cur := f.Current()
		slices.SortFunc(cur, func(a, b D) int { return cmp.Compare(f.Name(&a), f.Name(&b)) })
		if b, ok := st.statesBatch(cur); ok && st.replay != nil {
			st.replay.states = &b
		} else if ok {
			st.ready = append(st.ready, b)
		}
	}
	st.sentAt = now
	return nil
}

// addStates queues a batch of the states the stream selects, if any.
func (st *Stream[D]) addStates(states []D) {
	if b, ok := st.statesBatch(states); ok {
		st.ready = append(st.ready, b)
	}
}

// statesBatch is a batch of the states the stream selects; false if none.
func (st *Stream[D]) statesBatch(states []D) (Batch[D], bool) {
	f := &st.opts.States
	var keep []D
	for i := range states {
		if f.Match == nil || f.Match(f.Name(&states[i])) {
			keep = append(keep, states[i])
		}
	}
	return Batch[D]{States: keep}, len(keep) > 0
}

// wait waits for the next event and turns it into batches (in st.ready).
func (st *Stream[D]) wait(ctx context.Context) error {
	if err := st.sub.Err(); errors.Is(err, ErrStalled) {
		return ErrStalled
	}
	var states <-chan struct{}
	if st.opts.States.Watch != nil {
		states = st.opts.States.Watch.Ready()
	}
	// One timer for the earliest of: the window, a held sample falling due, a
	// heartbeat.
	now := st.clock.Now()
	var deadline time.Time
	earliest := func(t time.Time) {
		if !t.IsZero() && (deadline.IsZero() || t.Before(deadline)) {
			deadline = t
		}
	}
	earliest(st.window)
	if due, ok := st.filter.NextDue(); ok {
		earliest(due)
	}
	if st.opts.Heartbeat > 0 && len(st.buf) == 0 {
		earliest(st.sentAt.Add(st.opts.Heartbeat))
	}
	var timer <-chan time.Time
	if !deadline.IsZero() {
		timer = st.clock.After(max(0, deadline.Sub(now)))
	}
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-st.sub.Ready():
		st.take(st.opts.MaxBatch, max(1, st.opts.MaxBytes-st.bufBytes))
	case <-states:
		// Samples published before the change go first, so the client sees
		// them in order: take everything queued, not only what a wake-up
		// announced.
		st.take(0, 0)
		st.flush()
		st.addStates(st.opts.States.Watch.Take())
		return nil
	case <-timer:
		now = st.clock.Now()
		st.append(func(buf []Sample) []Sample { return st.filter.Due(now, buf) })
		if !st.window.IsZero() && !now.Before(st.window) {
			st.flush()
		} else if st.opts.Heartbeat > 0 && len(st.buf) == 0 && now.Sub(st.sentAt) >= st.opts.Heartbeat {
			st.ready = append(st.ready, Batch[D]{Heartbeat: true})
		}
	}
	if len(st.buf) >= st.opts.MaxBatch || st.bufBytes >= st.opts.MaxBytes {
		st.flush()
	}
	if len(st.buf) > 0 && st.window.IsZero() {
		st.window = st.clock.Now().Add(st.opts.Window)
	}
	return nil
}

// flush turns the samples waiting into batches of at most MaxBatch samples
// and about MaxBytes (it closes a batch once it reaches MaxBytes), and ends the
// window. The batches share the buffer; it becomes the spare, and the spare
// the buffer: a flush only happens once every batch of the one before was
// returned, and a returned batch need only be valid until the next Next. Their
// bytes stay held (counted when they entered buf) until returned and sent.
func (st *Stream[D]) flush() {
	start, bytes := 0, int64(0)
	for i := range st.buf {
		bytes += SampleSize(&st.buf[i])
		if n := i + 1; n-start == st.opts.MaxBatch || bytes >= st.opts.MaxBytes || n == len(st.buf) {
			st.ready = append(st.ready, Batch[D]{Samples: st.buf[start:n:n], bytes: bytes})
			start, bytes = n, 0
		}
	}
	clear(st.spare) // let go of the strings of the batches before
	st.buf, st.spare = st.spare[:0], st.buf
	st.bufBytes = 0
	st.window = time.Time{}
}

// take moves up to max queued samples (all when max <= 0), and no more than
// about maxBytes of them (any when maxBytes <= 0), through the filter into the
// batch being built.
func (st *Stream[D]) take(max int, maxBytes int64) {
	st.raw = st.sub.DrainBytes(st.raw[:0], max, maxBytes)
	now := st.clock.Now()
	st.append(func(buf []Sample) []Sample {
		for i := range st.raw {
			if st.replayed != nil && st.alreadyReplayed(&st.raw[i]) {
				continue
			}
			buf = st.filter.Offer(now, &st.raw[i], buf)
		}
		return buf
	})
	clear(st.raw)
}

// append lets add append samples to the batch being built and counts them as
// held.
func (st *Stream[D]) append(add func([]Sample) []Sample) {
	n := len(st.buf)
	st.buf = add(st.buf)
	added := sizeOf(st.buf[n:])
	st.bufBytes += added
	st.held.Add(added)
}

// replayPage makes the batches (of at most MaxBatch) of the next page of the
// archive replay from Since. The replay goes:
//
//  1. The stream's hub subscription already exists, so every sample published
//     from then on is queued for it (DropOldest, counted in Dropped as usual).
//  2. start waited until every sample published before that is archived and
//     visible to queries (Archive.Settle; through outages).
//  3. Page by page, each read once the batches of the page before have been
//     returned (so the stream holds one page, however long the history), it
//     sends the archive from Since in time order and remembers, per channel,
//     the newest timestamp it sent.
//  4. After the last page, the live samples of a channel that are not newer
//     than that are skipped (the replay may have read them too).
//
// Timestamps are compared at the archive's microsecond precision; within a
// channel they increase, so (device, channel, seq) never repeats in the stream.
func (st *Stream[D]) replayPage(ctx context.Context) error {
	r := st.replay
	page, last, err := r.pages.next(ctx)
	if err != nil {
		return err
	}
	st.queueReplayed(page, r.marks)
	if !last {
		return nil
	}
	// The last page: then the device states, and live.
	if r.states != nil {
		st.ready = append(st.ready, *r.states)
	}
	if len(r.marks) > 0 {
		st.replayed = r.marks
	}
	st.replay = nil
	return nil
}

// replayFrom queues what the Replayer gives from Since; the join to the live
// samples is by seq: a live sample of a channel is skipped while neither its
// seq nor its time is past the last one the replay gave (a repeat; a channel
// whose numbering started again has newer times). Unlike the archive's, this
// replay is queued whole before the first batch goes.
func (st *Stream[D]) replayFrom(ctx context.Context) error {
	if st.opts.Devices != nil && len(st.opts.Devices) == 0 {
		return nil
	}
	st.replaySeq = true
	marks := map[string]replayMark{}
	err := st.opts.Replay.Replay(ctx, st.opts.Devices, st.opts.Since, func(ss []Sample) error {
		st.queueReplayed(ss, marks)
		return nil
	})
	if err != nil {
		return err
	}
	if len(marks) > 0 {
		st.replayed = marks
	}
	return nil
}

// queueReplayed queues the replayed samples Match selects, in batches of at
// most MaxBatch, and marks each channel's last one for the join.
func (st *Stream[D]) queueReplayed(ss []Sample, marks map[string]replayMark) {
	var batch []Sample
	for _, smp := range ss {
		if st.opts.Match != nil && !st.opts.Match(&smp) {
			continue
		}
		marks[smp.Key()] = replayMark{seq: smp.Seq, timeNs: smp.TimeNs}
		batch = append(batch, smp)
		if len(batch) == st.opts.MaxBatch {
			st.ready = append(st.ready, st.batch(batch, false))
			batch = nil
		}
	}
	if len(batch) > 0 {
		st.ready = append(st.ready, st.batch(batch, false))
	}
}

// archivePages reads an archive a page at a time in time order, each sample
// once (a page boundary may fall inside a microsecond: what is read again is
// left out), from a time and up to another (0: to the end).
type archivePages struct {
	a        Archive
	from, to int64 // ns
	clock    backoff.Clock
	newest   map[string]int64 // channel key -> µs timestamp of the newest sample given
}

func newArchivePages(a Archive, fromNs, toNs int64, clock Clock) *archivePages {
	var bclock backoff.Clock = backoff.System
	if clock != nil {
		bclock = clock
	}
	return &archivePages{a: a, from: fromNs, to: toNs, clock: bclock, newest: map[string]int64{}}
}

// next returns the next page's samples not given before, and whether it was
// the last page. A failure that passes (the archive down or restarting:
// backoff.IsRecoverable) is retried with a backoff; any other is returned.
func (p *archivePages) next(ctx context.Context) (out []Sample, last bool, err error) {
	var page []Sample
	b := &backoff.Backoff{Policy: backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}, Clock: p.clock}
	err = backoff.Retry(ctx, b, func() error {
		var err error
		page, err = p.a.Since(ctx, p.from, replayPage)
		return err
	}, nil)
	if err != nil {
		return nil, false, err
	}
	pageMax := p.from / 1000
	out = page[:0:0]
	last = len(page) < replayPage
	for _, smp := range page {
		if p.to > 0 && smp.TimeNs >= p.to {
			last = true
			break
		}
		pageMax = max(pageMax, smp.TimeNs/1000)
		key := smp.Key()
		if us, ok := p.newest[key]; ok && smp.TimeNs/1000 <= us {
			continue // read again at a page boundary
		}
		p.newest[key] = smp.TimeNs / 1000
		out = append(out, smp)
	}
	if next := pageMax * 1000; next > p.from {
		p.from = next
	} else {
		p.from += 1000 // a full page of one microsecond: move on
	}
	return out, last, nil
}

// ReadArchive calls fn with the archive's samples taken at or after fromNs
// (and before toNs, unless it is 0), a page at a time in time order, each
// sample once. A failure that passes (backoff.IsRecoverable) is retried with
// a backoff on clock (nil: the system clock); any other ends it.
func ReadArchive(ctx context.Context, a Archive, fromNs, toNs int64, clock Clock, fn func([]Sample) error) error {
	p := newArchivePages(a, fromNs, toNs, clock)
	for {
		out, last, err := p.next(ctx)
		if err != nil {
			return err
		}
		if len(out) > 0 {
			if err := fn(out); err != nil {
				return err
			}
		}
		if last {
			return nil
		}
	}
}

// alreadyReplayed reports whether the replay sent this live sample (see
// replayFrom, and replayPage: the archive keeps microseconds).
func (st *Stream[D]) alreadyReplayed(smp *Sample) bool {
	key := smp.Key()
	m, ok := st.replayed[key]
	if !ok {
		return false
	}
	if st.replaySeq && smp.Seq <= m.seq && smp.TimeNs <= m.timeNs ||
		!st.replaySeq && smp.TimeNs/1000 <= m.timeNs/1000 {
		return true
	}
	delete(st.replayed, key)
	if len(st.replayed) == 0 {
		st.replayed = nil
	}
	return false
}

// timerClock is the system clock with one reusable timer: Go's timers drop a
// stale tick on Reset, so each After is a fresh wait.
type timerClock struct{ t *time.Timer }

func newTimerClock() *timerClock {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &timerClock{t: t}
}

func (c *timerClock) Now() time.Time { return time.Now() }

func (c *timerClock) After(d time.Duration) <-chan time.Time {
	c.t.Reset(d)
	return c.t.C
}
