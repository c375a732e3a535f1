package server_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/telemetry"
)

// wantCode fails unless err is a gRPC status with code and a message containing msg.
func wantCode(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	st, ok := status.FromError(err)
	if !ok || st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got error %v; want %v containing %q", err, code, msg)
	}
}

func TestGRPCListAndGetDevices(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	list, err := e.device.ListDevices(ctx, &pb.ListDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range list.GetDevices() {
		names = append(names, d.GetName())
	}
	if want := []string{"dmm1", "psu1", "psu2"}; !slices.Equal(names, want) {
		t.Fatalf("ListDevices names = %v, want %v", names, want)
	}

	got, err := e.device.GetDevice(ctx, &pb.GetDeviceRequest{Name: "psu1"})
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.Device{
		Name: "psu1", Address: "10.0.0.1:5025", Driver: "scpi", State: pb.DeviceState_DEVICE_STATE_CONNECTED,
		Channels: []*pb.Channel{
			{Name: "volt", Query: "MEAS:VOLT?", Period: durationpb.New(100 * time.Millisecond), Unit: "V"},
			{Name: "curr", Query: "MEAS:CURR?", Period: durationpb.New(time.Second), Unit: "A"},
		},
		Reconnections: 2, ConnectedSince: timestamppb.New(t0), Identity: "ACME,PSU-1,123,1.0",
		RestartCount: 2, //lint:ignore SA1019 the deprecated count must stay filled for older clients
		Tags:         map[string]string{"area": "vacuum", "rack": "A1"},
		Commands:     []string{"set_volt", "output"},
		CommandInfo: []*pb.CommandInfo{
			{Name: "set_volt", HasReply: true, Readback: "volt", Args: []*pb.ArgumentInfo{{Name: "v", Type: "float", Min: proto.Float64(0), Max: proto.Float64(60)}}},
			{Name: "output", Role: "admin", Args: []*pb.ArgumentInfo{{Name: "on", Type: "enum", Choices: []string{"ON", "OFF"}}}},
		},
	}
	if !proto.Equal(got.GetDevice(), want) {
		t.Fatalf("GetDevice(psu1) = %v, want %v", got.GetDevice(), want)
	}

	psu2, err := e.device.GetDevice(ctx, &pb.GetDeviceRequest{Name: "psu2"})
	if err != nil {
		t.Fatal(err)
	}
	if d := psu2.GetDevice(); d.GetState() != pb.DeviceState_DEVICE_STATE_BACKOFF ||
		!d.GetNextAttempt().AsTime().Equal(t0.Add(5*time.Second)) || d.GetConnectedSince() != nil ||
		d.GetLastError() == "" {
		t.Fatalf("GetDevice(psu2) = %v", d)
	}

	_, err = e.device.GetDevice(ctx, &pb.GetDeviceRequest{Name: "nope"})
	wantCode(t, err, codes.NotFound, `device "nope": no such device`)
}

func TestGRPCSendCommand(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	resp, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{
		Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{"12.5"},
		Timeout: durationpb.New(2 * time.Second),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.SendCommandResponse{Reply: "12.5;2s", Values: []*pb.Value{
		{Kind: &pb.Value_DoubleValue{DoubleValue: 12.5}},
		{Kind: &pb.Value_IntValue{IntValue: 3}},
		{Kind: &pb.Value_StringValue{StringValue: "on"}},
		{Kind: &pb.Value_BoolValue{BoolValue: true}},
		{},
	}}
	if !proto.Equal(resp, want) {
		t.Fatalf("SendCommand = %v, want %v", resp, want)
	}

	raw, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Raw{Raw: "*IDN?"}})
	if err != nil || raw.GetReply() != "echo *IDN?" {
		t.Fatalf("raw SendCommand = %v, %v", raw, err)
	}

	for _, tc := range []struct {
		device, name string
		args         []string
		code         codes.Code
		msg          string
	}{
		{"ghost", "set_volt", nil, codes.NotFound, `device "ghost": no such device`},
		{"psu1", "frobnicate", nil, codes.InvalidArgument, `command "frobnicate": unknown command`},
		{"psu1", "set_volt", []string{"abc"}, codes.InvalidArgument, `bad command argument`},
		{"psu2", "set_volt", []string{"1"}, codes.Unavailable, `device "psu2": device not connected`},
		{"psu1", "slow", nil, codes.DeadlineExceeded, `command "slow": device did not reply in time`},
		{"psu1", "boom", nil, codes.Internal, "boom"},
		{"psu1", "panic", nil, codes.Internal, "internal error"},
	} {
		_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{
			Device: tc.device, Command: &pb.SendCommandRequest_Name{Name: tc.name}, Args: tc.args,
		})
		wantCode(t, err, tc.code, tc.msg)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "fake device panicked") || !strings.Contains(logs, "goroutine") {
		t.Errorf("panic not logged with its stack; logs:\n%s", logs)
	}
}

