package server

import (
	"cmp"
	"context"
	"slices"
	"time"

	"connectrpc.com/connect"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/telemetry"
)

// subscribeCapacity bounds each API subscription's queue in the hub (DropOldest).
const subscribeCapacity = 8192

// telemetryService implements TelemetryService once; see deviceService for the
// core/adapter split.
type telemetryService struct {
	hub     *telemetry.Hub
	life    context.Context
	metrics *metrics
	archive Archive // for since_ns; nil without archiving
}

var _ switchyardv1connect.TelemetryServiceHandler = (*telemetryService)(nil)

// subscribe streams batches of matching samples until ctx ends or the server shuts
// down. A batch is sent when it holds maxBatch samples or when the batch window has
// passed since its first sample arrived, whichever comes first.
func (s *telemetryService) subscribe(ctx context.Context, req *pb.SubscribeRequest, out streamOut[pb.SubscribeResponse]) error {
	p, err := validateSubscribe(req)
	if err != nil {
		return err
	}
	if req.GetSinceNs() != 0 {
		return s.subscribeSince(ctx, req.GetSinceNs(), p, out) // replay.go
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("Subscribe")()

	sub := s.hub.Subscribe(telemetry.SubscribeOptions{
		Name:     "api",
		Capacity: subscribeCapacity,
		Policy:   telemetry.DropOldest,
		Match:    p.match,
	})
	defer sub.Close()
	if err := out.header(); err != nil {
		return err
	}

	buf := make([]telemetry.Sample, 0, p.maxBatch)
	window := time.NewTimer(time.Hour)
	window.Stop()
	defer window.Stop()
	for {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-sub.Ready():
		}
		buf = sub.Drain(buf[:0], p.maxBatch)
		if len(buf) == 0 {
			continue // a coalesced wake-up whose samples an earlier drain took
		}
		if len(buf) < p.maxBatch {
			window.Reset(p.window)
		collect:
			for len(buf) < p.maxBatch {
				select {
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-window.C:
					break collect
				case <-sub.Ready():
					buf = sub.Drain(buf, p.maxBatch-len(buf))
				}
			}
			window.Stop()
		}
		resp := &pb.SubscribeResponse{Samples: samplesToProto(buf), Dropped: sub.Dropped()}
		if err := out.send(resp); err != nil {
			return err
		}
		clear(buf) // let go of strings until the next drain
	}
}

func (s *telemetryService) getLatest(_ context.Context, req *pb.GetLatestRequest) (*pb.GetLatestResponse, error) {
	match, err := compileSelector("selector", req.GetSelector())
	if err != nil {
		return nil, err
	}
	samples := s.hub.Latest(match)
	slices.SortFunc(samples, func(a, b telemetry.Sample) int {
		return cmp.Or(cmp.Compare(a.Device, b.Device), cmp.Compare(a.Channel, b.Channel))
	})
	return &pb.GetLatestResponse{Samples: samplesToProto(samples)}, nil
}

// Subscribe implements switchyardv1connect.TelemetryServiceHandler.
func (s *telemetryService) Subscribe(ctx context.Context, req *connect.Request[pb.SubscribeRequest], stream *connect.ServerStream[pb.SubscribeResponse]) error {
	return connectError(s.subscribe(ctx, req.Msg, connectOut(stream)))
}

// GetLatest implements switchyardv1connect.TelemetryServiceHandler.
func (s *telemetryService) GetLatest(ctx context.Context, req *connect.Request[pb.GetLatestRequest]) (*connect.Response[pb.GetLatestResponse], error) {
	return connectResponse(s.getLatest(ctx, req.Msg))
}
