package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// fakeConfig answers reloads from a script: the next result, and what it
// was asked.
type fakeConfig struct {
	mu     sync.Mutex
	next   config.Reload
	err    error
	asked  []string // "by dryRun"
	active config.Active
}

func (f *fakeConfig) Reload(trigger config.Trigger, by string, dryRun bool) (config.Reload, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, by+" "+map[bool]string{true: "dry", false: "apply"}[dryRun])
	r := f.next
	r.Trigger, r.By, r.DryRun = trigger, by, dryRun
	return r, f.err
}

func (f *fakeConfig) Active() config.Active {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.active
}

func TestReloadConfigAndGetConfig(t *testing.T) {
	logs := &syncBuffer{}
	cfg := &fakeConfig{
		next: config.Reload{Time: t0, Source: "plant.yaml", Hash: "ab12cd34ef56aa", PreviousHash: "99", Applied: true,
			Diff: config.Diff{Added: []string{"psu3"}, Removed: []string{"psu2"}, Updated: []config.DeviceUpdate{{Name: "psu1", What: []string{"alarm limits"}}},
				Unchanged: 1, Alarms: true, NeedsRestart: []string{`listen.grpc: "a" -> "b"`}}},
		active: config.Active{Config: &config.Config{Hash: "ab12cd34ef56aa", Watch: true, Devices: make([]config.Device, 3)},
			Source: "plant.yaml", LoadedAt: t0, By: "anonymous", Trigger: config.TriggerAPI, NeedsRestart: []string{`listen.grpc: "a" -> "b"`}},
	}
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), fakeTree{testTree}, server.Options{
		Config: cfg, Logger: slog.New(slog.NewTextHandler(logs, nil)),
	})
	sys := pb.NewSystemServiceClient(run.Dial(t))
	ctx := testCtx(t)

	resp, err := sys.ReloadConfig(ctx, &pb.ReloadConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	r := resp.GetReload()
	if !r.GetApplied() || r.GetBy() != "anonymous" || r.GetTrigger() != pb.ConfigTrigger_CONFIG_TRIGGER_API || r.GetHash() != "ab12cd34ef56aa" ||
		r.GetSummary() != `applied ab12cd34ef56: 1 added, 1 removed, 1 updated in place (alarm limits), 1 unchanged; alarm rules replaced; needs a restart: listen.grpc` ||
		r.GetDiff().GetUpdated()[0].GetChanged()[0] != "alarm limits" || r.GetDiff().GetRemoved()[0] != "psu2" {
		t.Fatalf("ReloadConfig = %v", r)
	}
	if _, err := sys.ReloadConfig(ctx, &pb.ReloadConfigRequest{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	got, err := sys.GetConfig(ctx, &pb.GetConfigRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetHash() != "ab12cd34ef56aa" || got.GetSource() != "plant.yaml" || got.GetLoadedNs() != t0.UnixNano() || !got.GetWatch() ||
		got.GetDevices() != 3 || got.GetLoadedTrigger() != pb.ConfigTrigger_CONFIG_TRIGGER_API || len(got.GetNeedsRestart()) != 1 {
		t.Fatalf("GetConfig = %v", got)
	}
	if want := []string{"anonymous apply", "anonymous dry"}; strings.Join(cfg.asked, ",") != strings.Join(want, ",") {
		t.Fatalf("asked %v", cfg.asked)
	}
	// Both calls are audited: a reload changes the running plant.
	eventually.True(t, 0, "two audit records of ReloadConfig", func() bool {
		n := 0
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "msg=audit") && strings.Contains(l, "rpc=/switchyard.v1.SystemService/ReloadConfig") {
				n++
			}
		}
		return n == 2
	})
	if !strings.Contains(logs.String(), `target="configuration (dry run)"`) {
		t.Errorf("the dry run's audit record does not say so:\n%s", logs.String())
	}
}

// TestReloadConfigRefusedReturnsEveryProblem checks a refused reload on both
// transports: INVALID_ARGUMENT, reason CONFIG_INVALID, every problem in the
// message.
func TestReloadConfigRefusedReturnsEveryProblem(t *testing.T) {
	problems := []string{
		"plant.yaml:7: devices[0].channels[0].period: must be > 0, got \"0s\"",
		"plant.yaml:12: devices[3].model: unknown model \"nosuch\" (models: psu)",
	}
	cfg := &fakeConfig{next: config.Reload{Errors: problems}, err: &config.InvalidError{Source: "plant.yaml", Problems: problems}}
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), fakeTree{testTree}, server.Options{Config: cfg})
	ctx := testCtx(t)
	_, err := pb.NewSystemServiceClient(run.Dial(t)).ReloadConfig(ctx, &pb.ReloadConfigRequest{})
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || reasonOf(err) != "CONFIG_INVALID" {
		t.Fatalf("gRPC: %v", err)
	}
	cc := switchyardv1connect.NewSystemServiceClient(http.DefaultClient, run.HTTPURL)
	_, cerr := cc.ReloadConfig(ctx, connect.NewRequest(&pb.ReloadConfigRequest{}))
	if connect.CodeOf(cerr) != connect.CodeInvalidArgument || reasonOf(cerr) != "CONFIG_INVALID" {
		t.Fatalf("Connect: %v", cerr)
	}
	for _, msg := range []string{st.Message(), cerr.(*connect.Error).Message()} {
		for _, p := range problems {
			if !strings.Contains(msg, p) {
				t.Errorf("message %q lacks %q", msg, p)
			}
		}
	}
}

