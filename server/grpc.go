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
	"google.golang.org/grpc/keepalive"
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

// newGRPCServer builds the grpc-go server of one run: interceptors, keepalive,
// the rpcs, and reflection.
func newGRPCServer(log *slog.Logger, life context.Context, rpcs []rpc) *grpc.Server {
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
	registerGRPC(srv, rpcs)
	reflection.Register(srv)
	return srv
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
