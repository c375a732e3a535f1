package server

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// readHeaderTimeout bounds how long a client may take to send request headers. The
// server sets no ReadTimeout or WriteTimeout: streams last as long as the client wants.
const readHeaderTimeout = 10 * time.Second

// idleTimeout closes keep-alive connections without requests (or, for HTTP/2,
// without streams) after this long; it never cuts an open stream.
const idleTimeout = 2 * time.Minute

// httpDeps is what the HTTP port serves.
type httpDeps struct {
	log      *slog.Logger
	rpcs     []rpc
	serving  *atomic.Bool
	gatherer prometheus.Gatherer
	web      http.Handler
}

// newHTTPServer builds the HTTP port of one run: the rpcs through connect-go
// (Connect, gRPC and gRPC-Web protocols; grpc.health.v1 among them), /healthz,
// /metrics and the optional web page at /. It speaks HTTP/1.1 and h2c.
func newHTTPServer(d httpDeps) *http.Server {
	mux := http.NewServeMux()
	registerConnect(mux, d.rpcs,
		connect.WithReadMaxBytes(maxRequestBytes),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			d.log.ErrorContext(ctx, "panic in Connect handler", "procedure", spec.Procedure, "panic", p, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !d.serving.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("shutting down"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.gatherer, promhttp.HandlerOpts{}))
	if d.web != nil {
		mux.Handle("/", d.web)
	}

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // gRPC clients need HTTP/2; no TLS on this port
	return &http.Server{
		Handler:           mux,
		Protocols:         &protocols,
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
}
