package server

import (
	"net/http"
	"net/http/pprof"
)

// WithProfiling returns a handler that serves Go's runtime profiles under
// /debug/pprof/ (CPU, heap, allocs, goroutines, ...) and passes every other path
// to next (nil: 404). Use it as Options.WebHandler to put profiling on the HTTP
// port; it is off unless a caller asks for it (`switchyard serve --pprof`), since
// a profile exposes the process's internals to whoever can reach the port.
func WithProfiling(next http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	if next == nil {
		next = http.NotFoundHandler()
	}
	mux.Handle("/", next)
	return mux
}
