package server

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// subscribeCapacity bounds each API subscription's queue in the hub, in samples
// (Squash: when full, squashed to the latest sample per channel).
const subscribeCapacity = 8192

// telemetryService implements TelemetryService once; see deviceService for the
// core/adapter split.
type telemetryService struct {
	hub     *telemetry.Hub
	devices Devices
	life    context.Context
	metrics *metrics
	archive Archive            // for since_ns; nil without archiving
	replay  telemetry.Replayer // for since_ns instead of archive (a cluster node); nil: none
	limits  Limits             // SubscriberQueueBytes, StreamStallTimeout
}

// subscribe streams the batches of a telemetry.Stream (batching window,
// maximum batch, deadband and rate cap, heartbeats, device states in order,
// the replay of since_ns) until ctx ends or the server shuts down. It only
// translates: the request into the stream's options, each batch into a
// response.
//
// A stream whose queue stays full and unread for Limits.StreamStallTimeout
// ends with ErrStalled: its client stopped reading, so its handler is most
// likely stuck in a send that waits for the client's flow-control window, and
// the transport ends the stream from outside (out.abort). What the stream
// holds is counted in switchyard_api_stream_held_bytes.
func (s *telemetryService) subscribe(ctx context.Context, req *pb.SubscribeRequest, out streamOut[pb.SubscribeResponse]) error {
	p, err := validateSubscribe(req, s.devices.Tags)
	if err != nil {
		return err
	}
	since := req.GetSinceNs()
	if since < 0 {
		return errField("since_ns", "must be >= 0, got %d", since)
	}
	if since != 0 && s.archive == nil && s.replay == nil {
		return errNoArchive
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("Subscribe")()

	var stalled atomic.Bool
	var aborting sync.WaitGroup
	defer aborting.Wait() // runs after st.Close, after which no OnStall starts
	opts := telemetry.StreamOptions[devicemgr.Info]{
		Peer: out.peer, Match: p.match, Window: p.window, MaxBatch: p.maxBatch, Filter: p.filter,
		Initial: p.initial, Heartbeat: p.heartbeat, Since: since,
		Capacity: subscribeCapacity, MaxBytes: s.limits.SubscriberQueueBytes, StallAfter: s.limits.StreamStallTimeout,
		OnStall: func() { // on a publisher's goroutine: it must not wait
			stalled.Store(true)
			s.metrics.stalled.Inc()
			if out.abort != nil {
				aborting.Go(func() { out.abort(telemetry.ErrStalled) })
			}
		},
	}
	switch {
	case since != 0 && s.replay != nil:
		opts.Replay = s.replay
		if sel := req.GetSelector(); len(sel.GetDevices()) > 0 || len(sel.GetTags()) > 0 {
			opts.Devices = []string{} // none matched: read nothing
			for _, d := range s.devices.List() {
				if p.matchDev(d.Name) {
					opts.Devices = append(opts.Devices, d.Name)
				}
			}
		}
	case since != 0:
		opts.Archive = s.archive
	}
	if p.states {
		opts.States = telemetry.StateFeed[devicemgr.Info]{
			Watch:   s.devices.WatchStates(),
			Current: func() []devicemgr.Info { return slices.Clone(s.devices.List()) },
			Name:    func(i *devicemgr.Info) string { return i.Name },
			Match:   p.matchDev,
		}
	}
	st := telemetry.NewStream(s.hub, opts)
	defer st.Close()
	held := &heldStream{stream: st}
	defer s.metrics.held.hold(held)()
	if err := out.header(); err != nil {
		return err
	}
	var enc responseEncoder
	for {
		b, err := st.Next(ctx)
		if err == nil {
			err = sendBatch(out, &enc, &b, &held.sending)
		}
		if err != nil && stalled.Load() {
			return telemetry.ErrStalled // whatever the aborted send said
		}
		if err != nil {
			return err
		}
	}
}

// sendBatch sends one batch of a stream: samples from their cached encodings
// where the transport takes pre-encoded bytes, else as a message to marshal
// (both give the client the same bytes); device states and heartbeats as
// messages. sending holds the response's encoded size while it is sent.
func sendBatch(out streamOut[pb.SubscribeResponse], enc *responseEncoder, b *telemetry.Batch[devicemgr.Info], sending *atomic.Int64) error {
	defer sending.Store(0)
	if len(b.States) == 0 && !b.Heartbeat && out.sendEncoded != nil {
		buf := enc.encode(b.Samples, b.Dropped, b.Squashed, b.Initial)
		sending.Store(int64(len(*buf)))
		return out.sendEncoded(buf)
	}
	resp := &pb.SubscribeResponse{Dropped: b.Dropped, Squashed: b.Squashed, Initial: b.Initial, Heartbeat: b.Heartbeat}
	if len(b.Samples) > 0 {
		resp.Samples = samplesToProto(b.Samples)
	}
	for i := range b.States {
		resp.Devices = append(resp.Devices, deviceToProto(&b.States[i]))
	}
	if len(b.Samples) > 0 {
		sending.Store(int64(proto.Size(resp)))
	}
	return out.send(resp)
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
