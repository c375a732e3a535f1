package server

import (
	"context"
	"log/slog"
	"time"

	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

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

// streamWorkers is how many goroutines serve gRPC calls (grpc.NumStreamWorkers).
const streamWorkers = 16

// baseServiceNames are the fully-qualified names of the services every server
// registers, for the health services (AlarmService joins them when served).
var baseServiceNames = []string{
	pb.DeviceService_ServiceDesc.ServiceName,
	pb.TelemetryService_ServiceDesc.ServiceName,
	pb.SystemService_ServiceDesc.ServiceName,
	pb.HistoryService_ServiceDesc.ServiceName,
}

// newGRPCServer builds the grpc-go server of one run: the gate's interceptors
// (gate_grpc.go), keepalive, TLS, the rpcs and reflection.
func newGRPCServer(_ *slog.Logger, life context.Context, g *gate, tlsFiles *tlsFiles, lim Limits, rpcs []rpc) *grpc.Server {
	opts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(g.grpcUnaryInterceptors()...),
		grpc.ChainStreamInterceptor(append(g.grpcStreamInterceptors(), endStreamsAtShutdown(life))...),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             KeepaliveMinPingInterval,
			PermitWithoutStream: true,
		}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			Time:    KeepaliveTime,
			Timeout: KeepaliveTimeout,
		}),
		// Checked after decompression too: a small compressed bomb is refused.
		grpc.MaxRecvMsgSize(lim.MaxRequestBytes),
		grpc.MaxConcurrentStreams(lim.http2Streams()),
		grpc.ForceServerCodecV2(newGRPCCodec()), // proto, plus pre-encoded Subscribe batches
		// Calls run on long-lived workers rather than a new goroutine each:
		// a new goroutine grows its stack through the interceptors and the
		// handler on every call (7 % of the server's CPU per SendCommand).
		// A call that finds every worker busy (long streams) gets a goroutine
		// of its own as before.
		grpc.NumStreamWorkers(streamWorkers),
	}
	if tlsFiles != nil {
		opts = append(opts, grpc.Creds(grpccreds.NewTLS(tlsFiles.config([]string{"h2"}))))
	}
	srv := grpc.NewServer(opts...)
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
