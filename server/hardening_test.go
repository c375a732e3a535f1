package server_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // registers the gzip compressor
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/auth"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/telemetry"
)

// Every state-changing call, allowed or refused, is logged, handed to the
// archive sink and streamed to admins, with the caller's identity, peer,
// user-agent and x-switchyard-client, the device, command and arguments, the
// result and the duration; reads are not audited.
func TestAuditTrail(t *testing.T) {
	e := startSecure(t, nil)
	ctx := testCtx(t)
	admin := e.dialGRPC(t, caller{token: e.tokens["ada"]}).(*grpcTransport)
	defer admin.close()
	watch, err := pb.NewSystemServiceClient(admin.conn).WatchAudit(admin.ctx(ctx), &pb.WatchAuditRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Header(); err != nil {
		t.Fatal(err)
	}

	op := e.dialGRPC(t, caller{token: e.tokens["otto"]}).(*grpcTransport)
	defer op.close()
	octx := metadata.AppendToOutgoingContext(op.ctx(ctx), "x-switchyard-client", "panel-7")
	dev := pb.NewDeviceServiceClient(op.conn)
	if _, err := dev.SendCommand(octx, &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{"12.5"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := dev.ListDevices(octx, &pb.ListDevicesRequest{}); err != nil { // a read: not audited
		t.Fatal(err)
	}
	viewer := e.dialConnect(t, caller{token: e.tokens["vera"]})
	defer viewer.close()
	_, err = viewer.unary(ctx, pb.AlarmService_SetAlarmLimits_FullMethodName, &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "volt", Limits: &pb.AlarmLimits{}})
	if codeOf(err) != codes.PermissionDenied {
		t.Fatalf("viewer SetAlarmLimits: %v", err)
	}

	var streamed []*pb.AuditRecord
	for len(streamed) < 2 {
		resp, err := watch.Recv()
		if err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, resp.GetRecord())
	}
	cmd, refused := streamed[0], streamed[1]
	if cmd.GetIdentity() != "otto" || cmd.GetRole() != "operator" || cmd.GetMethod() != "token" || cmd.GetRpc() != pb.DeviceService_SendCommand_FullMethodName ||
		cmd.GetDevice() != "psu1" || cmd.GetTarget() != "set_volt" || strings.Join(cmd.GetArgs(), ",") != "12.5" || cmd.GetCode() != "OK" ||
		cmd.GetTransport() != "grpc" || !strings.HasPrefix(cmd.GetPeer(), "127.0.0.1:") || !strings.Contains(cmd.GetUserAgent(), "grpc-go") ||
		cmd.GetClient() != "panel-7" || cmd.GetDurationNs() <= 0 || cmd.GetTimestampNs() == 0 {
		t.Errorf("command's audit record = %v", cmd)
	}
	if refused.GetIdentity() != "vera" || refused.GetCode() != "PERMISSION_DENIED" || refused.GetReason() != "PERMISSION_DENIED" ||
		refused.GetRpc() != pb.AlarmService_SetAlarmLimits_FullMethodName || refused.GetTransport() != "connect" || refused.GetTarget() != "volt" {
		t.Errorf("refused call's audit record = %v", refused)
	}
	archived := e.sink.all()
	if len(archived) != 2 || archived[0].Identity != "otto" || archived[1].Identity != "vera" {
		t.Errorf("archived %+v, want the same two records", archived)
	}
	if logs := e.logs.String(); !strings.Contains(logs, "msg=audit identity=otto") || !strings.Contains(logs, "client=panel-7") {
		t.Errorf("the audit record is not in the log:\n%s", logs)
	}
}

// `who` of an acknowledgement comes from the identity, whatever the request says.
func TestWhoComesFromIdentity(t *testing.T) {
	e := startSecure(t, nil)
	ctx := testCtx(t)
	e.hub.Publish(telemetry.Sample{Device: "psu1", Channel: "volt", Seq: 5, Value: telemetry.Float(50)})
	op := e.dialConnect(t, caller{token: e.tokens["otto"]})
	defer op.close()
	var resp *pb.AcknowledgeResponse
	eventually.True(t, 10*time.Second, "the alarm acknowledged", func() bool {
		m, err := op.unary(ctx, pb.AlarmService_Acknowledge_FullMethodName, &pb.AcknowledgeRequest{Device: "psu1", Channel: "volt", Who: "mallory"})
		if err != nil {
			return false
		}
		resp = &pb.AcknowledgeResponse{}
		b, _ := proto.Marshal(m)
		return proto.Unmarshal(b, resp) == nil && resp.GetAlarm().GetAcked()
	})
	if got := resp.GetAlarm().GetAckedBy(); got != "otto" {
		t.Fatalf("acked_by = %q, want the caller's identity otto", got)
	}
}

// A renewed certificate is served to new connections without a restart.
func TestTLSCertificateReload(t *testing.T) {
	e := startSecure(t, nil)
	serverCN := func(addr string) string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, e.pki.ClientTLS("", ""))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	grpcAddr, httpAddr := e.run.GRPCAddr, e.run.Server.HTTPAddr().String()
	if cn := serverCN(grpcAddr); cn != "switchyard test server" {
		t.Fatalf("gRPC port's certificate %q", cn)
	}
	e.pki.ReissueServer("renewed")
	for _, a := range []string{grpcAddr, httpAddr} {
		if cn := serverCN(a); cn != "renewed" {
			t.Errorf("after renewal %s serves %q", a, cn)
		}
	}
	// A client without TLS is refused on both ports.
	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(grpccreds.NewTLS(&tls.Config{InsecureSkipVerify: false, ServerName: "127.0.0.1"})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := pb.NewSystemServiceClient(conn).GetIdentity(testCtx(t), &pb.GetIdentityRequest{}); codeOf(err) != codes.Unavailable {
		t.Errorf("a client that does not trust the CA got %v", err)
	}
}

// The server refuses a non-loopback address without TLS and authentication,
// unless the configuration says insecure, and then warns at every start.
func TestRefusesExposureWithoutTLSAndAuth(t *testing.T) {
	hub := telemetry.NewHub(nil)
	for _, opts := range []server.Options{
		{GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0"},
		{GRPCAddr: "127.0.0.1:0", HTTPAddr: "[::]:0"},
		{GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0", TLS: server.TLS{CertFile: "x", KeyFile: "y"}}, // TLS without auth
	} {
		srv := server.New(hub, newFakeDevices(), fakeTree{}, opts)
		err := srv.Listen()
		if err == nil || !strings.Contains(err.Error(), "non-loopback address needs TLS") {
			t.Errorf("Listen(%s, %s) = %v", opts.GRPCAddr, opts.HTTPAddr, err)
		}
		_ = srv.Close()
	}
	logs := &syncBuffer{}
	opts := server.Options{Insecure: true, Logger: slog.New(slog.NewTextHandler(logs, nil))}
	run := servertest.Start(t, hub, newFakeDevices(), fakeTree{}, opts)
	_ = run
	// servertest binds loopback; the warning is for non-loopback addresses.
	if strings.Contains(logs.String(), "INSECURE") {
		t.Error("warned about a loopback server")
	}
	srv := server.New(hub, newFakeDevices(), fakeTree{}, server.Options{GRPCAddr: "0.0.0.0:0", HTTPAddr: "127.0.0.1:0", Insecure: true, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // every start warns
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Serve(ctx) }()
		eventually.True(t, 10*time.Second, "an INSECURE warning in the log", func() bool { return strings.Count(logs.String(), "INSECURE") >= 1 })
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	_ = srv.Close()
	if n := strings.Count(logs.String(), "INSECURE"); n != 2 {
		t.Errorf("warned %d times in two starts", n)
	}
}

// The HTTP port answers only the Host names it is known by (DNS rebinding) and
// sends CORS headers only to configured origins.
func TestHostAndCORS(t *testing.T) {
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), fakeTree{}, server.Options{
		AllowedHosts: []string{"panel.lab"}, CORSOrigins: []string{"https://panel.lab"},
	})
	hc := &http.Client{}
	defer hc.CloseIdleConnections()
	get := func(host string) int {
		req, _ := http.NewRequest("GET", run.HTTPURL+"/healthz", nil)
		req.Host = host
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for host, want := range map[string]int{
		"evil.example": http.StatusMisdirectedRequest, "evil.example:7480": http.StatusMisdirectedRequest,
		"localhost:7480": 200, "127.0.0.1": 200, "[::1]:7480": 200, "panel.lab": 200, "PANEL.LAB:80": 200,
	} {
		if got := get(host); got != want {
			t.Errorf("Host %q: %d, want %d", host, got, want)
		}
	}
	preflight := func(origin string) string {
		req, _ := http.NewRequest("OPTIONS", run.HTTPURL+pb.DeviceService_ListDevices_FullMethodName, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // sorted, as browsers send them
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.Header.Get("Access-Control-Allow-Origin")
	}
	if got := preflight("https://panel.lab"); got != "https://panel.lab" {
		t.Errorf("configured origin: Access-Control-Allow-Origin %q", got)
	}
	if got := preflight("https://evil.example"); got != "" {
		t.Errorf("other origin: Access-Control-Allow-Origin %q", got)
	}
}

// A client that trickles its request body is cut off after the body timeout,
// on a request whose headers came in time.
func TestSlowBodyIsCut(t *testing.T) {
	run := servertest.Start(t, telemetry.NewHub(nil), newFakeDevices(), fakeTree{}, server.Options{
		Limits: server.Limits{BodyTimeout: 300 * time.Millisecond},
	})
	addr := strings.TrimPrefix(run.HTTPURL, "http://")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", pb.DeviceService_ListDevices_FullMethodName)
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // a bound for a broken server, not the property
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// The answer (an error) must be followed by the server closing the connection.
		_, err = c.Read(make([]byte, 1))
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatalf("the server still held the slow-body connection after %v", time.Since(start))
	}
}

// Requests that do not decode are INVALID_ARGUMENT (not INTERNAL), on both ports.
func TestMalformedRequest(t *testing.T) {
	e := startEnv(t)
	garbage := []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f} // a length past the end
	var reply rawMessage
	err := e.conn.Invoke(testCtx(t), pb.DeviceService_GetDevice_FullMethodName, &rawMessage{b: garbage}, &reply, grpc.ForceCodecV2(rawGRPCCodec{}))
	if codeOf(err) != codes.InvalidArgument || reasonOf(err) != "INVALID_REQUEST" {
		t.Errorf("gRPC: %v", err)
	}
	stream, err := e.conn.NewStream(testCtx(t), &grpc.StreamDesc{ServerStreams: true}, pb.TelemetryService_Subscribe_FullMethodName, grpc.ForceCodecV2(rawGRPCCodec{}))
	if err == nil {
		_ = stream.SendMsg(&rawMessage{b: garbage})
		_ = stream.CloseSend()
		err = stream.RecvMsg(&reply)
	}
	if codeOf(err) != codes.InvalidArgument {
		t.Errorf("gRPC stream: %v", err)
	}
	client := connect.NewClient[rawMessage, rawMessage](http.DefaultClient, e.run.HTTPURL+pb.DeviceService_GetDevice_FullMethodName, connect.WithCodec(rawCodec{}))
	_, err = client.CallUnary(testCtx(t), connect.NewRequest(&rawMessage{b: garbage}))
	if codeOf(err) != codes.InvalidArgument {
		t.Errorf("Connect: %v", err)
	}
}

// rawGRPCCodec sends a rawMessage's bytes as they are.
type rawGRPCCodec struct{}

func (rawGRPCCodec) Name() string { return "proto" }
func (rawGRPCCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(*rawMessage).b)}, nil
}
func (rawGRPCCodec) Unmarshal(data mem.BufferSlice, v any) error {
	v.(*rawMessage).b = data.Materialize()
	return nil
}

