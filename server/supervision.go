package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/supervisor"
)

// supervisionEventBuffer bounds the events one WatchSupervisionEvents stream may
// fall behind by; older ones are dropped, counted and reported in the stream.
const supervisionEventBuffer = 1024

// EventSource is what WatchSupervisionEvents needs besides Tree: a subscription
// to the tree's lifecycle events. A *supervisor.Supervisor is one. When the Tree
// given to New is not an EventSource, WatchSupervisionEvents answers Unimplemented.
type EventSource interface {
	// Events subscribes to the events of the tree, keeping at most buffer
	// undelivered ones.
	Events(buffer int) *supervisor.Subscription
}

// Restarter is what RestartProcess needs besides Tree. A *supervisor.Supervisor
// is one. When the Tree given to New is not a Restarter, RestartProcess answers
// Unimplemented.
type Restarter interface {
	// RestartPath restarts the process reached by following ids from the root.
	RestartPath(ids ...string) error
}

// Errors of the SystemService core, mapped in codeOf.
var (
	errNoEvents  = errors.New("this server's supervision tree does not stream events")
	errNoRestart = errors.New("this server's supervision tree cannot restart processes")
)

func (s *systemService) restartProcess(ctx context.Context, req *pb.RestartProcessRequest) (*pb.RestartProcessResponse, error) {
	r, ok := s.tree.(Restarter)
	if !ok {
		return nil, errNoRestart
	}
	path := req.GetPath()
	ids := strings.Split(path, "/")
	if path == "" || slices.Contains(ids, "") {
		return nil, &fieldError{field: "path", msg: fmt.Sprintf("want ids joined by \"/\" below the root, e.g. \"devices/psu-05\"; got %q", path)}
	}
	// The restart runs beside the request: when it restarts the API itself (or a
	// supervisor above it), this run of the server shuts down while the request
	// waits, and the request then answers at once instead of holding up its own
	// server's shutdown. Close waits for the goroutine.
	done := make(chan error, 1)
	s.server.bg.Go(func() { done <- r.RestartPath(ids...) })
	select {
	case err := <-done:
		if err != nil {
			return nil, err
		}
	case <-s.life.Done():
		// This server is being restarted: the new run serves on the same ports.
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	return &pb.RestartProcessResponse{}, nil
}

// watchSupervisionEvents subscribes to the tree's events, sends the headers, the
// snapshot if asked, then every event until ctx ends or the server shuts down.
// The subscription is a bounded ring read on this goroutine: a slow client loses
// the oldest events (counted in dropped, visible as a gap in seq) and never holds
// up a supervisor.
func (s *systemService) watchSupervisionEvents(ctx context.Context, req *pb.WatchSupervisionEventsRequest, out streamOut[pb.WatchSupervisionEventsResponse]) error {
	src, ok := s.tree.(EventSource)
	if !ok {
		return errNoEvents
	}
	filter, err := compileSupervisionFilter(req)
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(ctx, s.life)
	defer cancel()
	defer s.metrics.streamStarted("WatchSupervisionEvents")()

	// Subscribe before the snapshot, so no event falls between the two; an event
	// already reflected in the snapshot may then also arrive, which is harmless.
	sub := src.Events(supervisionEventBuffer)
	defer sub.Close()
	if err := out.header(); err != nil {
		return err
	}
	if req.GetIncludeSnapshot() {
		root := s.tree.Snapshot()
		snap := &pb.WatchSupervisionEventsResponse{Item: &pb.WatchSupervisionEventsResponse_Snapshot{Snapshot: nodeToProto(&root)}}
		if err := out.send(snap); err != nil {
			return err
		}
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if !filter.match(&ev) {
			continue
		}
		resp := &pb.WatchSupervisionEventsResponse{
			Item:    &pb.WatchSupervisionEventsResponse_Event{Event: eventToProto(&ev)},
			Dropped: sub.Dropped(),
		}
		if err := out.send(resp); err != nil {
			return err
		}
	}
}

// supervisionFilter selects supervision events by process path and kind.
type supervisionFilter struct {
	procs globs
	kinds map[pb.SupervisionEventKind]bool // nil: every kind
}

func compileSupervisionFilter(req *pb.WatchSupervisionEventsRequest) (supervisionFilter, error) {
	procs, err := compileGlobs("processes", req.GetProcesses())
	if err != nil {
		return supervisionFilter{}, err
	}
	f := supervisionFilter{procs: procs}
	for i, k := range req.GetKinds() {
		if _, known := pb.SupervisionEventKind_name[int32(k)]; !known || k == pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_UNSPECIFIED {
			return supervisionFilter{}, errField("kinds["+strconv.Itoa(i)+"]", "unknown event kind %d", int32(k))
		}
		if f.kinds == nil {
			f.kinds = map[pb.SupervisionEventKind]bool{}
		}
		f.kinds[k] = true
	}
	return f, nil
}

// match reports whether ev passes the filter.
func (f *supervisionFilter) match(ev *supervisor.Event) bool {
	if f.kinds != nil && !f.kinds[eventKindToProto(ev.Kind)] {
		return false
	}
	if len(f.procs) == 0 {
		return true
	}
	return f.procs.match(processPath(ev))
}

// processPath is the path below the root of the process an event is about, as
// RestartProcess takes it: "devices/psu-05" for a child of the devices
// supervisor, "devices" for that supervisor itself, "" for the root. An event
// path starts with the root's id ("switchyard/devices").
func processPath(ev *supervisor.Event) string {
	_, rel, _ := strings.Cut(ev.Path, "/")
	switch {
	case ev.Child == "":
		return rel
	case rel == "":
		return ev.Child
	default:
		return rel + "/" + ev.Child
	}
}
