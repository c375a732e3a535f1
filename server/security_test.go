package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/auth"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/telemetry"
)

// secureEnv is a server with TLS (and client certificates), a tokens file with a
// viewer, an operator and an admin, a certificate identity with role operator,
// and an alarm engine.
type secureEnv struct {
	run     *servertest.Running
	hub     *telemetry.Hub
	pki     *servertest.PKI
	tokens  map[string]string // by identity name
	certs   [2]string         // the mTLS identity's certificate and key files
	sink    *recordingSink
	logs    *syncBuffer
	devices *fakeDevices
}

// recordingSink is an audit.Sink that keeps what it gets.
type recordingSink struct {
	mu   chan struct{}
	recs []audit.Record
}

func newRecordingSink() *recordingSink { return &recordingSink{mu: make(chan struct{}, 1)} }

func (s *recordingSink) Record(r audit.Record) {
	s.mu <- struct{}{}
	s.recs = append(s.recs, r)
	<-s.mu
}

func (s *recordingSink) all() []audit.Record {
	s.mu <- struct{}{}
	defer func() { <-s.mu }()
	return slices.Clone(s.recs)
}

const mtlsName = "gui.lab"

func startSecure(t *testing.T, mutate func(*server.Options)) *secureEnv {
	t.Helper()
	e := &secureEnv{hub: telemetry.NewHub(nil), pki: servertest.NewPKI(t), sink: newRecordingSink(), logs: &syncBuffer{}}
	var path string
	path, e.tokens = servertest.TokensFile(t, map[string]auth.Role{"vera": auth.Viewer, "otto": auth.Operator, "ada": auth.Admin})
	tokens, err := auth.LoadTokens(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.certs[0], e.certs[1] = e.pki.ClientCert(mtlsName)
	devices := newFakeDevices()
	e.devices = devices
	eng := startAlarms(t, e.hub, devices)
	opts := server.Options{
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)),
		Alarms: eng,
		Auth:   server.Auth{Tokens: tokens, CertRoles: auth.CertRoles{mtlsName: auth.Operator}},
		TLS:    server.TLS{CertFile: e.pki.CertFile, KeyFile: e.pki.KeyFile, ClientCAFile: e.pki.CAFile},
		Audit:  e.sink,
	}
	if mutate != nil {
		mutate(&opts)
	}
	e.run = servertest.Start(t, e.hub, devices, fakeTree{testTree}, opts)
	e.hub.Publish(sample("psu1", "volt", 1))
	return e
}

// startAlarms runs an alarm engine with a HIGH limit of 10 on psu*/volt.
func startAlarms(t *testing.T, hub *telemetry.Hub, devices *fakeDevices) *alarm.Engine {
	t.Helper()
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
	states := devicemgr.StatusWatch{StateWatch: devices.WatchStates()}
	limits := alarm.Limits{High: alarm.Threshold{Value: 10, Severity: alarm.Minor}}
	eng, err := alarm.NewEngine([]alarm.Rule{{Devices: []string{"psu*"}, Channels: []string{"volt"}, Limits: limits}},
		sub, states, alarm.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = eng.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; sub.Close(); states.Close() })
	return eng
}

// caller is one of the matrix's callers.
type caller struct {
	name  string
	token string // "" for none
	cert  bool   // presents the mTLS identity's certificate
	// role is what the server should take the caller for; authenticated false
	// for "no token", and bad for a token the server does not know.
	role          auth.Role
	authenticated bool
	bad           bool
}

func (e *secureEnv) callers() []caller {
	return []caller{
		{name: "no token"},
		{name: "wrong token", token: "syt_not-a-token", bad: true},
		{name: "viewer", token: e.tokens["vera"], role: auth.Viewer, authenticated: true},
		{name: "operator", token: e.tokens["otto"], role: auth.Operator, authenticated: true},
		{name: "admin", token: e.tokens["ada"], role: auth.Admin, authenticated: true},
		{name: "mtls", cert: true, role: auth.Operator, authenticated: true},
	}
}

// transport calls any RPC by name over one transport as one caller.
type transport interface {
	unary(ctx context.Context, procedure string, req proto.Message) (proto.Message, error)
	// stream opens a server stream, waits for its headers, runs trigger (which
	// makes the server send something on an established stream) and returns the
	// first message or the error.
	stream(ctx context.Context, procedure string, req proto.Message, trigger func()) (proto.Message, error)
	close()
}