func TestReloadConfigWithoutAConfiguration(t *testing.T) {
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), fakeTree{testTree}, server.Options{})
	_, err := pb.NewSystemServiceClient(run.Dial(t)).GetConfig(testCtx(t), &pb.GetConfigRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Fatalf("GetConfig: %v", err)
	}
}

// TestReloadEventsOnTheStreams: an applied reload (announced on the tree) is
// streamed by WatchSupervisionEvents as RECONFIGURED and by WatchDevices after
// the final state of the device it removed.
func TestReloadEventsOnTheStreams(t *testing.T) {
	root := supervisor.New("switchyard", supervisor.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- root.Serve(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	devices := newFakeDevices()
	run := servertest.Start(t, telemetry.NewHub(nil), devices, root, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	conn := run.Dial(t)
	tctx := testCtx(t)
	events, err := pb.NewSystemServiceClient(conn).WatchSupervisionEvents(tctx, &pb.WatchSupervisionEventsRequest{
		Kinds: []pb.SupervisionEventKind{pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_RECONFIGURED}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := events.Header(); err != nil {
		t.Fatal(err)
	}
	watch, err := pb.NewDeviceServiceClient(conn).WatchDevices(tctx, &pb.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for range devices.List() { // the current states first
		if _, err := watch.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	gone := devices.info("psu2")
	gone.State, gone.LastError, gone.Removed = devicemgr.Stopped, "device psu2: device removed by reload", true
	devices.set(gone)
	rec := &config.Reload{Time: t0, Trigger: config.TriggerSignal, By: "SIGHUP", Hash: "feedbeef", Applied: true,
		Diff: config.Diff{Removed: []string{"psu2"}, Unchanged: 2}}
	root.Reconfigured(rec.Summary(), rec)

	ev, err := events.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if e := ev.GetEvent(); e.GetKind() != pb.SupervisionEventKind_SUPERVISION_EVENT_KIND_RECONFIGURED || e.GetReason() != "applied feedbeef: 1 removed, 2 unchanged" ||
		e.GetReload().GetBy() != "SIGHUP" || e.GetReload().GetDiff().GetRemoved()[0] != "psu2" || e.GetPath() != "switchyard" {
		t.Fatalf("supervision event %v", ev)
	}
	first, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if first.GetDevice().GetName() != "psu2" || !first.GetRemoved() || first.GetDevice().GetState() != pb.DeviceState_DEVICE_STATE_STOPPED {
		t.Fatalf("WatchDevices sent %v, want psu2's final state", first)
	}
	second, err := watch.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if second.GetDevice() != nil || second.GetReload().GetHash() != "feedbeef" || second.GetTimestampNs() != t0.UnixNano() {
		t.Fatalf("WatchDevices sent %v, want the reload", second)
	}
}

// TestSubscribeByTagSelectsDevicesConfiguredLater: a tag selector is not
// resolved once; a device that gets the tag after the stream began (added or
// retagged by a reload) streams to it without resubscribing, and one that
// loses it stops.
func TestSubscribeByTagSelectsDevicesConfiguredLater(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)
	stream, err := e.telemetry.Subscribe(ctx, &pb.SubscribeRequest{
		Selector: &pb.Selector{Tags: map[string]string{"area": "vacuum"}}, BatchWindowMs: 1})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("psu1", "volt", 1), stream.Recv)
	e.devices.set(devicemgr.Info{Name: "gauge9", State: devicemgr.Connected, Tags: map[string]string{"area": "vacuum"}})
	old := e.devices.info("psu1")
	old.Tags = map[string]string{"area": "cryo"}
	e.devices.set(old)
	e.hub.Publish(sample("psu1", "volt", 100), sample("gauge9", "p", 1))
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range resp.GetSamples() {
			switch {
			case s.GetDevice() == "gauge9":
				return
			case s.GetDevice() == "psu1" && s.GetSeq() == 100:
				t.Fatal("psu1 lost the tag and still streams")
			}
		}
	}
}
