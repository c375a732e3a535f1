package server_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// fakeDevices is a device manager held in a map, with a real StateFeed.
type fakeDevices struct {
	feed devicemgr.StateFeed

	mu      sync.Mutex
	infos   map[string]devicemgr.Info
	running map[string]context.CancelCauseFunc // device → its "wait" command in progress
	waits   map[string]int                     // device → "wait" commands in progress
}

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

func newFakeDevices() *fakeDevices {
	f := &fakeDevices{infos: make(map[string]devicemgr.Info)}
	for _, info := range []devicemgr.Info{
		{
			Name: "psu1", Address: "10.0.0.1:5025", Driver: "scpi", State: devicemgr.Connected,
			Channels: []devicemgr.ChannelInfo{
				{Name: "volt", Query: "MEAS:VOLT?", Period: 100 * time.Millisecond, Unit: "V"},
				{Name: "curr", Query: "MEAS:CURR?", Period: time.Second, Unit: "A"},
			},
			Restarts: 2, ConnectedSince: t0, Identity: "ACME,PSU-1,123,1.0",
			Tags:     map[string]string{"area": "vacuum", "rack": "A1"},
			Commands: []string{"set_volt", "output"}, ChangedAt: t0,
			CommandSpecs: []devicemgr.CommandSpec{
				{Name: "set_volt", Template: "VOLT {v};*OPC?", Args: []devicemgr.ArgSpec{{Name: "v", Min: 0, Max: 60, HasMin: true, HasMax: true}}, Readback: "volt"},
				{Name: "output", Template: "OUTP {on}", Role: "admin", Args: []devicemgr.ArgSpec{{Name: "on", Type: "enum", Values: []string{"ON", "OFF"}}}},
			},
		},
		{
			Name: "psu2", Address: "10.0.0.2:5025", Driver: "scpi", State: devicemgr.Backoff,
			LastError: "dial tcp 10.0.0.2:5025: connection refused", NextAttempt: t0.Add(5 * time.Second),
			ChangedAt: t0.Add(time.Second),
		},
		{Name: "dmm1", Address: "10.0.0.3:7000", Driver: "lines", State: devicemgr.Connecting, ChangedAt: t0},
	} {
		f.infos[info.Name] = info
	}
	return f
}

// set changes a device's state and publishes the change.
func (f *fakeDevices) set(info devicemgr.Info) {
	f.mu.Lock()
	f.infos[info.Name] = info
	f.mu.Unlock()
	f.feed.Publish(info)
}

func (f *fakeDevices) info(name string) devicemgr.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.infos[name]
}

func (f *fakeDevices) List() []devicemgr.Info {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]devicemgr.Info, 0, len(f.infos))
	for _, info := range f.infos {
		out = append(out, info)
	}
	return out
}

func (f *fakeDevices) Get(name string) (devicemgr.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.infos[name]
	if !ok {
		return devicemgr.Info{}, fmt.Errorf("device %q: %w", name, devicemgr.ErrNotFound)
	}
	return info, nil
}

// Send answers by command: raw lines echo; a few names return each sentinel.
func (f *fakeDevices) Send(ctx context.Context, device string, cmd devicemgr.Command) (devicemgr.Reply, error) {
	info, err := f.Get(device)
	if err != nil {
		return devicemgr.Reply{}, err
	}
	if info.State != devicemgr.Connected {
		return devicemgr.Reply{}, fmt.Errorf("device %q: %w", device, devicemgr.ErrNotConnected)
	}
	if cmd.Raw != "" {
		return devicemgr.Reply{Text: "echo " + cmd.Raw}, nil
	}
	switch cmd.Name {
	case "set_volt":
		if len(cmd.Args) != 1 || cmd.Args[0] == "abc" {
			return devicemgr.Reply{}, fmt.Errorf("device %q: command %q: args[0] %q: %w", device, cmd.Name, cmd.Args, devicemgr.ErrBadArgument)
		}
		return devicemgr.Reply{Text: cmd.Args[0] + ";" + cmd.Timeout.String(), Values: []telemetry.Value{telemetry.Float(12.5), telemetry.Int(3), telemetry.String("on"), telemetry.Bool(true), {}}}, nil
	case "slow":
		return devicemgr.Reply{}, fmt.Errorf("device %q: command %q: %w", device, cmd.Name, devicemgr.ErrTimeout)
	case "wait":
		ctx, cancel := context.WithCancelCause(ctx)
		f.mu.Lock()
		if f.running == nil {
			f.running = map[string]context.CancelCauseFunc{}
		}
		f.running[device] = cancel
		if f.waits == nil {
			f.waits = map[string]int{}
		}
		f.waits[device]++
		f.mu.Unlock()
		<-ctx.Done()
		f.mu.Lock()
		delete(f.running, device)
		f.waits[device]--
		f.mu.Unlock()
		return devicemgr.Reply{}, context.Cause(ctx)
	case "boom":
		return devicemgr.Reply{}, errors.New("boom")
	case "panic":
		panic("fake device panicked")
	default:
		return devicemgr.Reply{}, fmt.Errorf("device %q: command %q: %w", device, cmd.Name, devicemgr.ErrUnknownCommand)
	}
}

