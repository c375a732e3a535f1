// Package clustertest runs the real parts a cluster test needs in-process: an
// embedded NATS server with JetStream in a temporary directory, and a TCP proxy
// that can cut a node off from it (a partition that keeps the socket open, the
// case a node cannot tell from a slow network).
package clustertest

import (
	"net"
	"sync"
	"testing"

	"github.com/switchyard/switchyard/cluster/natsserver"
)

// Server is an embedded NATS server with JetStream.
type Server struct{ *natsserver.Embedded }

// StartServer starts a NATS server with JetStream on a random loopback port,
// its store in a temporary directory of the test, and shuts it down when the
// test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	s, err := natsserver.Start(t.TempDir(), "127.0.0.1", -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	return &Server{s}
}

// Proxy forwards TCP connections to a target. Cut makes it stop forwarding in
// both directions without closing anything (a black hole); Restore resumes.
type Proxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	cut   bool
	wake  chan struct{} // closed and replaced on Restore
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy listens on a random loopback port and forwards to target
// ("host:port" or "nats://host:port"); it stops when the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	if len(target) > 7 && target[:7] == "nats://" {
		target = target[7:]
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, wake: make(chan struct{}), conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// URL is the proxy's address as a NATS URL.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Cut stops forwarding: bytes already read wait, nothing is closed.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

// Restore resumes forwarding.
func (p *Proxy) Restore() {
	p.mu.Lock()
	p.cut = false
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
}

// Close stops accepting, closes every connection and waits for its goroutines.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.cut = false
	close(p.wake)
	p.wake = make(chan struct{})
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[u] = struct{}{}, struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// gate blocks while the proxy is cut.
func (p *Proxy) gate() {
	for {
		p.mu.Lock()
		cut, wake := p.cut, p.wake
		p.mu.Unlock()
		if !cut {
			return
		}
		<-wake
	}
}

func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
