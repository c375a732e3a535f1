package server

import (
	"log/slog"
	"net/http"
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
	gate     *gate
	rpcs     []rpc
	serving  *atomic.Bool
	gatherer prometheus.Gatherer
	web      http.Handler
	tls      *tlsFiles // nil: plaintext (HTTP/1.1 and h2c)
	opts     *Options
}

// newHTTPServer builds the HTTP port of one run: the rpcs through connect-go
// (Connect, gRPC and gRPC-Web protocols; grpc.health.v1 among them) behind the
// gate's Connect interceptor, /healthz, /metrics and the optional web page at /;
// in front of all of it the allowed Host names, CORS for the configured origins
// and the request-body deadline. It speaks HTTP/1.1 and HTTP/2 (h2c without TLS).
func newHTTPServer(d httpDeps) *http.Server {
	mux := http.NewServeMux()
	registerConnect(mux, d.rpcs,
		// Checked after decompression too: a small compressed bomb is refused.
		connect.WithReadMaxBytes(d.opts.Limits.MaxRequestBytes),
		connect.WithInterceptors(connectGate{g: d.gate}),
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
	var h http.Handler = mux
	h = httpAbortable(h)
	h = withTLSState(h)
	h = bodyDeadline(d.opts.Limits.BodyTimeout, h)
	h = withCORS(d.opts.CORSOrigins, h)
	h = allowHosts(d.opts.AllowedHosts, h)

	var protocols http.Protocols
	protocols.SetHTTP1(true)
	if d.tls != nil {
		protocols.SetHTTP2(true)
	} else {
		protocols.SetUnencryptedHTTP2(true) // gRPC clients need HTTP/2
	}
	return &http.Server{
		Handler:           h,
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: int(d.opts.Limits.http2Streams())},
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(d.log.Handler(), slog.LevelWarn),
	}
}
