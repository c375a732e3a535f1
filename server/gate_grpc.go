package server

import (
	"context"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	grpcauth "github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	grpccreds "google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
)

// The gate on the gRPC port is a chain of grpc-go interceptors:
//
//	begin/finish (log, audit) → recovery → selector(not public) → auth → admit (policy, limits, validation) → handler
//
// go-grpc-middleware's auth interceptor runs the gate's identify; its selector
// skips identification for the public RPCs (health, reflection); the rest is
// the gate's own code, shared with the Connect interceptor.

// grpcUnaryInterceptors returns the gate's unary chain.
func (g *gate) grpcUnaryInterceptors() []grpc.UnaryServerInterceptor {
	return []grpc.UnaryServerInterceptor{
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			ctx, st := g.begin(ctx, grpcCallInfo(ctx, info.FullMethod))
			st.req = req
			resp, err := handler(ctx, req)
			g.finish(st, err)
			return resp, err
		},
		recovery.UnaryServerInterceptor(recovery.WithRecoveryHandlerContext(g.grpcPanicked)),
		selector.UnaryServerInterceptor(grpcauth.UnaryServerInterceptor(g.grpcAuth), selector.MatchFunc(needsIdentity)),
		func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			release, err := g.admitUnary(ctx, info.FullMethod, req)
			defer release()
			if err != nil {
				return nil, grpcError(err)
			}
			return handler(ctx, req)
		},
	}
}

// grpcStreamInterceptors returns the gate's stream chain.
func (g *gate) grpcStreamInterceptors() []grpc.StreamServerInterceptor {
	return []grpc.StreamServerInterceptor{
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			ctx, st := g.begin(ss.Context(), grpcCallInfo(ss.Context(), info.FullMethod))
			err := handler(srv, ctxStream{ServerStream: ss, ctx: ctx})
			g.finish(st, err)
			return err
		},
		recovery.StreamServerInterceptor(recovery.WithRecoveryHandlerContext(g.grpcPanicked)),
		selector.StreamServerInterceptor(grpcauth.StreamServerInterceptor(g.grpcAuth), selector.MatchFunc(needsIdentity)),
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			release, err := g.admitStream(ss.Context(), info.FullMethod)
			defer release()
			if err != nil {
				return grpcError(err)
			}
			return handler(srv, validatingStream{ServerStream: ss, g: g})
		},
	}
}

// needsIdentity selects the calls whose caller is identified: all but public.
func needsIdentity(_ context.Context, c interceptors.CallMeta) bool {
	return !policy[c.FullMethod()].public
}

// grpcAuth is go-grpc-middleware's AuthFunc: the caller's token (authorization
// metadata) or verified client certificate becomes its identity.
func (g *gate) grpcAuth(ctx context.Context) (context.Context, error) {
	var c credentials
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		c.authorization = v[0]
	}
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(grpccreds.TLSInfo); ok {
			c.tls = &ti.State
		}
	}
	ctx, err := g.identified(ctx, c)
	return ctx, grpcError(err)
}

func (g *gate) grpcPanicked(ctx context.Context, p any) error {
	procedure, _ := grpc.Method(ctx)
	return grpcError(g.panicked(procedure, p))
}

func grpcCallInfo(ctx context.Context, procedure string) callInfo {
	ci := callInfo{procedure: procedure, transport: "grpc"}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		ci.peer = p.Addr.String()
	}
	if v := metadata.ValueFromIncomingContext(ctx, "user-agent"); len(v) > 0 {
		ci.userAgent = v[0]
	}
	if v := metadata.ValueFromIncomingContext(ctx, "x-switchyard-client"); len(v) > 0 {
		ci.client = v[0]
	}
	return ci
}

// validatingStream checks the request of a server stream as it is received.
type validatingStream struct {
	grpc.ServerStream
	g *gate
}

func (s validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if l, ok := m.(*lazyRequest); ok {
		if err := l.decode(); err != nil {
			return err
		}
		m = l.msg
	}
	return s.g.validate(m)
}
