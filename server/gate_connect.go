package server

import (
	"context"
	"crypto/tls"
	"net/http"

	"connectrpc.com/connect"
)

// connectGate is the gate on the HTTP port: one Connect interceptor (Connect,
// gRPC and gRPC-Web protocols) that runs the same steps as the grpc-go chain
// (gate_grpc.go): begin → identify (unless public) → admit → handler → finish,
// with panics answered as Internal.
type connectGate struct{ g *gate }

var _ connect.Interceptor = connectGate{}

// WrapUnary implements connect.Interceptor.
func (c connectGate) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (resp connect.AnyResponse, err error) {
		procedure := req.Spec().Procedure
		ctx, st := c.g.begin(ctx, connectCallInfo(procedure, req.Peer().Addr, req.Header()))
		st.req = req.Any()
		defer func() {
			if p := recover(); p != nil {
				resp, err = nil, connectError(c.g.panicked(procedure, p))
			}
			c.g.finish(st, err)
		}()
		if !policy[procedure].public {
			if ctx, err = c.g.identified(ctx, connectCredentials(ctx, req.Header())); err != nil {
				return nil, connectError(err)
			}
		}
		release, err := c.g.admitUnary(ctx, procedure, req.Any())
		defer release()
		if err != nil {
			return nil, connectError(err)
		}
		return next(ctx, req)
	}
}

// WrapStreamingClient implements connect.Interceptor; the server has no clients.
func (connectGate) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

// WrapStreamingHandler implements connect.Interceptor.
func (c connectGate) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) (err error) {
		procedure := conn.Spec().Procedure
		ctx, st := c.g.begin(ctx, connectCallInfo(procedure, conn.Peer().Addr, conn.RequestHeader()))
		defer func() {
			if p := recover(); p != nil {
				err = connectError(c.g.panicked(procedure, p))
			}
			c.g.finish(st, err)
		}()
		if !policy[procedure].public {
			if ctx, err = c.g.identified(ctx, connectCredentials(ctx, conn.RequestHeader())); err != nil {
				return connectError(err)
			}
		}
		release, err := c.g.admitStream(ctx, procedure)
		defer release()
		if err != nil {
			return connectError(err)
		}
		return next(ctx, validatingConn{StreamingHandlerConn: conn, g: c.g})
	}
}

func connectCallInfo(procedure, peer string, h http.Header) callInfo {
	return callInfo{procedure: procedure, peer: peer, transport: "connect",
		userAgent: h.Get("User-Agent"), client: h.Get("X-Switchyard-Client")}
}

// tlsStateKey carries the connection's TLS state from the HTTP handler (which
// sees the *http.Request) to the interceptor (which does not).
type tlsStateKey struct{}

// withTLSState is the HTTP middleware that makes a request's TLS state visible
// to the Connect interceptor.
func withTLSState(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.TLS != nil {
			r = r.WithContext(context.WithValue(r.Context(), tlsStateKey{}, r.TLS))
		}
		next.ServeHTTP(w, r)
	})
}

func connectCredentials(ctx context.Context, h http.Header) credentials {
	c := credentials{authorization: h.Get("Authorization")}
	c.tls, _ = ctx.Value(tlsStateKey{}).(*tls.ConnectionState)
	return c
}

// validatingConn checks the request of a server stream as it is received.
type validatingConn struct {
	connect.StreamingHandlerConn
	g *gate
}

func (c validatingConn) Receive(m any) error {
	if err := c.StreamingHandlerConn.Receive(m); err != nil {
		return err
	}
	if err := c.g.validate(m); err != nil {
		return connectError(err)
	}
	return nil
}
