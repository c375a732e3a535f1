package server

import (
	"context"
	"slices"
	"sync"

	"connectrpc.com/connect"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// healthService implements grpc.health.v1 once, for both ports: the overall
// status ("") and one per Switchyard service, SERVING while the server serves and
// NOT_SERVING from the start of its shutdown. It belongs to one run of Serve.
type healthService struct {
	life     context.Context // ends Watch streams at shutdown
	services []string        // names it answers for, besides ""

	mu      sync.Mutex
	serving bool
	changed chan struct{} // closed and replaced at every change
}

func newHealthService(life context.Context, services []string) *healthService {
	return &healthService{life: life, services: services, changed: make(chan struct{})}
}

// set changes the status of every service.
func (h *healthService) set(serving bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.serving == serving {
		return
	}
	h.serving = serving
	close(h.changed)
	h.changed = make(chan struct{})
}

// status is what a service reports now, and a channel closed at the next change.
func (h *healthService) status(service string) (healthpb.HealthCheckResponse_ServingStatus, <-chan struct{}) {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case service != "" && !slices.Contains(h.services, service):
		return healthpb.HealthCheckResponse_SERVICE_UNKNOWN, h.changed
	case h.serving:
		return healthpb.HealthCheckResponse_SERVING, h.changed
	default:
		return healthpb.HealthCheckResponse_NOT_SERVING, h.changed
	}
}

func (h *healthService) check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	st, _ := h.status(req.GetService())
	if st == healthpb.HealthCheckResponse_SERVICE_UNKNOWN {
		return nil, connect.NewError(connect.CodeNotFound, errUnknownService(req.GetService()))
	}
	return &healthpb.HealthCheckResponse{Status: st}, nil
}

// watch sends the status now and at every change, until the client leaves or
// the server shuts down.
func (h *healthService) watch(ctx context.Context, req *healthpb.HealthCheckRequest, out streamOut[healthpb.HealthCheckResponse]) error {
	ctx, cancel := streamContext(ctx, h.life)
	defer cancel()
	for {
		st, changed := h.status(req.GetService())
		if err := out.send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-changed:
		}
	}
}

type errUnknownService string

func (e errUnknownService) Error() string { return "unknown service " + quote(string(e)) }
