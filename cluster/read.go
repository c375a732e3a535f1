package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/switchyard/switchyard/telemetry"
)

// History is the archive a replay falls back to for samples older than the
// stream keeps.
type History interface {
	// Replay calls fn with the archived samples of the devices (every device
	// when devices is empty) taken in [fromNs, toNs), oldest first.
	Replay(ctx context.Context, devices []string, fromNs, toNs int64, fn func([]telemetry.Sample) error) error
}

// Reader serves any device's telemetry on any node, from the stream.
type Reader struct {
	c    *Cluster
	hist History
	skew time.Duration // replaySkew; tests change it
}

// NewReader makes a reader; hist may be nil (no archive: a replay starts at
// the oldest sample the stream holds).
func NewReader(c *Cluster, hist History) *Reader { return &Reader{c: c, hist: hist, skew: replaySkew} }

// Latest returns the latest sample of every channel of the devices, sorted by
// device and channel: from each device's last batch, which carries every
// channel's latest sample.
func (r *Reader) Latest(ctx context.Context, devices []string) ([]telemetry.Sample, error) {
	var out []telemetry.Sample
	for _, dev := range devices {
		last, err := r.c.stream.GetLastMsgForSubject(ctx, r.c.Names.SampleSubject(dev))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("latest of %s: %w", dev, err)
		}
		b, err := DecodeBatch(dev, last.Data)
		if err != nil {
			return nil, err
		}
		byCh := map[string]telemetry.Sample{}
		for _, s := range append(b.Latest, b.Samples...) {
			if prev, ok := byCh[s.Channel]; !ok || s.Seq >= prev.Seq {
				byCh[s.Channel] = s
			}
		}
		for _, s := range byCh {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Device != out[j].Device {
			return out[i].Device < out[j].Device
		}
		return out[i].Channel < out[j].Channel
	})
	return out, nil
}

// Update is what a subscription or a replay delivers: samples, or a device event.
type Update struct {
	Samples []telemetry.Sample
	Event   *DeviceEvent
	// Archived: the samples came from the archive (a replay older than the stream).
	Archived bool
}

// replaySkew is how much earlier than a replay's start the stream is read,
// and how far past the stream's first message the archive is asked: a batch
// is stored after its samples were taken (a flush interval, plus any offset
// between the clocks of the node and the NATS server), so it may hold samples
// newer than its store time. Each channel's samples are still given once.
const replaySkew = 5 * time.Second

// Subscribe streams the devices' samples and events (every device when
// devices is empty) that the stream stores from fromNs on (from now on when
// fromNs is 0) to fn, until ctx ends or fn fails. It does not look at the
// samples' own times, nor into the archive: a caller that wants each channel's
// samples once skips by seq what it had (see Replay for history).
func (r *Reader) Subscribe(ctx context.Context, devices []string, fromNs int64, fn func(Update) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy,
		FilterSubjects: r.subjects(devices, true)}
	if fromNs > 0 {
		start := time.Unix(0, fromNs)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	return r.consume(ctx, cfg, 0, func(m jetstream.Msg) error {
		u, ok := r.decode(m)
		if !ok {
			return nil
		}
		return fn(u)
	})
}

// Replay calls fn with the samples of the devices (every device when devices
// is empty) taken at or after sinceNs that the cluster holds when it is
// called, and returns once it has given them all: from the archive what is
// older than the stream's first message, then from the stream up to its last
// message at the call (a few later ones may come too). Each channel's samples
// come once, in sequence order: where the archive and the stream overlap, a
// sample is given once (by its seq and its time, so a channel whose numbering
// started again is not mistaken for a repeat).
//
// It is what a node serves a replay (Subscribe's since_ns) from: everything
// a node's view of the live samples has shown is in the stream, whether the
// archive has it yet or not.
func (r *Reader) Replay(ctx context.Context, devices []string, sinceNs int64, fn func(Update) error) error {
	seen := seenSamples{}
	var info *jetstream.StreamInfo
	// The archive up to the stream's first message; again for what the
	// stream dropped meanwhile (a long archive read of a stream at its
	// retention), until the stream's head stays within what the archive gave.
	for from := sinceNs; ; {
		var err error
		if info, err = r.c.stream.Info(ctx); err != nil {
			return fmt.Errorf("replay: the stream: %w", err)
		}
		first := info.State.FirstTime
		if info.State.Msgs == 0 {
			first = time.Now()
		}
		to := first.Add(r.skew).UnixNano()
		if r.hist == nil || from >= to {
			break
		}
		err = r.hist.Replay(ctx, devices, from, to, func(ss []telemetry.Sample) error {
			if ss = seen.fresh(ss, sinceNs); len(ss) == 0 {
				return nil
			}
			return fn(Update{Samples: ss, Archived: true})
		})
		if err != nil {
			return fmt.Errorf("replay from the archive: %w", err)
		}
		from = to
	}
	end := info.State.LastSeq
	if info.State.Msgs == 0 {
		return nil
	}
	start := time.Unix(0, sinceNs).Add(-r.skew)
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &start,
		FilterSubjects: r.subjects(devices, false)}
	return r.consume(ctx, cfg, end, func(m jetstream.Msg) error {
		u, ok := r.decode(m)
		if !ok || u.Event != nil {
			return nil
		}
		if u.Samples = seen.fresh(u.Samples, sinceNs); len(u.Samples) == 0 {
			return nil
		}
		return fn(u)
	})
}

