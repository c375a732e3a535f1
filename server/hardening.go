package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	connectcors "connectrpc.com/cors"
	"github.com/rs/cors"
)

// loopbackHosts are the Host names the HTTP port accepts without configuration.
var loopbackHosts = []string{"localhost", "127.0.0.1", "::1"}

// allowHosts answers 421 to a request whose Host is not one the server is known
// by: a page in a browser on this computer that reaches the port through a DNS
// name it controls (DNS rebinding) names its own host, and is refused.
func allowHosts(hosts []string, next http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, h := range append(slices.Clone(loopbackHosts), hosts...) {
		allowed[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if !allowed[strings.ToLower(strings.Trim(host, "[]"))] {
			http.Error(w, "host not allowed: add it to http.allowed_hosts", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// withCORS lets browsers on the given origins call the API (Connect and
// gRPC-Web, with the headers they need); no origin is allowed by default, so a
// page from elsewhere cannot read the API's answers.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: connectcors.AllowedMethods(),
		AllowedHeaders: append(connectcors.AllowedHeaders(), "Authorization", "X-Switchyard-Client"),
		ExposedHeaders: connectcors.ExposedHeaders(),
		MaxAge:         7200,
	})
	return c.Handler(next)
}

// bodyDeadline gives each request timeout to deliver its body: a client that
// trickles its body is cut off instead of holding a connection (and a file
// descriptor) for ever. Once the body is read, the deadline is lifted, so a long
// response stream is not cut.
func bodyDeadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		if r.Body != nil && r.Body != http.NoBody && rc.SetReadDeadline(time.Now().Add(timeout)) == nil {
			r.Body = &liftingBody{
				ReadCloser: r.Body,
				lift:       func() { _ = rc.SetReadDeadline(time.Time{}) },
				// The handler answers the timeout before it writes anything; the
				// connection then closes (HTTP/1.1) instead of idling on.
				timedOut: func() { w.Header().Set("Connection", "close") },
			}
		}
		next.ServeHTTP(w, r)
	})
}

// liftingBody lifts the read deadline when the body has been read to its end.
type liftingBody struct {
	io.ReadCloser
	once     sync.Once
	lift     func()
	timedOut func()
}

func (b *liftingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	switch {
	case errors.Is(err, io.EOF):
		b.once.Do(b.lift)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.once.Do(b.timedOut)
	}
	return n, err
}

// connectionCaps returns how many connections each of the two ports may hold:
// want, lowered so that both together leave reserve of the process's descriptor
// limit for instruments, QuestDB and files.
func connectionCaps(want, reserve int) int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return want
	}
	budget := (int(rl.Cur) - reserve) / 2
	return max(1, min(want, budget))
}

// capListener holds at most cap connections open at once: past it, Accept waits
// for one to close, and new clients wait in the kernel's accept queue without
// taking a descriptor of this process.
type capListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newCapListener(ln net.Listener, cap int) *capListener {
	return &capListener{Listener: ln, slots: make(chan struct{}, cap), done: make(chan struct{})}
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, free: func() { <-l.slots }}, nil
}

func (l *capListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// slotConn gives its slot back when closed.
type slotConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}

// isLoopback reports whether a listen address only serves this computer.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
