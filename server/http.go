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
	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
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
	life     context.Context
	dev      *deviceService
	tel      *telemetryService
	sys      *systemService
	checker  *grpchealth.StaticChecker
	serving  *atomic.Bool
	gatherer prometheus.Gatherer
	web      http.Handler
	alarms   *alarmService // nil: AlarmService is not served
	hist     *historyService
}

// newHTTPServer builds the HTTP port: the three services through connect-go
// (Connect, gRPC and gRPC-Web protocols), grpc.health.v1, /healthz, /metrics and
// the optional web page at /. It speaks HTTP/1.1 and h2c.
func newHTTPServer(d httpDeps) *http.Server {
	opts := connect.WithHandlerOptions(
		connect.WithReadMaxBytes(maxRequestBytes),
		connect.WithRecover(func(ctx context.Context, spec connect.Spec, _ http.Header, p any) error {
			d.log.ErrorContext(ctx, "panic in Connect handler", "procedure", spec.Procedure, "panic", p, "stack", string(debug.Stack()))
			return connect.NewError(connect.CodeInternal, errors.New("internal error"))
		}),
	)
	mux := http.NewServeMux()
	mux.Handle(switchyardv1connect.NewDeviceServiceHandler(d.dev, opts))
	mux.Handle(switchyardv1connect.NewTelemetryServiceHandler(d.tel, opts, connect.WithCodec(connectCodec{})))
	mux.Handle(switchyardv1connect.NewSystemServiceHandler(d.sys, opts))
	if d.alarms != nil {
		mux.Handle(switchyardv1connect.NewAlarmServiceHandler(d.alarms, opts))
	}
	mux.Handle(switchyardv1connect.NewHistoryServiceHandler(d.hist, opts))
	// A health Watch lasts until the client leaves; end it at shutdown like our streams.
	healthPath, healthHandler := grpchealth.NewHandler(d.checker, opts)
	mux.Handle(healthPath, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := streamContext(r.Context(), d.life)
		defer cancel()
		healthHandler.ServeHTTP(w, r.WithContext(ctx))
	}))
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
