package server

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// subscribeCapacity bounds each API subscription's queue in the hub (Squash: when
// full, squashed to the latest sample per channel).
const subscribeCapacity = 8192

// telemetryService implements TelemetryService once; see deviceService for the
// core/adapter split.
type telemetryService struct {
	hub     *telemetry.Hub
	devices Devices
	life    context.Context
	metrics *metrics
	archive Archive // for since_ns; nil without archiving
}

// subscribe streams batches of matching samples until ctx ends or the server shuts
// down. A batch is sent when it holds maxBatch samples or when the batch window has
// passed since its first sample arrived, whichever comes first. The request's
// deadband and rate cap apply per channel (telemetry.Filter); device state changes,
// when asked for, are sent as they happen, after the samples before them.
func (s *telemetryService) subscribe(ctx context.Context, req *pb.SubscribeRequest, out streamOut[pb.SubscribeResponse]) error {
	p, err := validateSubscribe(req, s.devices.Tags)
	if err != nil {
		return err
	}
	since := req.GetSinceNs()
	if since < 0 {
		return errField("since_ns", "must be >= 0, got %d", since)
	}
	if since != 0 && s.archive == nil {
		return errNoArchive
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("Subscribe")()

	opts := telemetry.SubscribeOptions{Name: "api", Peer: out.peer, Capacity: subscribeCapacity, Policy: telemetry.Squash, Match: p.match}
	if since != 0 {
		// A replaying stream promises every seq: it drops (counted) rather than
		// squashes if it falls behind while the archive is read.
		opts.Name, opts.Policy = "api-since", telemetry.DropOldest
	}
	sub := s.hub.Subscribe(opts)
	defer sub.Close()
	var states *devicemgr.StateWatch
	var statesReady <-chan struct{}
	if p.states {
		states = s.devices.WatchStates()
		defer states.Close()
		statesReady = states.Ready()
	}
	if err := out.header(); err != nil {
		return err
	}
	st := &subscribeStream{p: p, sub: sub, out: out, filter: telemetry.NewFilter(p.filter)}
	if since != 0 {
		// The replay stands in for initial values (replay.go).
		if st.replayed, err = s.replay(ctx, since, st); err != nil {
			return err
		}
		st.p.initial = false
	}
	if err := st.sendInitial(s); err != nil {
		return err
	}
	return st.run(ctx, states, statesReady)
}

// subscribeStream is the state of one Subscribe stream, owned by its goroutine.
type subscribeStream struct {
	p      subscribeParams
	sub    *telemetry.Subscription
	out    streamOut[pb.SubscribeResponse]
	filter *telemetry.Filter
	enc    responseEncoder
	raw    []telemetry.Sample // drained from the hub
	buf    []telemetry.Sample // filtered, waiting to be sent
	sentAt time.Time          // for heartbeats
	// replayed holds, per channel key, the µs timestamp of the newest sample a
	// since_ns replay sent; live samples not newer are skipped. A channel leaves
	// the map with its first newer sample; nil once empty or without a replay.
	replayed map[string]int64
}

// sendInitial sends the latest values and device states asked for. The hub
// subscription already exists, so nothing published after them is missed (a value
// may arrive twice; its seq tells).
func (st *subscribeStream) sendInitial(s *telemetryService) error {
	now := time.Now()
	if st.p.initial {
		latest := s.hub.Latest(st.p.match)
		sortSamples(latest)
		for i := range latest {
			st.filter.Offer(now, &latest[i], nil) // the deadband starts from what the client saw
		}
		if err := st.sendSamples(latest, true); err != nil {
			return err
		}
	}
	if st.p.states {
		infos := slices.Clone(s.devices.List())
		slices.SortFunc(infos, func(a, b devicemgr.Info) int { return cmp.Compare(a.Name, b.Name) })
		if err := st.sendDevices(infos); err != nil {
			return err
		}
	}
	st.sentAt = now
	return nil
}

func (st *subscribeStream) send(resp *pb.SubscribeResponse) error {
	resp.Dropped, resp.Squashed = st.sub.Dropped(), st.sub.Squashed()
	st.sentAt = time.Now()
	return st.out.send(resp)
}

// sendSamples sends one batch of samples: from the samples' cached encodings where
// the transport takes pre-encoded bytes, else as a message to marshal. Both give
// the client the same bytes.
func (st *subscribeStream) sendSamples(samples []telemetry.Sample, initial bool) error {
	if st.out.sendEncoded == nil {
		return st.send(&pb.SubscribeResponse{Samples: samplesToProto(samples), Initial: initial})
	}
	buf := st.enc.encode(samples, st.sub.Dropped(), st.sub.Squashed(), initial)
	st.sentAt = time.Now()
	return st.out.sendEncoded(buf)
}

func (st *subscribeStream) sendDevices(infos []devicemgr.Info) error {
	resp := &pb.SubscribeResponse{}
	for i := range infos {
		if st.p.matchDev(infos[i].Name) {
			resp.Devices = append(resp.Devices, deviceToProto(&infos[i]))
		}
	}
	if len(resp.Devices) == 0 {
		return nil
	}
	return st.send(resp)
}

// flush sends the buffered samples in batches of at most maxBatch.
func (st *subscribeStream) flush() error {
	for len(st.buf) > 0 {
		n := min(len(st.buf), st.p.maxBatch)
		if err := st.sendSamples(st.buf[:n], false); err != nil {
			return err
		}
		rest := copy(st.buf, st.buf[n:])
		clear(st.buf[rest:]) // let go of strings until the next drain
		st.buf = st.buf[:rest]
	}
	return nil
}

// run is the stream's event loop: hub wake-ups, held samples falling due, device
// state changes, the batch window and heartbeats.
func (st *subscribeStream) run(ctx context.Context, states *devicemgr.StateWatch, statesReady <-chan struct{}) error {
	window := newStoppedTimer()
	defer window.Stop()
	windowArmed := false
	due := newStoppedTimer()
	defer due.Stop()
	var heartbeat <-chan time.Time
	if st.p.heartbeat > 0 {
		hb := time.NewTicker(st.p.heartbeat / 2)
		defer hb.Stop()
		heartbeat = hb.C
	}
	for {
		if next, ok := st.filter.NextDue(); ok {
			due.Reset(time.Until(next))
		} else {
			due.Stop()
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-st.sub.Ready():
			st.take(st.p.maxBatch)
		case <-due.C:
			st.buf = st.filter.Due(time.Now(), st.buf)
		case <-statesReady:
			// Samples published before the change go first, so the client sees them
			// in order: take everything queued, not only what a wake-up announced.
			st.take(0)
			if err := st.flush(); err != nil {
				return err
			}
			windowArmed = false
			window.Stop()
			if err := st.sendDevices(states.Take()); err != nil {
				return err
			}
		case <-window.C:
			windowArmed = false
			if err := st.flush(); err != nil {
				return err
			}
		case <-heartbeat:
			if len(st.buf) == 0 && time.Since(st.sentAt) >= st.p.heartbeat {
				if err := st.send(&pb.SubscribeResponse{Heartbeat: true}); err != nil {
					return err
				}
			}
		}
		if len(st.buf) >= st.p.maxBatch {
			windowArmed = false
			window.Stop()
			if err := st.flush(); err != nil {
				return err
			}
		}
		if len(st.buf) > 0 && !windowArmed {
			window.Reset(st.p.window)
			windowArmed = true
		}
	}
}

// take moves up to max queued samples (all when max <= 0) through the filter
// into the batch being built.
func (st *subscribeStream) take(max int) {
	st.raw = st.sub.Drain(st.raw[:0], max)
	now := time.Now()
	for i := range st.raw {
		if st.replayed != nil && st.alreadyReplayed(&st.raw[i]) {
			continue
		}
		st.buf = st.filter.Offer(now, &st.raw[i], st.buf)
	}
	clear(st.raw)
}

// alreadyReplayed reports whether the replay sent this live sample's channel a
// sample at least as new (QuestDB keeps microseconds).
func (st *subscribeStream) alreadyReplayed(smp *telemetry.Sample) bool {
	key := smp.Key()
	us, ok := st.replayed[key]
	if !ok {
		return false
	}
	if smp.TimeNs/1000 <= us {
		return true
	}
	delete(st.replayed, key)
	if len(st.replayed) == 0 {
		st.replayed = nil
	}
	return false
}

// newStoppedTimer returns a timer that has not been started.
func newStoppedTimer() *time.Timer {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return t
}

func sortSamples(samples []telemetry.Sample) {
	slices.SortFunc(samples, func(a, b telemetry.Sample) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Channel, b.Channel))
	})
}

func (s *telemetryService) getLatest(_ context.Context, req *pb.GetLatestRequest) (*pb.GetLatestResponse, error) {
	match, err := compileSelector("selector", req.GetSelector(), s.devices.Tags)
	if err != nil {
		return nil, err
	}
	samples := s.hub.Latest(match)
	sortSamples(samples)
	return &pb.GetLatestResponse{Samples: samplesToProto(samples)}, nil
}