// A small compressed request that inflates past the request size limit is
// refused on both ports before it is decoded.
func TestDecompressedSizeBound(t *testing.T) {
	e := startEnv(t)
	big := &pb.GetDeviceRequest{Name: strings.Repeat("a", 2<<20)}
	_, err := e.device.GetDevice(testCtx(t), big, grpc.UseCompressor("gzip"))
	if codeOf(err) != codes.ResourceExhausted {
		t.Errorf("gRPC: %v", err)
	}
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	b, _ := proto.Marshal(big)
	zw.Write(b)
	zw.Close()
	if buf.Len() > 64<<10 {
		t.Fatalf("the compressed request is %d bytes", buf.Len())
	}
	cc := connect.NewClient[pb.GetDeviceRequest, pb.GetDeviceResponse](http.DefaultClient, e.run.HTTPURL+pb.DeviceService_GetDevice_FullMethodName, connect.WithSendGzip())
	_, err = cc.CallUnary(testCtx(t), connect.NewRequest(big))
	if codeOf(err) != codes.ResourceExhausted {
		t.Errorf("Connect: %v", err)
	}
}

// Errors and logs quote at most a bounded prefix of what a client sent.
func TestErrorsQuoteBoundedInput(t *testing.T) {
	e := startEnv(t)
	huge := strings.Repeat("x", 900<<10)
	_, err := e.device.GetDevice(testCtx(t), &pb.GetDeviceRequest{Name: huge})
	if codeOf(err) != codes.InvalidArgument || len(err.Error()) > 400 {
		t.Errorf("900 KiB name: %d-byte error %.200s", len(err.Error()), err)
	}
	_, err = e.device.SendCommand(testCtx(t), &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{huge}})
	if codeOf(err) != codes.InvalidArgument || len(err.Error()) > 400 {
		t.Errorf("900 KiB argument: %d-byte error", len(err.Error()))
	}
	for _, line := range strings.Split(e.logs.String(), "\n") {
		if len(line) > 2000 {
			t.Errorf("a %d-byte log line: %.200s", len(line), line)
		}
	}
}

