package ingesttest

import (
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// Mode is what a Proxy does with the requests it receives.
type Mode int32

// Proxy modes.
const (
	// Up forwards every request to QuestDB.
	Up Mode = iota
	// Unavailable answers every request with 503 Service Unavailable.
	Unavailable
	// Drop closes every connection without an answer.
	Drop
)

// Proxy is an HTTP proxy in front of a QuestDB that a test can switch between
// forwarding and failing, to simulate outages deterministically.
type Proxy struct {
	mode atomic.Int32
	srv  *httptest.Server
}

// NewProxy starts a loopback proxy to the QuestDB HTTP endpoint at target
// ("host:port") in mode Up, and stops it when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	u, err := url.Parse("http://" + target)
	if err != nil {
		t.Fatalf("proxy target %q: %v", target, err)
	}
	transport := &http.Transport{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = transport
	p := &Proxy{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch Mode(p.mode.Load()) {
		case Unavailable:
			http.Error(w, "proxy: QuestDB is down (simulated)", http.StatusServiceUnavailable)
		case Drop:
			hj, ok := w.(http.Hijacker)
			if !ok {
				panic("ingesttest: proxy response cannot be hijacked")
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
		default:
			rp.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(func() {
		p.srv.Close()
		transport.CloseIdleConnections()
	})
	return p
}

// Addr returns the proxy's "host:port", to use in place of QuestDB's.
func (p *Proxy) Addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// Set switches the proxy's mode for the requests that follow.
func (p *Proxy) Set(m Mode) { p.mode.Store(int32(m)) }