func (e *secureEnv) dialGRPC(t *testing.T, c caller) transport {
	t.Helper()
	certFile, keyFile := "", ""
	if c.cert {
		certFile, keyFile = e.certs[0], e.certs[1]
	}
	conn, err := grpc.NewClient(e.run.GRPCAddr, grpc.WithTransportCredentials(grpccreds.NewTLS(e.pki.ClientTLS(certFile, keyFile))))
	if err != nil {
		t.Fatal(err)
	}
	return &grpcTransport{conn: conn, token: c.token}
}

type grpcTransport struct {
	conn  *grpc.ClientConn
	token string
}

func (g *grpcTransport) ctx(ctx context.Context) context.Context {
	if g.token == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+g.token)
}

func outputOf(procedure string) proto.Message {
	name := strings.Replace(strings.TrimPrefix(procedure, "/"), "/", ".", 1)
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(name))
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessage(d.(protoreflect.MethodDescriptor).Output())
}

func (g *grpcTransport) unary(ctx context.Context, procedure string, req proto.Message) (proto.Message, error) {
	resp := outputOf(procedure)
	return resp, g.conn.Invoke(g.ctx(ctx), procedure, req, resp)
}

func (g *grpcTransport) stream(ctx context.Context, procedure string, req proto.Message, trigger func()) (proto.Message, error) {
	ctx, cancel := context.WithCancel(g.ctx(ctx))
	defer cancel()
	s, err := g.conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, procedure)
	if err != nil {
		return nil, err
	}
	if err := s.SendMsg(req); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	if _, err := s.Header(); err != nil {
		return nil, err
	}
	if trigger != nil {
		trigger()
	}
	resp := outputOf(procedure)
	return resp, s.RecvMsg(resp)
}

func (g *grpcTransport) close() { g.conn.Close() }

func (e *secureEnv) dialConnect(t *testing.T, c caller) transport {
	t.Helper()
	certFile, keyFile := "", ""
	if c.cert {
		certFile, keyFile = e.certs[0], e.certs[1]
	}
	tr := &http.Transport{TLSClientConfig: e.pki.ClientTLS(certFile, keyFile), ForceAttemptHTTP2: true}
	return &connectTransport{hc: &http.Client{Transport: tr}, base: "https://" + e.run.Server.HTTPAddr().String(), token: c.token}
}

type connectTransport struct {
	hc    *http.Client
	base  string
	token string
}

// rawMessage carries a message's bytes through connect-go's generic client.
type rawMessage struct{ b []byte }

type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }
func (rawCodec) Marshal(v any) ([]byte, error) {
	return v.(*rawMessage).b, nil
}
func (rawCodec) Unmarshal(b []byte, v any) error {
	v.(*rawMessage).b = append([]byte(nil), b...)
	return nil
}

func (c *connectTransport) client(procedure string) *connect.Client[rawMessage, rawMessage] {
	return connect.NewClient[rawMessage, rawMessage](c.hc, c.base+procedure, connect.WithCodec(rawCodec{}))
}

func (c *connectTransport) request(req proto.Message) (*connect.Request[rawMessage], error) {
	b, err := proto.Marshal(req)
	if err != nil {
		return nil, err
	}
	r := connect.NewRequest(&rawMessage{b: b})
	if c.token != "" {
		r.Header().Set("Authorization", "Bearer "+c.token)
	}
	return r, nil
}

func decodeAs(procedure string, raw *rawMessage) (proto.Message, error) {
	m := outputOf(procedure)
	return m, proto.Unmarshal(raw.b, m)
}

func (c *connectTransport) unary(ctx context.Context, procedure string, req proto.Message) (proto.Message, error) {
	r, err := c.request(req)
	if err != nil {
		return nil, err
	}
	resp, err := c.client(procedure).CallUnary(ctx, r)
	if err != nil {
		return nil, err
	}
	return decodeAs(procedure, resp.Msg)
}

func (c *connectTransport) stream(ctx context.Context, procedure string, req proto.Message, trigger func()) (proto.Message, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r, err := c.request(req)
	if err != nil {
		return nil, err
	}
	s, err := c.client(procedure).CallServerStream(ctx, r)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	// The headers come once the stream is established (or with its error).
	_ = s.ResponseHeader()
	if trigger != nil {
		trigger()
	}
	if !s.Receive() {
		return nil, s.Err()
	}
	return decodeAs(procedure, s.Msg())
}

func (c *connectTransport) close() { c.hc.CloseIdleConnections() }

