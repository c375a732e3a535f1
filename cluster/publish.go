package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard/switchyard/telemetry"
)

// PublisherOptions configures a Publisher. The zero value works.
type PublisherOptions struct {
	// FlushEvery is the longest a sample waits before its batch is published.
	// Default 50ms.
	FlushEvery time.Duration
	// MaxBatch is the most samples of one device in one batch. Default 1000.
	MaxBatch int
	// Timeout bounds each publish. Default 2s.
	Timeout time.Duration
	// MaxPending bounds the samples waiting to be published, over all
	// devices: Publish takes no more (the caller keeps the rest, see Room and
	// WaitRoom), so a stream that is down or slow holds samples back in the
	// caller's queue instead of growing this one. Default DefaultMaxPending.
	MaxPending int
	// Logger. Default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxPending is PublisherOptions.MaxPending's default: as many samples
// as a lossless hub subscription holds by default.
const DefaultMaxPending = 1 << 20

// Publisher publishes the samples of the devices this node owns to their
// JetStream subjects, one device's batches strictly in order.
//
// It numbers samples itself: each channel's seq continues from the last one in
// the stream, whoever published it, so a device that changes owner keeps one
// gap-free, duplicate-free sequence per channel. Each batch is published with
// the expected last sequence of its subject (compare-and-set on the stream),
// so a node that lost a device can never append behind the new owner: its
// unpublished samples are then discarded, counted and logged (they were polled
// while it was cut off from the cluster and could not have reached anyone).
//
// Publish never blocks; Serve does the publishing. Past MaxPending samples
// waiting, Publish takes no more: a caller that must lose nothing waits for
// room (WaitRoom) and keeps what did not fit.
type Publisher struct {
	c    *Cluster
	node string
	opts PublisherOptions
	log  *slog.Logger

	mu      sync.Mutex
	devs    map[string]*pubDevice
	stats   PublisherStats
	wake    chan struct{}
	pending int           // samples waiting, over all devices
	room    chan struct{} // closed when pending falls; nil when nobody waits
}

// PublisherStats counts what the publisher did.
type PublisherStats struct {
	Batches, Samples uint64
	// Discarded counts samples dropped because another node published to the
	// device's subject after this one lost it; Unowned counts samples of
	// devices this node does not own (a bug in the wiring if not zero).
	Discarded, Unowned uint64
	// Conflicts counts compare-and-set failures (resolved by re-reading).
	Conflicts uint64
}

type pubDevice struct {
	epoch   uint64 // the lease revision of the last Begin
	owned   bool   // between Begin and End
	ready   bool   // base read from the stream
	subjSeq uint64 // stream sequence of the subject's last message
	batchNo uint64
	seq     map[string]uint64
	latest  map[string]telemetry.Sample
	pending []telemetry.Sample
}

// NewPublisher makes a publisher for node.
func NewPublisher(c *Cluster, node string, opts PublisherOptions) *Publisher {
	if opts.FlushEvery <= 0 {
		opts.FlushEvery = 50 * time.Millisecond
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Second
	}
	if opts.MaxPending <= 0 {
		opts.MaxPending = DefaultMaxPending
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Publisher{c: c, node: node, opts: opts, log: opts.Logger.With("node", node),
		devs: map[string]*pubDevice{}, wake: make(chan struct{}, 1)}
}

// Begin starts publishing a device this node now owns; epoch is its lease
// revision. Call it before the device's first sample.
func (p *Publisher) Begin(device string, epoch uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := p.devs[device]
	if d == nil {
		d = &pubDevice{}
		p.devs[device] = d
	}
	d.epoch, d.owned, d.ready, d.batchNo = epoch, true, false, 0
}

// End says the device stopped on this node: what is pending is still
// published (if no other node published since), then the device is forgotten.
func (p *Publisher) End(device string) {
	p.mu.Lock()
	if d := p.devs[device]; d != nil {
		d.owned = false
	}
	p.mu.Unlock()
	p.poke()
}

// Publish queues samples of owned devices, in order, while fewer than
// MaxPending wait, and returns how many of batch it took (samples of devices
// not owned count as taken, and are dropped and counted as Unowned). It never
// blocks and does not keep batch.
func (p *Publisher) Publish(batch ...telemetry.Sample) int {
	p.mu.Lock()
	full := false
	taken := 0
	for ; taken < len(batch); taken++ {
		s := &batch[taken]
		d := p.devs[s.Device]
		if d == nil || !d.owned {
			p.stats.Unowned++
			continue
		}
		if p.pending >= p.opts.MaxPending {
			full = true
			break
		}
		d.pending = append(d.pending, *s)
		p.pending++
		full = full || len(d.pending) >= p.opts.MaxBatch
	}
	p.mu.Unlock()
	if full {
		p.poke()
	}
	return taken
}

// Room is how many samples Publish takes now.
func (p *Publisher) Room() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return max(0, p.opts.MaxPending-p.pending)
}

// WaitRoom waits until Publish takes at least one sample, or ctx ends
// (context.Cause).
func (p *Publisher) WaitRoom(ctx context.Context) error {
	for {
		p.mu.Lock()
		if p.pending < p.opts.MaxPending {
			p.mu.Unlock()
			return nil
		}
		if p.room == nil {
			p.room = make(chan struct{})
		}
		room := p.room
		p.mu.Unlock()
		p.poke() // a full publisher publishes at once, not at its next tick
		select {
		case <-room:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// took counts n samples as no longer pending and wakes WaitRoom. p.mu held.
func (p *Publisher) took(n int) {
	p.pending -= n
	if n > 0 && p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *Publisher) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Serve publishes until ctx ends, then makes one last attempt (bounded by
// Timeout) to publish what is pending.
func (p *Publisher) Serve(ctx context.Context) error {
	t := time.NewTicker(p.opts.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), p.opts.Timeout)
			p.flush(fctx)
			cancel()
			return nil
		case <-t.C:
		case <-p.wake:
		}
		p.flush(ctx)
	}
}

// Flush publishes everything pending now (tests and shutdown).
func (p *Publisher) Flush(ctx context.Context) { p.flush(ctx) }

func (p *Publisher) flush(ctx context.Context) {
	p.mu.Lock()
	var names []string
	for name, d := range p.devs {
		if len(d.pending) > 0 || !d.ready && d.owned {
			names = append(names, name)
		} else if !d.owned {
			delete(p.devs, name)
		}
	}
	p.mu.Unlock()
	sort.Strings(names)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, name := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			p.flushDevice(ctx, name)
		}()
	}
	wg.Wait()
}