// SetAlarmLimits for a device or channel that does not exist is NOT_FOUND (it
// used to create alarms for any name); shelving is bounded to 30 days.
func TestAlarmRequestsAreChecked(t *testing.T) {
	e := startSecure(t, nil)
	ctx := testCtx(t)
	admin := e.dialGRPC(t, caller{token: e.tokens["ada"]}).(*grpcTransport)
	defer admin.close()
	alarms := pb.NewAlarmServiceClient(admin.conn)
	actx := admin.ctx(ctx)
	for _, tc := range []struct {
		device, channel, reason string
	}{
		{"nope", "volt", "DEVICE_NOT_FOUND"},
		{"psu1", "nope", "CHANNEL_NOT_FOUND"},
	} {
		_, err := alarms.SetAlarmLimits(actx, &pb.SetAlarmLimitsRequest{Device: tc.device, Channel: tc.channel, Limits: &pb.AlarmLimits{}})
		if codeOf(err) != codes.NotFound || reasonOf(err) != tc.reason {
			t.Errorf("SetAlarmLimits(%s/%s) = %v, want NOT_FOUND %s", tc.device, tc.channel, err, tc.reason)
		}
	}
	// A configured channel that has not published yet may get limits.
	if _, err := alarms.SetAlarmLimits(actx, &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "curr", Limits: &pb.AlarmLimits{}}); err != nil {
		t.Errorf("SetAlarmLimits(psu1/curr): %v", err)
	}
	year2262 := time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	_, err := alarms.Shelve(actx, &pb.ShelveRequest{Device: "psu1", Channel: "volt", UntilNs: year2262})
	if codeOf(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "at most 30 days") {
		t.Errorf("shelve until 2262: %v", err)
	}
	_, err = alarms.Shelve(actx, &pb.ShelveRequest{Device: "psu1", Channel: "volt", UntilNs: time.Now().Add(time.Hour).UnixNano(), Comment: strings.Repeat("c", 900<<10)})
	if codeOf(err) != codes.InvalidArgument {
		t.Errorf("900 KiB comment: %v", err)
	}
	for _, bad := range []*pb.AlarmLimits{
		{High: &pb.Threshold{Value: nan()}},
		{Hysteresis: -1},
		{High: &pb.Threshold{Value: 1, Severity: 99}},
	} {
		if _, err := alarms.SetAlarmLimits(actx, &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "volt", Limits: bad}); codeOf(err) != codes.InvalidArgument {
			t.Errorf("limits %v: %v", bad, err)
		}
	}
}