// matrixCall is one RPC of the matrix: a valid request and, for streams, what
// makes an established stream send its first message.
type matrixCall struct {
	req     proto.Message
	stream  bool
	trigger func(e *secureEnv, admin transport)
}

func matrixCalls() map[string]matrixCall {
	ctx := context.Background()
	raise := func(e *secureEnv, _ transport) {
		// Alternating values cross the HIGH limit: each publish is a transition.
		e.hub.Publish(telemetry.Sample{Device: "psu1", Channel: "volt", Seq: 100, Value: telemetry.Float(50)},
			telemetry.Sample{Device: "psu1", Channel: "volt", Seq: 101, Value: telemetry.Float(1)})
	}
	audited := func(_ *secureEnv, admin transport) {
		_, _ = admin.unary(ctx, pb.DeviceService_AbortCommand_FullMethodName, &pb.AbortCommandRequest{Device: "psu1"})
	}
	return map[string]matrixCall{
		pb.DeviceService_ListDevices_FullMethodName:                      {req: &pb.ListDevicesRequest{}},
		pb.DeviceService_GetDevice_FullMethodName:                        {req: &pb.GetDeviceRequest{Name: "psu1"}},
		pb.DeviceService_SendCommand_FullMethodName:                      {req: &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "set_volt"}, Args: []string{"1"}}},
		pb.DeviceService_AbortCommand_FullMethodName:                     {req: &pb.AbortCommandRequest{Device: "psu1"}},
		pb.DeviceService_WatchDevices_FullMethodName:                     {req: &pb.WatchDevicesRequest{}, stream: true},
		pb.TelemetryService_Subscribe_FullMethodName:                     {req: &pb.SubscribeRequest{InitialValues: true}, stream: true},
		pb.TelemetryService_GetLatest_FullMethodName:                     {req: &pb.GetLatestRequest{}},
		pb.HistoryService_QueryHistory_FullMethodName:                    {req: &pb.QueryHistoryRequest{Device: "psu1", Channel: "volt"}},
		pb.AlarmService_ListActiveAlarms_FullMethodName:                  {req: &pb.ListActiveAlarmsRequest{}},
		pb.AlarmService_WatchAlarms_FullMethodName:                       {req: &pb.WatchAlarmsRequest{}, stream: true, trigger: raise},
		pb.AlarmService_GetAlarmLimits_FullMethodName:                    {req: &pb.GetAlarmLimitsRequest{Device: "psu1", Channel: "volt"}},
		pb.AlarmService_Acknowledge_FullMethodName:                       {req: &pb.AcknowledgeRequest{Device: "psu1", Channel: "volt"}},
		pb.AlarmService_Shelve_FullMethodName:                            {req: &pb.ShelveRequest{Device: "psu1", Channel: "volt"}},
		pb.AlarmService_SetAlarmLimits_FullMethodName:                    {req: &pb.SetAlarmLimitsRequest{Device: "psu1", Channel: "volt", Limits: &pb.AlarmLimits{High: &pb.Threshold{Value: 10}}}},
		pb.SystemService_GetSupervisionTree_FullMethodName:               {req: &pb.GetSupervisionTreeRequest{}},
		pb.SystemService_WatchSupervisionEvents_FullMethodName:           {req: &pb.WatchSupervisionEventsRequest{}, stream: true},
		pb.SystemService_GetIdentity_FullMethodName:                      {req: &pb.GetIdentityRequest{}},
		pb.SystemService_RestartProcess_FullMethodName:                   {req: &pb.RestartProcessRequest{Path: "devices/psu1"}},
		pb.SystemService_WatchAudit_FullMethodName:                       {req: &pb.WatchAuditRequest{}, stream: true, trigger: audited},
		pb.SystemService_ReloadConfig_FullMethodName:                     {req: &pb.ReloadConfigRequest{DryRun: true}},
		pb.SystemService_GetConfig_FullMethodName:                        {req: &pb.GetConfigRequest{}},
		pb.SystemService_GetClusterView_FullMethodName:                   {req: &pb.GetClusterViewRequest{}},
		"/grpc.health.v1.Health/Check":                                   {req: healthCheck()},
		"/grpc.health.v1.Health/Watch":                                   {req: healthCheck(), stream: true},
		"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo":      {},
		"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo": {},
	}
}

