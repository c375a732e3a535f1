package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// crashable is a worker that fails when told to, and is ready once it runs.
type crashable struct{ fail chan error }

func (c *crashable) Serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-c.fail:
		return err
	}
}

// startTree runs a real supervision tree (root → devices → psu1) behind a server.
func startTree(t *testing.T) (*crashable, *servertest.Running) {
	t.Helper()
	w := &crashable{fail: make(chan error)}
	devices := supervisor.New("devices", supervisor.Options{MaxRestarts: 100, MaxTime: time.Second})
	if err := devices.Add(supervisor.ChildSpec{ID: "psu1", Service: w,
		Backoff: &supervisor.Backoff{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond}}); err != nil {
		t.Fatal(err)
	}
	root := supervisor.New("root", supervisor.Options{})
	if err := root.Add(supervisor.ChildSpec{ID: "devices", Service: devices}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("root.Serve: %v", err)
		}
	})
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), root, server.Options{})
	return w, run
}

// nextEvent reads events until one of kind for child arrives, and returns it.
func nextEvent(t *testing.T, recv func() (*pb.WatchSupervisionEventsResponse, error), child string, kind pb.SupervisionEventKind, lastSeq *uint64) *pb.SupervisionEvent {
	t.Helper()
	for {
		resp, err := recv()
		if err != nil {
			t.Fatalf("waiting for %s %v: %v", child, kind, err)
		}
		ev := resp.GetEvent()
		if ev == nil {
			t.Fatalf("got %v, want an event", resp)
		}
		if ev.GetSeq() <= *lastSeq {
			t.Fatalf("seq %d after %d: not increasing", ev.GetSeq(), *lastSeq)
		}
		*lastSeq = ev.GetSeq()
		if ev.GetChild() == child && ev.GetKind() == kind {
			return ev
		}
	}
}

func TestWatchSupervisionEventsGRPC(t *testing.T) {
	w, run := startTree(t)
	conn := run.Dial(t)
	ctx := testCtx(t)
	stream, err := pb.NewSystemServiceClient(conn).WatchSupervisionEvents(ctx, &pb.WatchSupervisionEventsRequest{IncludeSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	psu, ok := findProcess(first.GetSnapshot(), "devices", "psu1")
	if !ok || psu.GetState() != pb.ProcessState_PROCESS_STATE_RUNNING || psu.GetUptimeNs() < 0 {
		t.Fatalf("snapshot = %v, want devices/psu1 RUNNING", first)
	}

	w.fail <- errors.New("socket reset")
	var seq uint64
	ex := nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_EXITED, &seq)
	if ex.GetPath() != "root/devices" || ex.GetReason() != "socket reset" {
		t.Fatalf("exit event = %v, want path root/devices, reason \"socket reset\"", ex)
	}
	rs := nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_RESTART_SCHEDULED, &seq)
	if rs.GetNextRestartNs() < ex.GetTimestampNs() {
		t.Fatalf("restart event = %v, want next_restart_ns after the exit at %d", rs, ex.GetTimestampNs())
	}
	nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED, &seq)

	// A normal exit of a permanent child restarts it too.
	w.fail <- nil
	nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED, &seq)
}