// flushDevice publishes one device's pending samples, batch by batch. Only
// this goroutine touches the device's publishing state during a flush.
func (p *Publisher) flushDevice(ctx context.Context, name string) {
	subject := p.c.Names.SampleSubject(name)
	for {
		p.mu.Lock()
		d := p.devs[name]
		if d == nil {
			p.mu.Unlock()
			return
		}
		ready := d.ready
		p.mu.Unlock()
		if !ready {
			lastEpoch, err := p.readBase(ctx, name, subject)
			if err != nil {
				p.log.Warn("cluster: read the last batch of a device", "device", name, "err", err)
				return
			}
			p.mu.Lock()
			if lastEpoch > d.epoch && len(d.pending) > 0 {
				// A later owner has published: these samples can no longer go
				// in order (lease revisions grow, so epochs compare).
				p.stats.Discarded += uint64(len(d.pending))
				p.log.Error("cluster: another node published this device's samples after this node lost it; discarding the samples polled meanwhile",
					"device", name, "samples", len(d.pending), "from", time.Unix(0, d.pending[0].TimeNs), "to", time.Unix(0, d.pending[len(d.pending)-1].TimeNs))
				p.took(len(d.pending))
				d.pending = nil
			}
			p.mu.Unlock()
		}
		p.mu.Lock()
		if len(d.pending) == 0 {
			p.mu.Unlock()
			return
		}
		n := min(len(d.pending), p.opts.MaxBatch)
		b := Batch{Device: name, Owner: p.node, Epoch: d.epoch, Samples: append([]telemetry.Sample(nil), d.pending[:n]...)}
		next := make(map[string]uint64, len(d.seq))
		for ch, s := range d.seq {
			next[ch] = s
		}
		inBatch := map[string]bool{}
		for i := range b.Samples {
			ch := b.Samples[i].Channel
			next[ch]++
			b.Samples[i].Seq = next[ch]
			inBatch[ch] = true
		}
		for ch, s := range d.latest {
			if !inBatch[ch] {
				b.Latest = append(b.Latest, s)
			}
		}
		sort.Slice(b.Latest, func(i, j int) bool { return b.Latest[i].Channel < b.Latest[j].Channel })
		expect := d.subjSeq
		// Unique in the stream: the lease revision is unique in the cluster.
		msgID := Token(name) + "/" + strconv.FormatUint(d.epoch, 10) + "/" + strconv.FormatUint(d.batchNo+1, 10)
		p.mu.Unlock()

		pctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
		ack, err := p.c.JS.PublishMsg(pctx, &nats.Msg{Subject: subject, Data: b.Encode(nil)},
			jetstream.WithMsgID(msgID), jetstream.WithExpectLastSequencePerSubject(expect))
		var stored uint64
		if err == nil {
			stored = ack.Sequence
		} else if wrongLastSeq(err) {
			// Ours after all (an earlier try whose answer was lost), or another node's.
			last, gerr := p.c.stream.GetLastMsgForSubject(pctx, subject)
			if gerr == nil && last.Header.Get(jetstream.MsgIDHeader) == msgID {
				stored = last.Sequence
			} else {
				// Re-read the base: renumber behind it, or discard if a later
				// owner wrote it.
				p.mu.Lock()
				p.stats.Conflicts++
				d.ready = false
				p.mu.Unlock()
				cancel()
				continue
			}
		}
		cancel()
		if stored == 0 {
			p.log.Warn("cluster: publish samples (will retry)", "device", name, "err", err)
			return
		}
		p.mu.Lock()
		d.subjSeq = stored
		d.batchNo++
		d.seq = next
		if d.latest == nil {
			d.latest = map[string]telemetry.Sample{}
		}
		for _, s := range b.Samples {
			d.latest[s.Channel] = s
		}
		d.pending = append(d.pending[:0], d.pending[n:]...)
		p.took(n)
		p.stats.Batches++
		p.stats.Samples += uint64(n)
		p.mu.Unlock()
	}
}