func nan() float64 { var z float64; return z / z }

// A handler that panics answers INTERNAL on both ports; the server goes on
// serving.
func TestPanicDoesNotKillServer(t *testing.T) {
	e := startEnv(t)
	req := &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "panic"}}
	_, err := e.device.SendCommand(testCtx(t), req)
	if codeOf(err) != codes.Internal {
		t.Errorf("gRPC: %v", err)
	}
	cc := connect.NewClient[pb.SendCommandRequest, pb.SendCommandResponse](http.DefaultClient, e.run.HTTPURL+pb.DeviceService_SendCommand_FullMethodName)
	_, err = cc.CallUnary(testCtx(t), connect.NewRequest(req))
	if codeOf(err) != codes.Internal {
		t.Errorf("Connect: %v", err)
	}
	if _, err := e.device.ListDevices(testCtx(t), &pb.ListDevicesRequest{}); err != nil {
		t.Fatalf("after the panics: %v", err)
	}
	if !strings.Contains(e.logs.String(), "panic in handler") {
		t.Error("the panic was not logged")
	}
}

// Stream limits: per connection, per identity and in total, each refused with
// RESOURCE_EXHAUSTED TOO_MANY_STREAMS, and a closed stream frees its place.
func TestStreamLimits(t *testing.T) {
	e := startSecure(t, func(o *server.Options) {
		o.Limits = server.Limits{StreamsPerConnection: 2, StreamsPerIdentity: 3, Streams: 4}
	})
	ctx := testCtx(t)
	open := func(tr *grpcTransport) (context.CancelFunc, error) {
		sctx, cancel := context.WithCancel(tr.ctx(ctx))
		s, err := pb.NewTelemetryServiceClient(tr.conn).Subscribe(sctx, &pb.SubscribeRequest{})
		if err == nil {
			var md metadata.MD
			// A refused stream is trailers-only: no headers, and Recv has the status.
			if md, err = s.Header(); err == nil && len(md) == 0 {
				_, err = s.Recv()
			}
		}
		if err != nil {
			cancel()
		}
		return cancel, err
	}
	vera1 := e.dialGRPC(t, caller{token: e.tokens["vera"]}).(*grpcTransport)
	vera2 := e.dialGRPC(t, caller{token: e.tokens["vera"]}).(*grpcTransport)
	otto := e.dialGRPC(t, caller{token: e.tokens["otto"]}).(*grpcTransport)
	ada := e.dialGRPC(t, caller{token: e.tokens["ada"]}).(*grpcTransport)
	for _, tr := range []*grpcTransport{vera1, vera2, otto, ada} {
		defer tr.close()
	}
	var cancels []context.CancelFunc
	mustOpen := func(tr *grpcTransport) {
		t.Helper()
		c, err := open(tr)
		if err != nil {
			t.Fatal(err)
		}
		cancels = append(cancels, c)
	}
	mustRefuse := func(tr *grpcTransport, which string) {
		t.Helper()
		_, err := open(tr)
		if codeOf(err) != codes.ResourceExhausted || reasonOf(err) != "TOO_MANY_STREAMS" || !strings.Contains(err.Error(), which) {
			t.Fatalf("want TOO_MANY_STREAMS (%s), got %v", which, err)
		}
	}
	mustOpen(vera1)
	mustOpen(vera1)
	mustRefuse(vera1, "streams_per_connection")
	mustOpen(vera2)
	mustRefuse(vera2, "streams_per_identity")
	mustOpen(otto)
	mustRefuse(ada, "limits.streams")
	cancels[0]() // one of vera1's ends: ada gets its place
	eventually.True(t, 10*time.Second, "a stream opens again", func() bool {
		c, err := open(ada)
		if err == nil {
			cancels = append(cancels, c)
		}
		return err == nil
	})
	for _, c := range cancels {
		c()
	}
}

