package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"connectrpc.com/grpchealth"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// Default listen addresses.
const (
	DefaultGRPCAddr = "127.0.0.1:7400"
	DefaultHTTPAddr = "127.0.0.1:7480"
)

// DefaultShutdownTimeout is how long Serve waits for RPCs to finish on shutdown
// before it closes the remaining connections.
const DefaultShutdownTimeout = 5 * time.Second

// Options configures a Server. The zero value serves on the default addresses.
type Options struct {
	// GRPCAddr is the host:port of the native gRPC port. Default DefaultGRPCAddr
	// ("127.0.0.1:7400"). Use port 0 to pick a free port; see GRPCAddr.
	GRPCAddr string
	// HTTPAddr is the host:port of the HTTP port (Connect, gRPC-Web, gRPC over h2c,
	// /healthz, /metrics, the web page). Default DefaultHTTPAddr ("127.0.0.1:7480").
	HTTPAddr string
	// Logger receives request logs and panics. Default slog.Default().
	Logger *slog.Logger
	// Gatherer is what /metrics exposes. Default prometheus.DefaultGatherer.
	Gatherer prometheus.Gatherer
	// Registerer receives the server's own metrics. Default nil: they are not
	// registered (so several servers can live in one test binary).
	Registerer prometheus.Registerer
	// WebHandler serves every path of the HTTP port not taken by the API, /healthz
	// or /metrics (the web page). Default nil: those paths answer 404.
	WebHandler http.Handler
	// ShutdownTimeout bounds the graceful part of shutdown on each port. Default
	// DefaultShutdownTimeout (5 s).
	ShutdownTimeout time.Duration
	// Alarms serves AlarmService. Default nil: AlarmService is not registered.
	Alarms Alarms
	// Archive answers HistoryService and Subscribe with since_ns. Default nil:
	// those answer Unavailable.
	Archive Archive
	// Cluster answers GetClusterView. Default nil: a single node, which answers
	// NOT_SUPPORTED.
	Cluster Cluster
}

// Server serves the Switchyard API on a gRPC port and an HTTP port. Create it with
// New, run it with Serve.
type Server struct {
	opts Options
	log  *slog.Logger

	life    context.Context // ends at shutdown; every stream watches it
	endLife context.CancelCauseFunc

	serving atomic.Bool // what /healthz reports
	health  *health.Server
	checker *grpchealth.StaticChecker
	// services are the names health reports on (besides "").
	services []string

	grpc *grpc.Server
	http *http.Server

	mu     sync.Mutex
	grpcLn net.Listener
	httpLn net.Listener
	served bool
}

