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
}

// NewReader makes a reader; hist may be nil (no archive: a replay starts at
// the oldest sample the stream holds).
func NewReader(c *Cluster, hist History) *Reader { return &Reader{c: c, hist: hist} }

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

// Update is what a subscription delivers: samples, or a device event.
type Update struct {
	Samples []telemetry.Sample
	Event   *DeviceEvent
	// Archived: the samples came from the archive (a replay older than the stream).
	Archived bool
}

// Subscribe streams the devices' samples and events (every device when
// devices is empty) to fn until ctx ends or fn fails. With sinceNs > 0 it
// first replays from that time: from the archive what is older than the
// stream's first message, then from the stream, then live; each channel's
// samples arrive once, in sequence order.
func (r *Reader) Subscribe(ctx context.Context, devices []string, sinceNs int64, fn func(Update) error) error {
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy}
	p := r.c.Names.prefix()
	if len(devices) == 0 {
		cfg.FilterSubjects = []string{p + ".s.>", p + ".d.>"}
	} else {
		for _, d := range devices {
			cfg.FilterSubjects = append(cfg.FilterSubjects, r.c.Names.SampleSubject(d), r.c.Names.StateSubject(d))
		}
	}
	last := map[string]uint64{} // device/channel -> last delivered seq
	if sinceNs > 0 {
		info, err := r.c.stream.Info(ctx)
		if err != nil {
			return err
		}
		first := info.State.FirstTime.UnixNano()
		if info.State.Msgs == 0 {
			first = time.Now().UnixNano()
		}
		if r.hist != nil && sinceNs < first {
			err := r.hist.Replay(ctx, devices, sinceNs, first, func(ss []telemetry.Sample) error {
				ss = fresh(last, ss, sinceNs)
				if len(ss) == 0 {
					return nil
				}
				return fn(Update{Samples: ss, Archived: true})
			})
			if err != nil {
				return fmt.Errorf("replay from the archive: %w", err)
			}
		}
		start := time.Unix(0, sinceNs)
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &start
	}
	cons, err := r.c.JS.OrderedConsumer(ctx, r.c.Names.Stream(), cfg)
	if err != nil {
		return err
	}
	it, err := cons.Messages()
	if err != nil {
		return err
	}
	defer it.Stop()
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	samplePrefix, statePrefix := p+".s.", p+".d."
	for {
		m, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		subj := m.Subject()
		switch {
		case strings.HasPrefix(subj, samplePrefix):
			dev, err := ParseToken(subj[len(samplePrefix):])
			if err != nil {
				continue
			}
			b, err := DecodeBatch(dev, m.Data())
			if err != nil {
				continue // counted by the archiver, which sees every batch
			}
			if ss := fresh(last, b.Samples, sinceNs); len(ss) > 0 {
				if err := fn(Update{Samples: ss}); err != nil {
					return err
				}
			}
		case strings.HasPrefix(subj, statePrefix):
			var e DeviceEvent
			if json.Unmarshal(m.Data(), &e) != nil {
				continue
			}
			if err := fn(Update{Event: &e}); err != nil {
				return err
			}
		}
	}
}

// fresh keeps the samples not delivered yet (by each channel's seq) and not
// older than sinceNs, and records them as delivered.
func fresh(last map[string]uint64, ss []telemetry.Sample, sinceNs int64) []telemetry.Sample {
	out := ss[:0:0]
	for _, s := range ss {
		k := s.Key()
		if s.TimeNs < sinceNs || s.Seq <= last[k] {
			continue
		}
		last[k] = s.Seq
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