// One identity's flood of commands at a device leaves another identity's
// commands served: each identity holds at most its share of the device, and
// past its rate it is refused (RATE_LIMITED) without touching the device.
func TestCommandFairnessAndRate(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	e := startSecure(t, func(o *server.Options) {
		o.Limits = server.Limits{CommandsPerDevice: 2, CommandRate: 1, CommandBurst: 5}
		o.Now = clock
	})
	ctx := testCtx(t)
	flooder := e.dialGRPC(t, caller{token: e.tokens["otto"]}).(*grpcTransport)
	other := e.dialGRPC(t, caller{cert: true}).(*grpcTransport)
	defer flooder.close()
	defer other.close()
	fdev, odev := pb.NewDeviceServiceClient(flooder.conn), pb.NewDeviceServiceClient(other.conn)
	wait := &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "wait"}}
	set := &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{"1"}}

	// The flooder fills its share of psu1 with commands that hang...
	var wg sync.WaitGroup
	hctx, stopHung := context.WithCancel(flooder.ctx(ctx))
	for range 2 {
		wg.Go(func() { _, _ = fdev.SendCommand(hctx, wait) })
	}
	defer wg.Wait()
	defer stopHung()
	// Both hang at the device before the probes: a probe that went first would
	// spend a token, and with the clock standing still three of them empty the
	// bucket, so the probes (or the second hanging command) would be refused
	// for the rate instead.
	eventually.True(t, 10*time.Second, "both hanging commands at the device", func() bool { return e.devices.waiting("psu1") == 2 })
	eventually.True(t, 10*time.Second, "the flooder rate limited on commands_per_device", func() bool {
		_, err := fdev.SendCommand(flooder.ctx(ctx), set)
		return reasonOf(err) == "RATE_LIMITED" && strings.Contains(err.Error(), "commands_per_device")
	})
	// ...and the other identity is still served.
	for range 3 {
		if _, err := odev.SendCommand(other.ctx(ctx), set); err != nil {
			t.Fatalf("the other identity's command: %v", err)
		}
	}
	// The rate: the flooder's bucket of 5 is spent (2 hanging, 1+ refused by
	// its share do not count, the probes above took tokens until refused).
	admin := e.dialGRPC(t, caller{token: e.tokens["ada"]}).(*grpcTransport)
	defer admin.close()
	adev := pb.NewDeviceServiceClient(admin.conn)
	adevOK := 0
	for range 10 {
		_, err := adev.SendCommand(admin.ctx(ctx), set)
		if err == nil {
			adevOK++
			continue
		}
		if reasonOf(err) != "RATE_LIMITED" || !strings.Contains(err.Error(), "command_rate") {
			t.Fatalf("past the burst: %v", err)
		}
	}
	if adevOK != 5 {
		t.Fatalf("%d commands in a burst of 5 at a stopped clock", adevOK)
	}
	mu.Lock()
	now = now.Add(2 * time.Second) // two more tokens
	mu.Unlock()
	for i := range 3 {
		_, err := adev.SendCommand(admin.ctx(ctx), set)
		if (i < 2) != (err == nil) {
			t.Fatalf("command %d after 2 s at 1/s: %v", i, err)
		}
	}
}

var _ = auth.Admin