func TestWatchSupervisionEventsConnect(t *testing.T) {
	w, run := startTree(t)
	client := switchyardv1connect.NewSystemServiceClient(http.DefaultClient, run.HTTPURL)
	ctx := testCtx(t)
	stream, err := client.WatchSupervisionEvents(ctx, connect.NewRequest(&pb.WatchSupervisionEventsRequest{}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	// The call returns once the headers arrived, so the subscription exists.
	w.fail <- errors.New("boom")
	recv := func() (*pb.WatchSupervisionEventsResponse, error) {
		if !stream.Receive() {
			return nil, errors.Join(stream.Err(), errors.New("stream ended"))
		}
		return stream.Msg(), nil
	}
	var seq uint64
	ev := nextEvent(t, recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_EXITED, &seq)
	if ev.GetReason() != "boom" {
		t.Fatalf("event = %v, want reason boom", ev)
	}
}

// A tree that cannot stream events answers Unimplemented, not a hang.
func TestWatchSupervisionEventsUnimplemented(t *testing.T) {
	e := startEnv(t)
	stream, err := e.system.WatchSupervisionEvents(testCtx(t), &pb.WatchSupervisionEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = stream.Recv()
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("err = %v, want Unimplemented", err)
	}
}

func findProcess(p *pb.Process, ids ...string) (*pb.Process, bool) {
	for _, id := range ids {
		var next *pb.Process
		for _, c := range p.GetChildren() {
			if c.GetId() == id {
				next = c
			}
		}
		if next == nil {
			return nil, false
		}
		p = next
	}
	return p, true
}

func TestRestartProcess(t *testing.T) {
	_, run := startTree(t)
	conn := run.Dial(t)
	ctx := testCtx(t)
	sys := pb.NewSystemServiceClient(conn)
	stream, err := sys.WatchSupervisionEvents(ctx, &pb.WatchSupervisionEventsRequest{IncludeSnapshot: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil { // the snapshot: subscribed
		t.Fatal(err)
	}
	if _, err := sys.RestartProcess(ctx, &pb.RestartProcessRequest{Path: "devices/psu1"}); err != nil {
		t.Fatal(err)
	}
	var seq uint64
	ev := nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STOPPED, &seq)
	if ev.GetPath() != "root/devices" || ev.GetReason() != "shutdown for a restart" {
		t.Fatalf("stop event %v, want path root/devices, reason \"shutdown for a restart\"", ev)
	}
	nextEvent(t, stream.Recv, "psu1", pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED, &seq)

	for path, want := range map[string]codes.Code{
		"":              codes.InvalidArgument,
		"devices//psu1": codes.InvalidArgument,
		"devices/nope":  codes.NotFound,
		"nope/psu1":     codes.NotFound,
	} {
		_, err := sys.RestartProcess(ctx, &pb.RestartProcessRequest{Path: path})
		if status.Code(err) != want {
			t.Errorf("RestartProcess(%q) = %v, want %v", path, err, want)
		}
	}
	e := startEnv(t)
	if _, err := e.system.RestartProcess(ctx, &pb.RestartProcessRequest{Path: "devices/psu1"}); status.Code(err) != codes.Unimplemented {
		t.Errorf("RestartProcess on a snapshot-only tree = %v, want Unimplemented", err)
	}
}

// TestWatchSupervisionEventsFilter: a stream asked for one process's exits and
// starts gets exactly those, in order (no RESTART_SCHEDULED between them, no
// event of another process); bad filters name their field.
func TestWatchSupervisionEventsFilter(t *testing.T) {
	w, run := startTree(t)
	conn := run.Dial(t)
	ctx := testCtx(t)
	sys := pb.NewSystemServiceClient(conn)
	stream, err := sys.WatchSupervisionEvents(ctx, &pb.WatchSupervisionEventsRequest{
		Processes: []string{"devices/psu*"},
		Kinds:     []pb.SupervisionEventKind{pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_EXITED, pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	// The devices supervisor's own events pass a "devices" filter only.
	whole, err := sys.WatchSupervisionEvents(ctx, &pb.WatchSupervisionEventsRequest{Processes: []string{"devices"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := whole.Header(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		w.fail <- errors.New("socket reset")
		for _, want := range []pb.SupervisionEventKind{pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_EXITED, pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED} {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatal(err)
			}
			if ev := resp.GetEvent(); ev.GetKind() != want || ev.GetChild() != "psu1" || ev.GetPath() != "root/devices" {
				t.Fatalf("event %v, want %v of psu1", ev, want)
			}
		}
	}
	if _, err := sys.RestartProcess(ctx, &pb.RestartProcessRequest{Path: "devices"}); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := whole.Recv()
		if err != nil {
			t.Fatal(err)
		}
		ev := resp.GetEvent()
		// About the devices supervisor: from its parent, or from itself.
		fromParent := ev.GetPath() == "root" && ev.GetChild() == "devices"
		fromItself := ev.GetPath() == "root/devices" && ev.GetChild() == ""
		if !fromParent && !fromItself {
			t.Fatalf("event %v on a \"devices\" stream: not about the devices supervisor", ev)
		}
		if fromParent && ev.GetKind() == pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STARTED {
			break
		}
	}

	for _, tc := range []struct {
		req *pb.WatchSupervisionEventsRequest
		msg string
	}{
		{&pb.WatchSupervisionEventsRequest{Processes: []string{""}}, "processes[0]: must be at least 1 characters"},
		{&pb.WatchSupervisionEventsRequest{Processes: []string{"devices/["}}, "processes[0]: bad glob pattern"},
		{&pb.WatchSupervisionEventsRequest{Kinds: []pb.SupervisionEventKind{pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_STATUS, 99}}, "kinds[1]: value must be one of the defined enum values"},
		{&pb.WatchSupervisionEventsRequest{Kinds: []pb.SupervisionEventKind{0}}, "kinds[0]: must not be in list [0]"},
	} {
		s, err := sys.WatchSupervisionEvents(ctx, tc.req)
		if err == nil {
			_, err = s.Recv()
		}
		wantCode(t, err, codes.InvalidArgument, tc.msg)
	}
}