// want is the code the policy table promises caller c for procedure: OK means
// "let through to the handler" (which may still fail for its own reasons).
func want(t *testing.T, c caller, procedure string) codes.Code {
	rule, ok := server.PolicyOf(procedure)
	if !ok {
		t.Fatalf("%s has no policy entry", procedure)
	}
	switch {
	case rule.Public:
		return codes.OK
	case c.bad:
		return codes.Unauthenticated
	case c.role >= rule.Role:
		if rule.PerCommand && c.role < auth.Operator { // set_volt has no role: operator
			return codes.PermissionDenied
		}
		return codes.OK
	case !c.authenticated:
		return codes.Unauthenticated
	default:
		return codes.PermissionDenied
	}
}

// TestSecurityMatrix calls every RPC as every kind of caller over both
// transports and checks the outcome against the policy table: UNAUTHENTICATED
// and PERMISSION_DENIED exactly where it says, each with its ErrorInfo reason,
// and nothing refused that it allows.
func TestSecurityMatrix(t *testing.T) {
	e := startSecure(t, nil)
	calls := matrixCalls()
	// The matrix covers the whole policy table (TestPolicyCoversEveryRPC ties the
	// table to the service descriptors).
	for _, m := range server.PolicyProcedures() {
		if _, ok := calls[m]; !ok {
			t.Fatalf("the matrix has no call for %s", m)
		}
	}
	ctx := testCtx(t)
	for _, tname := range []string{"grpc", "connect"} {
		dial := e.dialGRPC
		if tname == "connect" {
			dial = e.dialConnect
		}
		admin := dial(t, caller{token: e.tokens["ada"]})
		defer admin.close()
		for _, c := range e.callers() {
			tr := dial(t, c)
			for _, m := range server.PolicyProcedures() {
				call := calls[m]
				if call.req == nil {
					continue // reflection: public; grpcurl's use of it is tested in cmd
				}
				if tname == "connect" && strings.HasPrefix(m, "/grpc.reflection") {
					continue
				}
				var err error
				var resp proto.Message
				if call.stream {
					var trig func()
					if call.trigger != nil {
						trig = func() { call.trigger(e, admin) }
					}
					resp, err = tr.stream(ctx, m, call.req, trig)
				} else {
					resp, err = tr.unary(ctx, m, call.req)
				}
				got := codeOf(err)
				w := want(t, c, m)
				switch {
				case w == codes.OK && (got == codes.Unauthenticated || got == codes.PermissionDenied):
					t.Errorf("%s %s as %s: refused (%v), the policy allows it", tname, m, c.name, err)
				case w != codes.OK && got != w:
					t.Errorf("%s %s as %s: got %v (%v), want %v", tname, m, c.name, got, err, w)
				case w != codes.OK:
					wantReason := map[codes.Code]string{codes.Unauthenticated: "UNAUTHENTICATED", codes.PermissionDenied: "PERMISSION_DENIED"}[w]
					if r := reasonOf(err); r != wantReason {
						t.Errorf("%s %s as %s: reason %q, want %q", tname, m, c.name, r, wantReason)
					}
				}
				if m == pb.SystemService_GetIdentity_FullMethodName && err == nil {
					checkIdentity(t, tname, c, resp)
				}
			}
			tr.close()
		}
	}
}

func healthCheck() proto.Message {
	d, _ := protoregistry.GlobalFiles.FindDescriptorByName("grpc.health.v1.HealthCheckRequest")
	return dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
}

// checkIdentity checks GetIdentity's answer for caller c.
func checkIdentity(t *testing.T, tname string, c caller, resp proto.Message) {
	t.Helper()
	var id pb.GetIdentityResponse
	b, _ := proto.Marshal(resp)
	if err := proto.Unmarshal(b, &id); err != nil {
		t.Fatal(err)
	}
	wantName := map[string]string{"no token": "anonymous", "viewer": "vera", "operator": "otto", "admin": "ada", "mtls": mtlsName}[c.name]
	wantMethod := map[string]string{"no token": "none", "mtls": "mtls"}[c.name]
	if wantMethod == "" {
		wantMethod = "token"
	}
	if id.GetName() != wantName || id.GetRole() != c.role.String() || id.GetAuthenticated() != c.authenticated || id.GetMethod() != wantMethod {
		t.Errorf("%s GetIdentity as %s = %v", tname, c.name, &id)
	}
	var want []string
	for _, m := range server.PolicyProcedures() {
		if r, _ := server.PolicyOf(m); !r.Public && c.role >= r.Role {
			want = append(want, m)
		}
	}
	if !slices.Equal(id.GetAllowedMethods(), want) {
		t.Errorf("%s GetIdentity as %s: allowed_methods = %v, want %v", tname, c.name, id.GetAllowedMethods(), want)
	}
}