// consume runs an ordered consumer until ctx ends or fn fails; with end > 0,
// only up to the stream's message end (or the last message pending when the
// consumer was made, if that comes first).
func (r *Reader) consume(ctx context.Context, cfg jetstream.OrderedConsumerConfig, end uint64, fn func(jetstream.Msg) error) error {
	cons, err := r.c.JS.OrderedConsumer(ctx, r.c.Names.Stream(), cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	if end > 0 {
		if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
			return nil // nothing stored from the start time on
		}
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				if end > 0 {
					return ctx.Err()
				}
				return nil
			}
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		if end > 0 {
			md, err := m.Metadata()
			if err != nil || md.Sequence.Stream >= end || md.NumPending == 0 {
				return nil
			}
		}
	}
}

// subjects are the stream subjects of the devices (all when none): their
// sample batches, and their events too when events.
func (r *Reader) subjects(devices []string, events bool) []string {
	p := r.c.Names.prefix()
	if len(devices) == 0 {
		if events {
			return []string{p + ".s.>", p + ".d.>"}
		}
		return []string{p + ".s.>"}
	}
	var out []string
	for _, d := range devices {
		out = append(out, r.c.Names.SampleSubject(d))
		if events {
			out = append(out, r.c.Names.StateSubject(d))
		}
	}
	return out
}

// decode turns a stream message into an update; false for a message that is
// not one (damaged, or not Switchyard's: the archiver counts and logs those).
func (r *Reader) decode(m jetstream.Msg) (Update, bool) {
	p := r.c.Names.prefix()
	subj := m.Subject()
	switch {
	case strings.HasPrefix(subj, p+".s."):
		dev, err := ParseToken(subj[len(p)+3:])
		if err != nil {
			return Update{}, false
		}
		b, err := DecodeBatch(dev, m.Data())
		if err != nil {
			return Update{}, false
		}
		return Update{Samples: b.Samples}, true
	case strings.HasPrefix(subj, p+".d."):
		var e DeviceEvent
		if json.Unmarshal(m.Data(), &e) != nil {
			return Update{}, false
		}
		return Update{Event: &e}, true
	}
	return Update{}, false
}

// seenSamples remembers, per channel, the seq and time of the last sample a
// replay gave.
type seenSamples map[string]seenSample

type seenSample struct {
	seq uint64
	us  int64 // the archive keeps microseconds
}

// fresh keeps the samples not given yet and not older than sinceNs, and
// records them. A sample is a repeat when neither its seq nor its time
// (at the archive's microsecond precision) is past the last one given.
func (seen seenSamples) fresh(ss []telemetry.Sample, sinceNs int64) []telemetry.Sample {
	out := ss[:0:0]
	for _, s := range ss {
		if s.TimeNs < sinceNs {
			continue
		}
		k := s.Key()
		last, ok := seen[k]
		if ok && s.Seq <= last.seq && s.TimeNs/1000 <= last.us {
			continue
		}
		seen[k] = seenSample{seq: s.Seq, us: s.TimeNs / 1000}
		out = append(out, s)
	}
	return out
}

// LatestEvents returns the last event of each of the devices that has one: a
// node that joins late learns from it who owns each device and in what state.
func (r *Reader) LatestEvents(ctx context.Context, devices []string) ([]DeviceEvent, error) {
	var out []DeviceEvent
	for _, dev := range devices {
		last, err := r.c.stream.GetLastMsgForSubject(ctx, r.c.Names.StateSubject(dev))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("last event of %s: %w", dev, err)
		}
		var e DeviceEvent
		if json.Unmarshal(last.Data, &e) != nil {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}