func TestGRPCSendCommandDeadline(t *testing.T) {
	e := startEnv(t)
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "wait"}})
	wantCode(t, err, codes.DeadlineExceeded, "")
}

func TestGRPCBadRequests(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	unary := []struct {
		name string
		call func() error
		msg  string
	}{
		{"GetDevice", func() error { _, err := e.device.GetDevice(ctx, &pb.GetDeviceRequest{}); return err }, "name: must be at least 1 characters"},
		{"SendCommand no device", func() error {
			_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Command: &pb.SendCommandRequest_Raw{Raw: "X"}})
			return err
		}, "device: must be at least 1 characters"},
		{"SendCommand no command", func() error {
			_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1"})
			return err
		}, "command: exactly one field is required"},
		{"SendCommand negative timeout", func() error {
			_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1",
				Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Timeout: durationpb.New(-time.Second)})
			return err
		}, "timeout: must be greater than or equal to 0s"},
		{"SendCommand raw with args", func() error {
			_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1",
				Command: &pb.SendCommandRequest_Raw{Raw: "X"}, Args: []string{"1"}})
			return err
		}, "args: only allowed with name"},
		{"GetLatest", func() error {
			_, err := e.telemetry.GetLatest(ctx, &pb.GetLatestRequest{Selector: &pb.Selector{Channels: []string{"ok", "a[b"}}})
			return err
		}, `selector.channels[1]: bad glob pattern "a[b": syntax error in pattern`},
	}
	for _, tc := range unary {
		t.Run(tc.name, func(t *testing.T) { wantCode(t, tc.call(), codes.InvalidArgument, tc.msg) })
	}

	streams := []struct {
		name string
		req  *pb.SubscribeRequest
		msg  string
	}{
		{"glob", &pb.SubscribeRequest{Selector: &pb.Selector{Devices: []string{"a", "b*", "["}}},
			`selector.devices[2]: bad glob pattern "[": syntax error in pattern`},
		{"max_batch", &pb.SubscribeRequest{MaxBatch: 10001}, "max_batch: must be less than or equal to 10000"},
		{"batch_window_ms", &pb.SubscribeRequest{BatchWindowMs: 3_600_000}, "batch_window_ms: must be less than or equal to 60000"},
	}
	for _, tc := range streams {
		t.Run("Subscribe "+tc.name, func(t *testing.T) {
			stream, err := e.telemetry.Subscribe(ctx, tc.req)
			if err == nil {
				_, err = stream.Recv()
			}
			wantCode(t, err, codes.InvalidArgument, tc.msg)
		})
	}
	t.Run("WatchDevices glob", func(t *testing.T) {
		stream, err := e.device.WatchDevices(ctx, &pb.WatchDevicesRequest{Devices: []string{"psu[1"}})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.InvalidArgument, `devices[0]: bad glob pattern "psu[1"`)
	})
	t.Run("WatchDevices since_ns", func(t *testing.T) {
		stream, err := e.device.WatchDevices(ctx, &pb.WatchDevicesRequest{SinceNs: -1})
		if err == nil {
			_, err = stream.Recv()
		}
		wantCode(t, err, codes.InvalidArgument, "since_ns: must be greater than or equal to 0")
	})
}

// matches is the selector semantics the tests expect.
func matches(s telemetry.Sample) bool {
	return strings.HasPrefix(s.Device, "psu") && (strings.HasPrefix(s.Channel, "volt") || s.Channel == "curr")
}