func codeOf(err error) codes.Code {
	if err == nil {
		return codes.OK
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return codes.Code(ce.Code())
	}
	return status.Code(err)
}

func reasonOf(err error) string {
	var ce *connect.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Details() {
			if v, derr := d.Value(); derr == nil {
				if info, ok := v.(*errdetails.ErrorInfo); ok {
					return info.GetReason()
				}
			}
		}
		return ""
	}
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return ""
}

// Spot checks that do not read the policy table, so a wrong entry in it cannot
// pass the matrix by agreeing with itself.
var spotChecks = []struct {
	caller, procedure string
	want              codes.Code
}{
	{"no token", pb.DeviceService_ListDevices_FullMethodName, codes.Unauthenticated},
	{"no token", pb.SystemService_GetIdentity_FullMethodName, codes.OK},
	{"viewer", pb.TelemetryService_Subscribe_FullMethodName, codes.OK},
	{"viewer", pb.DeviceService_SendCommand_FullMethodName, codes.PermissionDenied},
	{"viewer", pb.AlarmService_Acknowledge_FullMethodName, codes.PermissionDenied},
	{"viewer", pb.DeviceService_AbortCommand_FullMethodName, codes.PermissionDenied},
	{"operator", pb.DeviceService_SendCommand_FullMethodName, codes.OK},
	{"operator", pb.AlarmService_Shelve_FullMethodName, codes.OK},
	{"operator", pb.AlarmService_SetAlarmLimits_FullMethodName, codes.PermissionDenied},
	{"operator", pb.SystemService_RestartProcess_FullMethodName, codes.PermissionDenied},
	{"operator", pb.SystemService_WatchAudit_FullMethodName, codes.PermissionDenied},
	{"mtls", pb.SystemService_RestartProcess_FullMethodName, codes.PermissionDenied},
	{"admin", pb.AlarmService_SetAlarmLimits_FullMethodName, codes.OK},
	{"admin", pb.SystemService_WatchAudit_FullMethodName, codes.OK},
}

func TestPolicySpotChecks(t *testing.T) {
	e := startSecure(t, nil)
	callers := map[string]caller{}
	for _, c := range e.callers() {
		callers[c.name] = c
	}
	for _, sc := range spotChecks {
		if got := want(t, callers[sc.caller], sc.procedure); got != sc.want {
			t.Errorf("policy: %s may call %s: %v, want %v", sc.caller, sc.procedure, got, sc.want)
		}
	}
}

// A command's role in the device model is enforced: psu1's "output" needs
// admin, raw lines need admin, over both transports.
func TestCommandRoles(t *testing.T) {
	e := startSecure(t, nil)
	ctx := testCtx(t)
	output := &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "output"}, Args: []string{"ON"}}
	raw := &pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Raw{Raw: "*RST"}}
	for _, tname := range []string{"grpc", "connect"} {
		dial := e.dialGRPC
		if tname == "connect" {
			dial = e.dialConnect
		}
		for _, tc := range []struct {
			who  caller
			req  *pb.SendCommandRequest
			want codes.Code
		}{
			{caller{token: e.tokens["otto"]}, output, codes.PermissionDenied},
			{caller{cert: true}, output, codes.PermissionDenied},
			{caller{token: e.tokens["ada"]}, output, codes.Unknown}, // the fake has no "output": let through
			{caller{token: e.tokens["otto"]}, raw, codes.PermissionDenied},
			{caller{token: e.tokens["ada"]}, raw, codes.OK},
		} {
			tr := dial(t, tc.who)
			_, err := tr.unary(ctx, pb.DeviceService_SendCommand_FullMethodName, tc.req)
			tr.close()
			got := codeOf(err)
			if tc.want == codes.Unknown {
				if got == codes.PermissionDenied || got == codes.Unauthenticated {
					t.Errorf("%s %v: refused: %v", tname, tc.req, err)
				}
				continue
			}
			if got != tc.want {
				t.Errorf("%s %v: got %v (%v), want %v", tname, tc.req, got, err, tc.want)
			}
			if tc.want == codes.PermissionDenied && !strings.Contains(fmt.Sprint(err), "needs role admin") {
				t.Errorf("%s: %v does not say which role is needed", tname, err)
			}
		}
	}
}