// readBase reads the subject's last batch: where the numbering continues. It
// returns the epoch of the owner that published it.
func (p *Publisher) readBase(ctx context.Context, name, subject string) (uint64, error) {
	gctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	seq := map[string]uint64{}
	latest := map[string]telemetry.Sample{}
	var subjSeq, epoch uint64
	last, err := p.c.stream.GetLastMsgForSubject(gctx, subject)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return 0, err
	default:
		b, err := DecodeBatch(name, last.Data)
		if err != nil {
			// Numbering starts again (clients see a restart of the sequence)
			// rather than the device never publishing again.
			p.log.Error("cluster: the last batch of a device is damaged; its channels' numbering starts again",
				"device", name, "stream_seq", last.Sequence, "err", err)
			b = Batch{}
		}
		for _, s := range append(b.Latest, b.Samples...) {
			if s.Seq >= seq[s.Channel] {
				seq[s.Channel] = s.Seq
				latest[s.Channel] = s
			}
		}
		subjSeq, epoch = last.Sequence, b.Epoch
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := p.devs[name]; d != nil {
		d.seq, d.latest, d.subjSeq, d.ready = seq, latest, subjSeq, true
	}
	return epoch, nil
}

func wrongLastSeq(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// DeviceEvent is a device's state change as the cluster sees it: its owner
// and its state there. Owner changes come first (Owner set, State "OWNED" or
// "RELEASED"); state changes of the device process follow from its owner.
type DeviceEvent struct {
	Device string `json:"device"`
	Node   string `json:"node"`
	Epoch  uint64 `json:"epoch,omitempty"`
	State  string `json:"state"`
	Error  string `json:"error,omitempty"`
	TimeNs int64  `json:"time_ns"`
	// Info is the owner's detail of the device's state, in a form the
	// wiring chooses (the cluster only carries it).
	Info json.RawMessage `json:"info,omitempty"`
}

// Device states of ownership published by the cluster itself.
const (
	StateOwned    = "OWNED"
	StateReleased = "RELEASED"
)

// PublishEvent publishes a device event to the device's state subject.
func (p *Publisher) PublishEvent(ctx context.Context, e DeviceEvent) error {
	if e.Node == "" {
		e.Node = p.node
	}
	if e.TimeNs == 0 {
		e.TimeNs = time.Now().UnixNano()
	}
	data, err := json.Marshal(e)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	_, err = p.c.JS.Publish(pctx, p.c.Names.StateSubject(e.Device), data)
	return err
}