func TestGRPCSubscribeSelectsInOrderAndBatches(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	const maxBatch = 7
	stream, err := e.telemetry.Subscribe(ctx, &pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{"psu*"}, Channels: []string{"volt*", "curr"}},
		MaxBatch: maxBatch, BatchWindowMs: 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	warm := sample("psu-warm", "volt-warm", 1)
	warmUp(t, e.hub, warm, stream.Recv)

	var published, want []telemetry.Sample
	seq := map[string]uint64{}
	for i := range 300 {
		dev := []string{"psu1", "psu2", "dmm1"}[i%3]
		ch := []string{"volt", "curr", "temp", "volt2"}[i%4]
		seq[dev+"/"+ch]++
		s := sample(dev, ch, seq[dev+"/"+ch])
		if i%5 == 0 {
			s.Quality, s.Value, s.Err = telemetry.Timeout, telemetry.Value{}, "no reply"
		}
		published = append(published, s)
		if matches(s) {
			want = append(want, s)
		}
	}
	for i := 0; i < len(published); i += 50 {
		e.hub.Publish(published[i : i+50]...)
	}
	end := sample("psu9", "curr", 1)
	e.hub.Publish(end)
	want = append(want, end)

	var got []*pb.Sample
	fullBatches := 0
	for len(got) < len(want) {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("after %d samples: %v", len(got), err)
		}
		if n := len(resp.GetSamples()); n > maxBatch || n == 0 {
			t.Fatalf("batch of %d samples; max_batch is %d", n, maxBatch)
		} else if n == maxBatch {
			fullBatches++
		}
		if resp.GetDropped() != 0 {
			t.Fatalf("dropped = %d", resp.GetDropped())
		}
		for _, s := range resp.GetSamples() {
			if s.GetDevice() != warm.Device {
				got = append(got, s)
			}
		}
	}
	if fullBatches == 0 {
		t.Error("no batch reached max_batch")
	}
	if len(got) != len(want) {
		t.Fatalf("got %d samples, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.GetDevice() != w.Device || g.GetChannel() != w.Channel || g.GetSeq() != w.Seq || g.GetTimestampNs() != w.TimeNs {
			t.Fatalf("sample %d = %v, want %v", i, g, w)
		}
		if w.Quality == telemetry.Timeout {
			if g.GetQuality() != pb.Quality_QUALITY_TIMEOUT || g.GetValue() != nil || g.GetError() != "no reply" {
				t.Fatalf("sample %d = %v, want a TIMEOUT sample", i, g)
			}
		} else if g.GetQuality() != pb.Quality_QUALITY_GOOD || g.GetValue().GetDoubleValue() != w.Value.F {
			t.Fatalf("sample %d = %v, want value %v", i, g, w.Value)
		}
	}
}

func TestGRPCSubscribeSquashesAndCounts(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	stream, err := e.telemetry.Subscribe(ctx, &pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{"flood"}},
		MaxBatch: 10000,
	})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("flood", "warm", 1), stream.Recv)

	// One Publish call overfills the subscription's queue (8192) while the client
	// is not reading: the hub holds the queue lock for the whole batch, so the queue
	// is squashed to the latest sample per channel. Every flood sample is either
	// delivered or counted as squashed, and the channel ends on its latest value.
	const n = 10000
	batch := make([]telemetry.Sample, n)
	for i := range batch {
		batch[i] = sample("flood", "x", uint64(i+1))
	}
	e.hub.Publish(batch...)

	var delivered, squashed, dropped, last uint64
	for last < n {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("waiting for seq %d: %v", n, err)
		}
		squashed, dropped = resp.GetSquashed(), resp.GetDropped()
		for _, s := range resp.GetSamples() {
			if s.GetChannel() == "warm" {
				continue
			}
			if s.GetSeq() <= last {
				t.Fatalf("seq %d after %d", s.GetSeq(), last)
			}
			last = s.GetSeq()
			delivered++
		}
	}
	if dropped != 0 || squashed == 0 || delivered+squashed < n {
		t.Fatalf("delivered %d, squashed %d, dropped %d of %d", delivered, squashed, dropped, n)
	}
}

