// Package servertest runs a real server.Server on loopback ports chosen by the
// system, for tests of the API and of its clients.
package servertest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/telemetry"
)

// Running is a server started by Start.
type Running struct {
	// Server is the running server.
	Server *server.Server
	// GRPCAddr is the host:port of its gRPC port.
	GRPCAddr string
	// HTTPURL is the base URL of its HTTP port, "http://127.0.0.1:port".
	HTTPURL string

	cancel context.CancelFunc
	done   chan error
	err    error
	ended  bool
}

// Start serves hub, devices and tree on 127.0.0.1 port 0 (both ports). Options
// given are kept, except that the addresses are replaced and a nil Logger
// discards. The server is stopped when the test ends, and the test fails if Serve
// returned an error or took longer than 10 s to stop.
func Start(t testing.TB, hub *telemetry.Hub, devices server.Devices, tree server.Tree, opts server.Options) *Running {
	t.Helper()
	opts.GRPCAddr = "127.0.0.1:0"
	opts.HTTPAddr = "127.0.0.1:0"
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := server.New(hub, devices, tree, opts)
	if err := srv.Listen(); err != nil {
		t.Fatalf("servertest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{
		Server:   srv,
		GRPCAddr: srv.GRPCAddr().String(),
		HTTPURL:  "http://" + srv.HTTPAddr().String(),
		cancel:   cancel,
		done:     make(chan error, 1),
	}
	go func() { r.done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		if err := r.Stop(10 * time.Second); err != nil {
			t.Errorf("servertest: %v", err)
		}
	})
	return r
}

// Dial returns a plaintext gRPC client connection to the server, closed when
// the test ends (before the server stops).
func (r *Running) Dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(r.GRPCAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatalf("servertest: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Stop cancels Serve's context, waits up to timeout for Serve to return and
// closes the server (releasing its ports). It returns Serve's and Close's errors, or context.DeadlineExceeded if Serve did not return in
// time. Stop is idempotent; it is not safe for concurrent use.
func (r *Running) Stop(timeout time.Duration) error {
	if r.ended {
		return r.err
	}
	r.cancel()
	select {
	case r.err = <-r.done:
		r.ended = true
		r.err = errors.Join(r.err, r.Server.Close())
	case <-time.After(timeout):
		return context.DeadlineExceeded
	}
	return r.err
}
