package server

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// Keepalive settings of the gRPC port. Clients must not ping more often than
// KeepaliveMinPingInterval (grpcio: grpc.keepalive_time_ms >= 10000), or the server
// closes the connection with GOAWAY "too_many_pings".
const (
	// KeepaliveMinPingInterval is the shortest interval between client pings the
	// server tolerates. Pings are allowed without active streams.
	KeepaliveMinPingInterval = 10 * time.Second
	// KeepaliveTime is how long a connection may be idle before the server pings it.
	KeepaliveTime = 30 * time.Second
	// KeepaliveTimeout is how long the server waits for a ping's answer before it
	// closes the connection.
	KeepaliveTimeout = 10 * time.Second
)

// maxRequestBytes bounds a request message on both transports.
const maxRequestBytes = 1 << 20

// baseServiceNames are the fully-qualified names of the services every server
// registers, for the health services (AlarmService joins them when served).
var baseServiceNames = []string{
	pb.DeviceService_ServiceDesc.ServiceName,
	pb.TelemetryService_ServiceDesc.ServiceName,
	pb.SystemService_ServiceDesc.ServiceName,
	pb.HistoryService_ServiceDesc.ServiceName,
}

// newGRPCServer builds the grpc-go server: interceptors, keepalive, the three
// services, health and reflection.
func newGRPCServer(log *slog.Logger, life context.Context, dev *deviceService, tel *telemetryService, sys *systemService, hs *health.Server) *grpc.Server {
	logger := logging.LoggerFunc(func(ctx context.Context, lvl logging.Level, msg string, fields ...any) {
		log.Log(ctx, slog.Level(lvl), msg, fields...)
	})
	logOpts := []logging.Option{logging.WithLogOnEvents(logging.FinishCall)}
	recOpts := []recovery.Option{recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		log.ErrorContext(ctx, "panic in gRPC handler", "panic", p, "stack", string(debug.Stack()))
		return status.Error(codes.Internal, "internal error")
	})}
	srv := grpc.NewServer(
		// Recovery runs innermost, so the logging interceptor logs the Internal it returns.
		grpc.ChainUnaryInterceptor(
			logging.UnaryServerInterceptor(logger, logOpts...),
			recovery.UnaryServerInterceptor(recOpts...),
		),
		grpc.ChainStreamInterceptor(
			logging.StreamServerInterceptor(logger, logOpts...),
			recovery.StreamServerInterceptor(recOpts...),
			endStreamsAtShutdown(life),
		),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveMinPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    KeepaliveTime,
			Timeout: KeepaliveTimeout,
		}),
		grpc.MaxRecvMsgSize(maxRequestBytes),
		grpc.ForceServerCodecV2(newGRPCCodec()), // proto, plus pre-encoded Subscribe batches
	)
	pb.RegisterDeviceServiceServer(srv, grpcDeviceService{core: dev})
	pb.RegisterTelemetryServiceServer(srv, grpcTelemetryService{core: tel})
	pb.RegisterSystemServiceServer(srv, grpcSystemService{core: sys})
	healthpb.RegisterHealthServer(srv, hs)
	reflection.Register(srv)
	return srv
}

// The grpc-go adapters: each method calls the core and maps its error.

type grpcDeviceService struct {
	pb.UnimplementedDeviceServiceServer
	core *deviceService
}

func (g grpcDeviceService) ListDevices(ctx context.Context, req *pb.ListDevicesRequest) (*pb.ListDevicesResponse, error) {
	resp, err := g.core.listDevices(ctx, req)
	return resp, grpcError(err)
}

func (g grpcDeviceService) GetDevice(ctx context.Context, req *pb.GetDeviceRequest) (*pb.GetDeviceResponse, error) {
	resp, err := g.core.getDevice(ctx, req)
	return resp, grpcError(err)
}

func (g grpcDeviceService) SendCommand(ctx context.Context, req *pb.SendCommandRequest) (*pb.SendCommandResponse, error) {
	resp, err := g.core.sendCommand(ctx, req)
	return resp, grpcError(err)
}

func (g grpcDeviceService) AbortCommand(ctx context.Context, req *pb.AbortCommandRequest) (*pb.AbortCommandResponse, error) {
	resp, err := g.core.abortCommand(ctx, req)
	return resp, grpcError(err)
}

func (g grpcDeviceService) WatchDevices(req *pb.WatchDevicesRequest, stream grpc.ServerStreamingServer[pb.WatchDevicesResponse]) error {
	return grpcError(g.core.watchDevices(stream.Context(), req, grpcOut(stream)))
}

type grpcTelemetryService struct {
	pb.UnimplementedTelemetryServiceServer
	core *telemetryService
}

func (g grpcTelemetryService) Subscribe(req *pb.SubscribeRequest, stream grpc.ServerStreamingServer[pb.SubscribeResponse]) error {
	out := grpcOut(stream)
	out.sendEncoded = func(buf *[]byte) error { return stream.SendMsg(&encodedMessage{buf: buf}) }
	if p, ok := peer.FromContext(stream.Context()); ok && p.Addr != nil {
		out.peer = p.Addr.String()
	}
	return grpcError(g.core.subscribe(stream.Context(), req, out))
}

func (g grpcTelemetryService) GetLatest(ctx context.Context, req *pb.GetLatestRequest) (*pb.GetLatestResponse, error) {
	resp, err := g.core.getLatest(ctx, req)
	return resp, grpcError(err)
}

type grpcSystemService struct {
	pb.UnimplementedSystemServiceServer
	core *systemService
}

func (g grpcSystemService) GetSupervisionTree(ctx context.Context, req *pb.GetSupervisionTreeRequest) (*pb.GetSupervisionTreeResponse, error) {
	resp, err := g.core.getSupervisionTree(ctx, req)
	return resp, grpcError(err)
}

func (g grpcSystemService) RestartProcess(ctx context.Context, req *pb.RestartProcessRequest) (*pb.RestartProcessResponse, error) {
	resp, err := g.core.restartProcess(ctx, req)
	return resp, grpcError(err)
}

func (g grpcSystemService) GetIdentity(ctx context.Context, req *pb.GetIdentityRequest) (*pb.GetIdentityResponse, error) {
	resp, err := g.core.getIdentity(ctx, req)
	return resp, grpcError(err)
}

func (g grpcSystemService) WatchSupervisionEvents(req *pb.WatchSupervisionEventsRequest, stream grpc.ServerStreamingServer[pb.WatchSupervisionEventsResponse]) error {
	return grpcError(g.core.watchSupervisionEvents(stream.Context(), req, grpcOut(stream)))
}

// endStreamsAtShutdown ends every stream's context when life ends, so streams the
// server does not implement itself (health Watch, reflection) cannot hold up
// GracefulStop until its bound.
func endStreamsAtShutdown(life context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := streamContext(ss.Context(), life)
		defer cancel()
		return handler(srv, ctxStream{ServerStream: ss, ctx: ctx})
	}
}

// ctxStream is a grpc.ServerStream with another context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s ctxStream) Context() context.Context { return s.ctx }

// grpcOut adapts a grpc-go server stream.
func grpcOut[T any](s grpc.ServerStreamingServer[T]) streamOut[T] {
	return streamOut[T]{header: func() error { return s.SendHeader(nil) }, send: s.Send}
}