func TestGRPCGetLatest(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)
	for seq := uint64(1); seq <= 2; seq++ {
		e.hub.Publish(sample("psu2", "volt", seq), sample("psu1", "volt", seq), sample("psu1", "curr", seq), sample("dmm1", "volt", seq))
	}
	bad := telemetry.Sample{Device: "psu1", Channel: "temp", Seq: 9, Quality: telemetry.CommError, Err: "connection reset"}
	e.hub.Publish(bad)

	resp, err := e.telemetry.GetLatest(ctx, &pb.GetLatestRequest{Selector: &pb.Selector{Devices: []string{"psu*"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []*pb.Sample{
		{Device: "psu1", Channel: "curr", Seq: 2, TimestampNs: t0.UnixNano() + 2, Value: &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: 1}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "temp", Seq: 9, Quality: pb.Quality_QUALITY_COMM_ERROR, Error: "connection reset"},
		{Device: "psu1", Channel: "volt", Seq: 2, TimestampNs: t0.UnixNano() + 2, Value: &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: 1}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu2", Channel: "volt", Seq: 2, TimestampNs: t0.UnixNano() + 2, Value: &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: 1}}, Quality: pb.Quality_QUALITY_GOOD},
	}
	if diff := cmpSamples(resp.GetSamples(), want); diff != "" {
		t.Fatal(diff)
	}

	all, err := e.telemetry.GetLatest(ctx, &pb.GetLatestRequest{})
	if err != nil || len(all.GetSamples()) != 5 {
		t.Fatalf("GetLatest(all) = %d samples, %v; want 5", len(all.GetSamples()), err)
	}
}

func cmpSamples(got, want []*pb.Sample) string {
	if len(got) != len(want) {
		return "got " + protoString(got) + "\nwant " + protoString(want)
	}
	for i := range got {
		if !proto.Equal(got[i], want[i]) {
			return "got " + protoString(got) + "\nwant " + protoString(want)
		}
	}
	return ""
}

func protoString(ms []*pb.Sample) string {
	var b strings.Builder
	for _, m := range ms {
		b.WriteString("\n\t")
		b.WriteString(m.String())
	}
	return b.String()
}

func TestGRPCWatchDevices(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	stream, err := e.device.WatchDevices(ctx, &pb.WatchDevicesRequest{Devices: []string{"psu?"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []struct {
		name  string
		state pb.DeviceState
		ts    time.Time
	}{
		{"psu1", pb.DeviceState_DEVICE_STATE_CONNECTED, t0},
		{"psu2", pb.DeviceState_DEVICE_STATE_BACKOFF, t0.Add(time.Second)},
	} {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetDevice().GetName() != want.name || resp.GetDevice().GetState() != want.state || resp.GetTimestampNs() != want.ts.UnixNano() {
			t.Fatalf("initial state = %v, want %s %s", resp, want.name, want.state)
		}
	}

	// The initial states were sent after the watch began, so this change arrives.
	dmm := e.devices.info("dmm1")
	dmm.State = devicemgr.Connected
	e.devices.set(dmm) // not selected
	psu2 := e.devices.info("psu2")
	psu2.State, psu2.NextAttempt, psu2.ConnectedSince, psu2.ChangedAt = devicemgr.Connected, time.Time{}, t0.Add(6*time.Second), t0.Add(6*time.Second)
	e.devices.set(psu2)

	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetDevice(); d.GetName() != "psu2" || d.GetState() != pb.DeviceState_DEVICE_STATE_CONNECTED ||
		d.GetNextAttempt() != nil || resp.GetTimestampNs() != t0.Add(6*time.Second).UnixNano() {
		t.Fatalf("change = %v, want psu2 CONNECTED", resp)
	}
}

func TestGRPCGetSupervisionTree(t *testing.T) {
	e := startEnv(t)
	resp, err := e.system.GetSupervisionTree(testCtx(t), &pb.GetSupervisionTreeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	want := &pb.Process{
		Id: "root", Kind: "supervisor", Strategy: "one_for_one", Restart: "permanent",
		State: pb.ProcessState_PROCESS_STATE_RUNNING, StartedNs: t0.UnixNano(),
		Children: []*pb.Process{
			{Id: "devices", Kind: "supervisor", Strategy: "one_for_all", Restart: "permanent",
				State: pb.ProcessState_PROCESS_STATE_RUNNING, StartedNs: t0.UnixNano(),
				Children: []*pb.Process{{
					Id: "psu1", Kind: "worker", Restart: "permanent", State: pb.ProcessState_PROCESS_STATE_BACKOFF,
					Restarts: 3, LastExit: "dial: refused", StartedNs: t0.UnixNano(),
					NextRestartNs: t0.Add(2 * time.Second).UnixNano(), MailboxDepth: 4,
				}}},
			{Id: "ingest", Kind: "worker", Restart: "transient", State: pb.ProcessState_PROCESS_STATE_LEAKED},
		},
	}
	if !proto.Equal(resp.GetRoot(), want) {
		t.Fatalf("tree =\n%v\nwant\n%v", resp.GetRoot(), want)
	}
}

func TestGRPCReflectionAndHealth(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	refl, err := reflectionpb.NewServerReflectionClient(e.conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := refl.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := refl.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"switchyard.v1.DeviceService", "switchyard.v1.TelemetryService", "switchyard.v1.SystemService", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v; missing %s", services, want)
		}
	}
	if err := refl.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := refl.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("reflection stream end: %v", err)
	}

	health := healthpb.NewHealthClient(e.conn)
	for _, svc := range []string{"", "switchyard.v1.TelemetryService", "switchyard.v1.DeviceService", "switchyard.v1.SystemService", "switchyard.v1.HistoryService"} {
		hr, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health %q = %v, %v", svc, hr, err)
		}
	}
	// This server has no alarm engine, so it serves no AlarmService.
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "switchyard.v1.AlarmService"}); status.Code(err) != codes.NotFound {
		t.Fatalf("health of the AlarmService not served: %v, want NotFound", err)
	}
}

// TestAbortCommand: AbortCommand aborts the command in progress (gRPC and
// Connect alike): its SendCommand fails with ABORTED and the reason; an idle
// device returns an empty "aborted"; bad requests name the field.
func TestAbortCommand(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)
	cc := switchyardv1connect.NewDeviceServiceClient(http.DefaultClient, e.run.HTTPURL)
	for _, transport := range []string{"grpc", "connect"} {
		abort := func(req *pb.AbortCommandRequest) (*pb.AbortCommandResponse, error) {
			if transport == "grpc" {
				return e.device.AbortCommand(ctx, req)
			}
			resp, err := cc.AbortCommand(ctx, connect.NewRequest(req))
			if err != nil {
				return nil, err
			}
			return resp.Msg, nil
		}
		if resp, err := abort(&pb.AbortCommandRequest{Device: "psu1"}); err != nil || resp.GetAborted() != "" {
			t.Fatalf("%s: abort while idle = %v, %v", transport, resp, err)
		}
		errc := make(chan error, 1)
		go func() {
			_, err := e.device.SendCommand(ctx, &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "wait"}})
			errc <- err
		}()
		for {
			resp, err := abort(&pb.AbortCommandRequest{Device: "psu1", Reason: "operator pressed stop"})
			if err != nil {
				t.Fatalf("%s: %v", transport, err)
			}
			if resp.GetAborted() == "wait" {
				break
			}
			time.Sleep(time.Millisecond)
		}
		wantCode(t, <-errc, codes.Aborted, "aborted (operator pressed stop)")
	}
	_, err := e.device.AbortCommand(ctx, &pb.AbortCommandRequest{})
	wantCode(t, err, codes.InvalidArgument, "device: must be at least 1 characters")
	_, err = e.device.AbortCommand(ctx, &pb.AbortCommandRequest{Device: "psu1", Reason: "a\nb"})
	wantCode(t, err, codes.InvalidArgument, "reason: must be one line")
	_, err = e.device.AbortCommand(ctx, &pb.AbortCommandRequest{Device: "ghost"})
	wantCode(t, err, codes.NotFound, `device "ghost"`)
	_, err = cc.AbortCommand(ctx, connect.NewRequest(&pb.AbortCommandRequest{Device: "ghost"}))
	if connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("connect: abort of an unknown device: %v", err)
	}
}