// New returns a Server for the given hub, device manager and supervision tree. It
// does not listen yet; see Listen and Serve.
func New(hub *telemetry.Hub, devices Devices, tree Tree, opts Options) *Server {
	if opts.GRPCAddr == "" {
		opts.GRPCAddr = DefaultGRPCAddr
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = DefaultHTTPAddr
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Gatherer == nil {
		opts.Gatherer = prometheus.DefaultGatherer
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = DefaultShutdownTimeout
	}
	names := slices.Clone(baseServiceNames)
	if opts.Alarms != nil {
		names = append(names, pb.AlarmService_ServiceDesc.ServiceName)
	}
	s := &Server{
		opts:     opts,
		log:      opts.Logger,
		health:   health.NewServer(),
		checker:  grpchealth.NewStaticChecker(names...),
		services: names,
	}
	s.life, s.endLife = context.WithCancelCause(context.Background())
	s.setHealth(false)

	m := newMetrics(opts.Registerer)
	dev := &deviceService{devices: devices, life: s.life, metrics: m}
	tel := &telemetryService{hub: hub, devices: devices, life: s.life, metrics: m}
	sys := &systemService{tree: tree, life: s.life, metrics: m, cluster: opts.Cluster}
	hist := &historyService{archive: opts.Archive}
	tel.archive = opts.Archive
	var alm *alarmService
	if opts.Alarms != nil {
		alm = &alarmService{alarms: opts.Alarms, life: s.life, metrics: m}
	}
	s.grpc = newGRPCServer(s.log, s.life, dev, tel, sys, s.health)
	if alm != nil {
		pb.RegisterAlarmServiceServer(s.grpc, grpcAlarmService{core: alm})
	}
	pb.RegisterHistoryServiceServer(s.grpc, grpcHistoryService{core: hist})
	s.http = newHTTPServer(httpDeps{
		log:      s.log,
		life:     s.life,
		dev:      dev,
		tel:      tel,
		sys:      sys,
		checker:  s.checker,
		serving:  &s.serving,
		gatherer: opts.Gatherer,
		web:      opts.WebHandler,
		alarms:   alm,
		hist:     hist,
	})
	return s
}

// Listen opens both ports. Serve calls it if it has not been called; call it
// first to learn the addresses of ports chosen by the system (port 0). A Server
// that listened must be served (Serve closes the listeners when it returns).
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpcLn != nil {
		return nil
	}
	g, err := net.Listen("tcp", s.opts.GRPCAddr)
	if err != nil {
		return fmt.Errorf("server: gRPC port %s: %w", s.opts.GRPCAddr, err)
	}
	h, err := net.Listen("tcp", s.opts.HTTPAddr)
	if err != nil {
		g.Close()
		return fmt.Errorf("server: HTTP port %s: %w", s.opts.HTTPAddr, err)
	}
	s.grpcLn, s.httpLn = g, h
	return nil
}

// GRPCAddr returns the bound address of the gRPC port, or nil before Listen.
func (s *Server) GRPCAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.grpcLn == nil {
		return nil
	}
	return s.grpcLn.Addr()
}

// HTTPAddr returns the bound address of the HTTP port, or nil before Listen.
func (s *Server) HTTPAddr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Serve listens (unless Listen was called) and serves both ports until ctx ends or
// a port fails. Then it reports NOT_SERVING, ends every open stream, stops the gRPC
// server gracefully and shuts the HTTP server down, each within ShutdownTimeout
// before closing what is left, and returns once every goroutine it started has
// exited. It returns nil after a shutdown asked for by ctx. Serve may be called once.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.served {
		s.mu.Unlock()
		return errors.New("server: Serve called twice")
	}
	s.served = true
	grpcLn, httpLn := s.grpcLn, s.httpLn
	s.mu.Unlock()

	s.setHealth(true)
	s.log.Info("serving API", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String())

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := s.grpc.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("server: gRPC port %s: %w", grpcLn.Addr(), err)
		}
	})
	wg.Go(func() {
		if err := s.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("server: HTTP port %s: %w", httpLn.Addr(), err)
		}
	})

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown()
	wg.Wait()
	s.log.Info("API stopped")
	return err
}

// shutdown stops both ports; see Serve.
func (s *Server) shutdown() {
	s.setHealth(false)
	s.health.Shutdown() // NOT_SERVING for every service, and stays so
	s.endLife(errShuttingDown)

	ctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("gRPC graceful stop timed out; closing connections", "timeout", s.opts.ShutdownTimeout)
			s.grpc.Stop() // makes GracefulStop return
			<-done
		}
	})
	wg.Go(func() {
		if err := s.http.Shutdown(ctx); err != nil {
			s.log.Warn("HTTP shutdown timed out; closing connections", "timeout", s.opts.ShutdownTimeout, "err", err)
			_ = s.http.Close()
		}
	})
	wg.Wait()
}

// setHealth sets what /healthz and both grpc.health.v1 services report.
func (s *Server) setHealth(up bool) {
	s.serving.Store(up)
	grpcStatus, connectStatus := healthpb.HealthCheckResponse_NOT_SERVING, grpchealth.StatusNotServing
	if up {
		grpcStatus, connectStatus = healthpb.HealthCheckResponse_SERVING, grpchealth.StatusServing
	}
	for _, name := range append([]string{""}, s.services...) {
		s.health.SetServingStatus(name, grpcStatus)
		s.checker.SetStatus(name, connectStatus)
	}
}