// waiting returns how many "wait" commands are in progress on a device.
func (f *fakeDevices) waiting(device string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waits[device]
}

// Abort aborts a "wait" command in progress.
func (f *fakeDevices) Abort(_ context.Context, device, reason string) (string, error) {
	if _, err := f.Get(device); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cancel, ok := f.running[device]
	if !ok {
		return "", nil
	}
	cancel(fmt.Errorf("device %s: %w (%s)", device, supervisor.ErrAborted, reason))
	delete(f.running, device)
	return "wait", nil
}

func (f *fakeDevices) WatchStates() *devicemgr.StateWatch { return f.feed.Watch() }

func (f *fakeDevices) WatchEvery(n int) *devicemgr.StateWatch { return f.feed.WatchEvery(n) }

func (f *fakeDevices) Tags(name string) (map[string]string, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	info, ok := f.infos[name]
	return info.Tags, ok
}

type fakeTree struct{ root supervisor.Node }

func (f fakeTree) Snapshot() supervisor.Node { return f.root }

var testTree = supervisor.Node{
	ID: "root", Kind: "supervisor", Strategy: "one_for_one", Restart: "permanent", State: supervisor.Running,
	Started: t0,
	Children: []supervisor.Node{
		{ID: "devices", Kind: "supervisor", Strategy: "one_for_all", Restart: "permanent", State: supervisor.Running, Started: t0,
			Children: []supervisor.Node{
				{ID: "psu1", Kind: "worker", Restart: "permanent", State: supervisor.BackingOff, Restarts: 3,
					LastExit: "dial: refused", Started: t0, NextRestart: t0.Add(2 * time.Second), MailboxDepth: 4},
			}},
		{ID: "ingest", Kind: "worker", Restart: "transient", State: supervisor.Leaked},
	},
}

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a running server with its fakes and a gRPC client.
type env struct {
	hub     *telemetry.Hub
	devices *fakeDevices
	run     *servertest.Running
	conn    *grpc.ClientConn
	logs    *syncBuffer
	reg     *prometheus.Registry

	device    pb.DeviceServiceClient
	telemetry pb.TelemetryServiceClient
	system    pb.SystemServiceClient
}

func startEnv(t *testing.T) *env {
	t.Helper()
	return startEnvWeb(t, nil)
}

// startEnvWeb is startEnv with a web page handler.
func startEnvWeb(t *testing.T, web http.Handler) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	e := &env{hub: telemetry.NewHub(reg), devices: newFakeDevices(), logs: &syncBuffer{}, reg: reg}
	opts := server.Options{
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Gatherer:   reg,
		Registerer: reg,
		WebHandler: web,
		// Long, so a stream that does not end at shutdown fails the test (servertest
		// waits 10 s for Serve to return) instead of being cut off quietly.
		ShutdownTimeout: time.Minute,
	}
	e.run = servertest.Start(t, e.hub, e.devices, fakeTree{testTree}, opts)
	conn := e.run.Dial(t)
	e.conn = conn
	e.device = pb.NewDeviceServiceClient(conn)
	e.telemetry = pb.NewTelemetryServiceClient(conn)
	e.system = pb.NewSystemServiceClient(conn)
	return e
}

// testCtx returns a context that ends with the test or after 20 s.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// sample returns a good float sample.
func sample(dev, ch string, seq uint64) telemetry.Sample {
	return telemetry.Sample{Device: dev, Channel: ch, Seq: seq, TimeNs: t0.UnixNano() + int64(seq), Value: telemetry.Float(float64(seq) / 2)}
}

// warmUp publishes warm until recv returns its first message, so the caller
// knows the stream's hub subscription exists. The warm sample must match the
// stream's selector; callers skip it afterwards.
func warmUp[T any](t *testing.T, hub *telemetry.Hub, warm telemetry.Sample, recv func() (T, error)) T {
	t.Helper()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			hub.Publish(warm)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	msg, err := recv()
	close(stop)
	<-done
	if err != nil {
		t.Fatalf("first message: %v", err)
	}
	return msg
}
