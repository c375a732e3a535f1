package server

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"
)

// runListener is the view one run of Serve has of a port's listener: closing it
// (as grpc-go and net/http do when they stop) ends this run's Accept but keeps
// the port open, so the next run serves on the same address and no other program
// can take the port in between.
type runListener struct {
	ln       net.Listener
	deadline interface{ SetDeadline(time.Time) error } // nil if ln has none

	mu     sync.Mutex
	closed bool
}

func newRunListener(ln net.Listener) *runListener {
	r := &runListener{ln: ln}
	if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
		r.deadline = d
		_ = d.SetDeadline(time.Time{}) // a previous run's Close set one
	}
	return r
}

// Accept waits for the next connection. Once the run listener is closed it
// returns net.ErrClosed, also to an Accept already waiting (Close wakes it with
// a deadline in the past).
func (r *runListener) Accept() (net.Conn, error) {
	for {
		c, err := r.ln.Accept()
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if closed {
			if c != nil {
				c.Close()
			}
			return nil, net.ErrClosed
		}
		if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			continue // a stale wake-up meant for another run
		}
		return c, err
	}
}

// Close ends this run's use of the listener; the port stays open.
func (r *runListener) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	if r.deadline != nil {
		_ = r.deadline.SetDeadline(time.Unix(1, 0))
	}
	return nil
}

// Addr is the port's address.
func (r *runListener) Addr() net.Addr { return r.ln.Addr() }
