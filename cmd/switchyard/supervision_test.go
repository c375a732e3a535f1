package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	svv1 "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/supervisor"
)

// startApp builds an app on cfg with loopback port-0 listeners and no archive,
// serves it, and stops it when the test ends. The returned stop function stops
// it earlier; it is idempotent and returns Serve's error.
func startApp(t *testing.T, cfg *config.Config) (*app, func() error) {
	t.Helper()
	a := newTestApp(t, cfg)
	return a, serveApp(t, a)
}

// newTestApp builds an app on cfg with loopback port-0 listeners and no archive.
func newTestApp(t *testing.T, cfg *config.Config) *app {
	t.Helper()
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	cfg.QuestDB.Address = ""
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serveApp serves a until the test ends; the returned function stops it earlier.
func serveApp(t *testing.T, a *app) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- a.Serve(ctx) }()
	var once sync.Once
	var serveErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case serveErr = <-served:
			case <-time.After(60 * time.Second):
				t.Fatal("app did not stop within 60 s")
			}
		})
		return serveErr
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

// TestAppSupervisionTree: the app's tree is switchyard → {devices → one worker
// per instrument, api}; the devices join the running device supervisor as
// dynamic children; the API shows the same tree.
func TestAppSupervisionTree(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 3, Seed: 3})
	a := newTestApp(t, demoConfig(fleet))
	events := a.root.Events(0)
	defer events.Close()
	stop := serveApp(t, a)
	waitAllConnected(t, a.devices)

	tree := a.root.Snapshot()
	if tree.ID != "switchyard" || tree.Kind != "supervisor" || tree.State != supervisor.Running {
		t.Fatalf("root = %+v", tree)
	}
	var ids []string
	for _, c := range tree.Children {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "telemetry,alarms,devices,api" {
		t.Fatalf("root's children = %v, want telemetry,alarms,devices,api (no archives without QuestDB)", ids)
	}
	eventually.True(t, 10*time.Second, "the hub watchdog's status", func() bool {
		hub, _ := a.root.Snapshot().Find("telemetry")
		return hub.State == supervisor.Running && strings.HasSuffix(hub.Status, "; all draining")
	})
	devs, _ := tree.Find("devices")
	if devs.Kind != "supervisor" || devs.Strategy != "one_for_one" || len(devs.Children) != 3 {
		t.Fatalf("devices = %+v, want a one_for_one supervisor of 3", devs)
	}
	for _, d := range devs.Children {
		if d.Kind != "worker" || d.State != supervisor.Running || d.Restart != "permanent" {
			t.Errorf("device process %+v, want a running permanent worker", d)
		}
	}

	grpcAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err := svv1.NewSystemServiceClient(conn).GetSupervisionTree(ctx, &svv1.GetSupervisionTreeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetRoot().GetChildren()[2]; got.GetId() != "devices" || len(got.GetChildren()) != 3 || got.GetUptimeNs() <= 0 {
		t.Fatalf("API tree devices = %v", got)
	}

	// Stopping ends everything in reverse order without an error; the stop
	// events come up the tree to the root's subscribers.
	if err := stop(); err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
	stopped := map[string]bool{}
	devicesRunning := false
	for {
		ev, err := events.Next(ctx)
		if err != nil {
			t.Fatalf("events: %v (stopped so far %v)", err, stopped)
		}
		if ev.Kind == supervisor.EventStarting && ev.Path == "switchyard/devices" {
			devicesRunning = true
		}
		if ev.Kind == supervisor.EventAdded && ev.Path == "switchyard/devices" && !devicesRunning {
			t.Errorf("device %s added before its supervisor ran: not a dynamic child", ev.Child)
		}
		if ev.Kind == supervisor.EventStopped {
			stopped[ev.Path+"/"+ev.Child] = true
		}
		if ev.Kind == supervisor.EventStopped && ev.Path == "switchyard" && ev.Child == "" {
			break
		}
	}
	for _, in := range fleet.Instruments() {
		if !stopped["switchyard/devices/"+in.Name()] {
			t.Errorf("no stopped event for device %s; got %v", in.Name(), stopped)
		}
	}
}

// TestDeviceReconnectRerunsInit: a dropped connection is a state inside the
// device process (no restart in the tree), and the reconnect runs the device's
// init sequence again, seen on the instrument: init sets 3.3 V, an operator
// sets 10 V, the connection drops, and the instrument is back at 3.3 V.
func TestDeviceReconnectRerunsInit(t *testing.T) {
	in := simtest.SCPI(t, "psu-init", sim.Options{Seed: 1})
	max := 60.0
	cfg := &config.Config{Devices: []config.Device{{
		Name: "psu-init", Address: in.Addr(),
		Protocol: config.Protocol{
			Driver:   "scpi",
			Init:     []string{"*CLS", "SOUR:VOLT 3.3"},
			Channels: []config.Channel{{Name: "voltage", Query: "MEAS:VOLT?", Period: config.Duration(100 * time.Millisecond)}},
			Commands: []config.Command{{Name: "set_voltage", Template: "SOUR:VOLT {volts}", Args: []config.Arg{{Name: "volts", Type: "float", Max: &max}}}},
		},
	}}}
	a, _ := startApp(t, cfg)
	waitAllConnected(t, a.devices)
	if got := in.SetPoint(); got != 3.3 {
		t.Fatalf("set-point after init = %v, want 3.3", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := a.devices.Send(ctx, "psu-init", devicemgr.Command{Name: "set_voltage", Args: []string{"10"}}); err != nil {
		t.Fatal(err)
	}
	eventually.True(t, 20*time.Second, "set-point 10 V", func() bool { return in.SetPoint() == 10 })

	if n := in.Drop(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	eventually.True(t, 30*time.Second, "a second connection", func() bool { return in.Counters().Accepted >= 2 })
	eventually.True(t, 30*time.Second, "connected again", func() bool {
		info, _ := a.devices.Get("psu-init")
		return info.State == devicemgr.Connected && info.Restarts >= 1
	})
	if got := in.SetPoint(); got != 3.3 {
		t.Fatalf("set-point after reconnect = %v, want 3.3 (init re-run)", got)
	}
	node, _ := a.root.Snapshot().Find("devices", "psu-init")
	if node.State != supervisor.Running || node.Restarts != 0 {
		t.Fatalf("device process = %+v, want running with 0 restarts: a dropped connection is not a crash", node)
	}
}

// TestFailingInstrumentStreamsStatusEvents: an instrument that refuses
// connections is a state of its still-running device process. Watchers of the
// supervision tree see it as STATUS events of that process only (backoff with
// the error, then connected again once the instrument is back), with no exit
// and no restart, over gRPC.
func TestFailingInstrumentStreamsStatusEvents(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 3, Seed: 5})
	a, _ := startApp(t, demoConfig(fleet))
	waitAllConnected(t, a.devices)
	bad := fleet.Instruments()[1]

	grpcAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stream, err := svv1.NewSystemServiceClient(conn).WatchSupervisionEvents(ctx, &svv1.WatchSupervisionEventsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	// The stream is open once its first event or its header arrives; make sure
	// the server subscribed before the fault.
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}

	if err := bad.SetFaults(sim.Faults{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	bad.Drop()
	// next returns the next event about a device process, failing on any
	// exit or restart: a refusing instrument is not a crash.
	next := func() *svv1.SupervisionEvent {
		t.Helper()
		for {
			resp, err := stream.Recv()
			if err != nil {
				t.Fatalf("watch: %v", err)
			}
			ev := resp.GetEvent()
			if ev == nil || ev.GetPath() != "switchyard/devices" {
				continue
			}
			if ev.GetKind() != svv1.SupervisionEventKind_SUPERVISION_EVENT_KIND_STATUS {
				t.Fatalf("event %v: want only STATUS events for devices", ev)
			}
			return ev
		}
	}
	var backoff *svv1.SupervisionEvent
	for backoff == nil {
		ev := next()
		if ev.GetChild() != bad.Name() {
			t.Fatalf("status event for %s, want only %s's: %v", ev.GetChild(), bad.Name(), ev)
		}
		if strings.HasPrefix(ev.GetReason(), "backoff: ") && strings.Contains(ev.GetReason(), "connection refused") &&
			strings.Contains(ev.GetReason(), "next attempt") {
			backoff = ev
		}
	}
	node, _ := a.root.Snapshot().Find("devices", bad.Name())
	if node.State != supervisor.Running || node.Restarts != 0 || !strings.HasPrefix(node.Status, "backoff: ") && !strings.HasPrefix(node.Status, "connecting") {
		t.Fatalf("tree node = %+v, want running, 0 restarts, status backoff or connecting", node)
	}

	if err := bad.SetFaults(sim.Faults{}); err != nil {
		t.Fatal(err)
	}
	for {
		ev := next()
		if ev.GetChild() != bad.Name() {
			t.Fatalf("status event for %s, want only %s's: %v", ev.GetChild(), bad.Name(), ev)
		}
		if ev.GetSeq() <= backoff.GetSeq() {
			t.Fatalf("seq %d after %d", ev.GetSeq(), backoff.GetSeq())
		}
		if strings.HasPrefix(ev.GetReason(), "connected") {
			break
		}
	}
}

// TestRestartFailsQueuedCommands: device commands go through the device
// process's mailbox. The supervision tree (over gRPC) shows the command in
// progress and the queue depth; when an operator restarts the process, the
// command in progress and the queued one both fail with ErrRestarted, and the
// queued one never reaches the instrument, not even after the new
// incarnation connects.
func TestRestartFailsQueuedCommands(t *testing.T) {
	in := simtest.SCPI(t, "psu-mb", sim.Options{Seed: 2})
	max := 60.0
	cfg := &config.Config{Devices: []config.Device{{
		Name: "psu-mb", Address: in.Addr(),
		Protocol: config.Protocol{
			Driver: "scpi", LockTimeout: config.Duration(30 * time.Second),
			Channels: []config.Channel{
				{Name: "voltage", Query: "MEAS:VOLT?", Period: config.Duration(100 * time.Millisecond)},
				{Name: "current", Query: "MEAS:CURR?", Period: config.Duration(100 * time.Millisecond)},
			},
			Commands: []config.Command{
				{Name: "set_voltage", Template: "SOUR:VOLT {volts}", Args: []config.Arg{{Name: "volts", Type: "float", Max: &max}}},
				// Never settles: holds the device's lane for 30 s.
				{Name: "set_never", Template: "SOUR:VOLT {volts}", Readback: "current", Tolerance: 0.001,
					Settle: config.Duration(30 * time.Second), Args: []config.Arg{{Name: "volts", Type: "float", Max: &max}}},
			},
		},
	}}}
	a, _ := startApp(t, cfg)
	waitAllConnected(t, a.devices)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	errc := make(chan error, 2)
	go func() {
		_, err := a.devices.Send(ctx, "psu-mb", devicemgr.Command{Name: "set_never", Args: []string{"5"}})
		errc <- err
	}()
	eventually.True(t, 20*time.Second, "set_never in progress", func() bool {
		n, _ := a.root.Snapshot().Find("devices", "psu-mb")
		return in.SetPoint() == 5 && strings.Contains(n.InProgress, "set_never 5")
	})
	go func() {
		_, err := a.devices.Send(ctx, "psu-mb", devicemgr.Command{Name: "set_voltage", Args: []string{"9"}})
		errc <- err
	}()
	eventually.True(t, 20*time.Second, "set_voltage queued", func() bool {
		n, _ := a.root.Snapshot().Find("devices", "psu-mb")
		return n.MailboxDepth == 1
	})

	grpcAddr, _ := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sys := svv1.NewSystemServiceClient(conn)
	tree, err := sys.GetSupervisionTree(ctx, &svv1.GetSupervisionTreeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var node *svv1.Process
	for _, c := range tree.GetRoot().GetChildren() {
		for _, d := range c.GetChildren() {
			if c.GetId() == "devices" && d.GetId() == "psu-mb" {
				node = d
			}
		}
	}
	if node.GetMailboxDepth() != 1 || !strings.Contains(node.GetInProgress(), "call \"set_never 5\"") {
		t.Fatalf("API tree node = %v, want mailbox depth 1 and set_never 5 in progress", node)
	}

	if _, err := sys.RestartProcess(ctx, &svv1.RestartProcessRequest{Path: "devices/psu-mb"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		err := <-errc
		if !errors.Is(err, supervisor.ErrRestarted) || !errors.Is(err, devicemgr.ErrNotConnected) {
			t.Fatalf("command across a restart: %v, want ErrRestarted (and ErrNotConnected)", err)
		}
	}
	eventually.True(t, 20*time.Second, "the new incarnation connected", func() bool {
		n, _ := a.root.Snapshot().Find("devices", "psu-mb")
		info, _ := a.devices.Get("psu-mb")
		return n.Restarts == 1 && n.State == supervisor.Running && info.State == devicemgr.Connected
	})
	// Its first polls have run; the dropped command was not replayed.
	before := in.Counters().Queries
	eventually.True(t, 20*time.Second, "polls on the new connection", func() bool { return in.Counters().Queries >= before+4 })
	if sp := in.SetPoint(); sp == 9 {
		t.Fatalf("set-point %v: the queued command was replayed after the restart", sp)
	}
	if _, err := a.devices.Send(ctx, "psu-mb", devicemgr.Command{Name: "set_voltage", Args: []string{"11"}}); err != nil || in.SetPoint() != 11 {
		t.Fatalf("after the restart: %v, set-point %v", err, in.SetPoint())
	}
}

// TestAppRootFailure: when the root's restart intensity is exceeded (here by
// a child that fails at once, every time), Serve stops everything, logs the
// failure and returns it, so the process exits non-zero.
func TestAppRootFailure(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 2, Seed: 9})
	cfg := demoConfig(fleet)
	cfg.Listen.GRPC, cfg.Listen.HTTP = "127.0.0.1:0", "127.0.0.1:0"
	var logs strings.Builder
	var mu sync.Mutex
	a, err := newApp(cfg, appOptions{Log: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	crash := supervisor.ServiceFunc(func(context.Context) error { return errors.New("bug") })
	if err := a.root.Add(supervisor.ChildSpec{ID: "crasher", Service: crash, Backoff: &supervisor.Backoff{Min: -1}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Serve(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Serve did not return after the root's intensity was exceeded")
	}
	if !errors.Is(err, supervisor.ErrIntensity) {
		t.Fatalf("Serve = %v, want the root's escalation", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), `level=ERROR msg="supervision tree failed; stopping"`) {
		t.Errorf("root failure not logged; logs:\n%s", logs.String())
	}
	for _, in := range fleet.Instruments() {
		eventually.True(t, 30*time.Second, in.Name()+" disconnected", func() bool { return in.Counters().Active == 0 })
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
