package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"buf.build/go/protovalidate"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/auth"
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
	// Replay, when set, answers Subscribe's since_ns instead of Archive: a
	// cluster node replays from the cluster's stream (and the archive for
	// what is older), joined to the live samples by seq. Default nil.
	Replay telemetry.Replayer
	// AlarmArchive and DeviceArchive replay archived alarm transitions and
	// device state changes to WatchAlarms and WatchDevices with since_ns.
	// Default nil: such a watch is live only, and its replay_end says so.
	AlarmArchive  AlarmArchive
	DeviceArchive DeviceArchive
	// Cluster answers GetClusterView. Default nil: a single node, which answers
	// NOT_SUPPORTED.
	Cluster Cluster

	// Auth turns authentication on (see Auth). Zero: every caller is
	// "anonymous" with role admin, which Listen allows on loopback only.
	Auth Auth
	// TLS serves both ports over TLS (and verifies client certificates when it
	// names a client CA). Zero: plaintext.
	TLS TLS
	// Insecure allows a non-loopback address without TLS and authentication;
	// Serve warns about it every time it starts.
	Insecure bool
	// Limits bound streams, commands, connections and request sizes; the zero
	// value takes the defaults (see Limits).
	Limits Limits
	// AllowedHosts are the Host names the HTTP port answers besides the loopback
	// names (localhost, 127.0.0.1, ::1): the names clients reach the server by.
	AllowedHosts []string
	// CORSOrigins are the browser origins ("https://panel.lab:8443") that may
	// call the API from their pages. Default none.
	CORSOrigins []string
	// Audit receives the audit trail (every state-changing call) besides the log
	// and WatchAudit. Default nil: not archived.
	Audit audit.Sink
	// Config serves ReloadConfig and GetConfig. Default nil: they answer
	// Unimplemented.
	Config Config
	// Now is the clock of rate limits and durations. Default time.Now.
	Now func() time.Time
}

// Auth says how callers identify themselves. Authentication is on when either
// field is set.
type Auth struct {
	// Tokens are the bearer tokens accepted ("authorization: Bearer TOKEN").
	Tokens *auth.Tokens
	// CertRoles give roles to verified client certificates' names (needs
	// TLS.ClientCAFile).
	CertRoles auth.CertRoles
}

func (a Auth) enabled() bool { return a.Tokens != nil || len(a.CertRoles) > 0 }

// Server serves the Switchyard API on a gRPC port and an HTTP port. Create it with
// New, run it with Serve (again after it returned, as a supervisor restarts a
// child: every run builds fresh transports on the same ports), and release the
// ports with Close.
type Server struct {
	opts    Options
	log     *slog.Logger
	hub     *telemetry.Hub
	devices Devices
	tree    Tree
	metrics *metrics
	// services are the names health reports on (besides "").
	services []string
	gate     *gate
	tls      *tlsFiles // nil without TLS

	// bg counts goroutines a run leaves behind on purpose (a RestartProcess of
	// the server itself); Close waits for them.
	bg sync.WaitGroup

	mu      sync.Mutex
	grpcLn  net.Listener
	httpLn  net.Listener
	running bool
	closed  bool
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
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.Limits = opts.Limits.withDefaults()
	validator, err := protovalidate.New()
	if err != nil {
		panic("server: protovalidate: " + err.Error()) // only fails on broken rules in the contract
	}
	trail := newAuditTrail(opts.Logger, opts.Audit)
	return &Server{
		opts:     opts,
		log:      opts.Logger,
		hub:      hub,
		devices:  devices,
		tree:     tree,
		metrics:  newMetrics(opts.Registerer),
		services: names,
		gate: &gate{
			log:       opts.Logger,
			authOn:    opts.Auth.enabled(),
			tokens:    opts.Auth.Tokens,
			certRoles: opts.Auth.CertRoles,
			streams:   newStreamLimiter(opts.Limits),
			commands:  newCommandLimiter(opts.Limits, opts.Now),
			audit:     trail,
			validator: validator,
			now:       opts.Now,
		},
	}
}

// run is one run of Serve: its transports, its health and the context that ends
// its streams. Nothing of it outlives the run.
type run struct {
	life    context.Context // ends at shutdown; every stream watches it
	endLife context.CancelCauseFunc
	serving atomic.Bool // what /healthz reports
	health  *healthService
	grpc    *grpc.Server
	http    *http.Server
}

// newRun builds the services and both transports for one run of Serve.
func (s *Server) newRun() *run {
	r := &run{}
	r.life, r.endLife = context.WithCancelCause(context.Background())
	r.health = newHealthService(r.life, s.services)
	rpcs := s.rpcs(r)
	r.grpc = newGRPCServer(s.log, r.life, s.gate, s.tls, s.opts.Limits, rpcs)
	r.http = newHTTPServer(httpDeps{
		log:      s.log,
		gate:     s.gate,
		rpcs:     rpcs,
		serving:  &r.serving,
		gatherer: s.opts.Gatherer,
		web:      s.opts.WebHandler,
		tls:      s.tls,
		opts:     &s.opts,
	})
	return r
}

// rpcs is the table of every RPC the server answers, each with its one
// implementation; both transports are built from it (rpc.go).
func (s *Server) rpcs(r *run) []rpc {
	dev := &deviceService{devices: s.devices, tree: s.tree, archive: s.opts.DeviceArchive, life: r.life, metrics: s.metrics,
		limits: s.opts.Limits, log: s.log}
	tel := &telemetryService{hub: s.hub, devices: s.devices, life: r.life, metrics: s.metrics, archive: s.opts.Archive,
		replay: s.opts.Replay, limits: s.opts.Limits}
	sys := &systemService{tree: s.tree, life: r.life, metrics: s.metrics, server: s, audit: s.gate.audit, authOn: s.gate.authOn,
		cluster: s.opts.Cluster, config: s.opts.Config}
	hist := &historyService{archive: s.opts.Archive}
	out := []rpc{
		unary(pb.DeviceService_ListDevices_FullMethodName, dev.listDevices),
		unary(pb.DeviceService_GetDevice_FullMethodName, dev.getDevice),
		unary(pb.DeviceService_SendCommand_FullMethodName, dev.sendCommand),
		unary(pb.DeviceService_AbortCommand_FullMethodName, dev.abortCommand),
		serverStream(pb.DeviceService_WatchDevices_FullMethodName, dev.watchDevices),
		serverStream(pb.TelemetryService_Subscribe_FullMethodName, tel.subscribe),
		unary(pb.TelemetryService_GetLatest_FullMethodName, tel.getLatest),
		unary(pb.SystemService_GetSupervisionTree_FullMethodName, sys.getSupervisionTree),
		serverStream(pb.SystemService_WatchSupervisionEvents_FullMethodName, sys.watchSupervisionEvents),
		unary(pb.SystemService_RestartProcess_FullMethodName, sys.restartProcess),
		unary(pb.SystemService_GetIdentity_FullMethodName, sys.getIdentity),
		serverStream(pb.SystemService_WatchAudit_FullMethodName, sys.watchAudit),
		unary(pb.SystemService_ReloadConfig_FullMethodName, sys.reloadConfig),
		unary(pb.SystemService_GetConfig_FullMethodName, sys.getConfig),
		unary(pb.SystemService_GetClusterView_FullMethodName, sys.getClusterView),
		unary(pb.HistoryService_QueryHistory_FullMethodName, hist.queryHistory),
		unary(healthpb.Health_Check_FullMethodName, r.health.check),
		serverStream(healthpb.Health_Watch_FullMethodName, r.health.watch),
	}
	if s.opts.Alarms != nil {
		alm := &alarmService{alarms: s.opts.Alarms, devices: s.devices, archive: s.opts.AlarmArchive, life: r.life, metrics: s.metrics,
			limits: s.opts.Limits, log: s.log}
		out = append(out,
			unary(pb.AlarmService_ListActiveAlarms_FullMethodName, alm.listActiveAlarms),
			serverStream(pb.AlarmService_WatchAlarms_FullMethodName, alm.watchAlarms),
			unary(pb.AlarmService_Acknowledge_FullMethodName, alm.acknowledge),
			unary(pb.AlarmService_Shelve_FullMethodName, alm.shelve),
			unary(pb.AlarmService_GetAlarmLimits_FullMethodName, alm.getAlarmLimits),
			unary(pb.AlarmService_SetAlarmLimits_FullMethodName, alm.setAlarmLimits),
		)
	}
	return out
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
	if err := s.checkExposure(); err != nil {
		return err
	}
	if s.opts.TLS.enabled() && s.tls == nil {
		f, err := newTLSFiles(s.opts.TLS, s.log)
		if err != nil {
			return fmt.Errorf("server: %w", err)
		}
		s.tls = f
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
// exited. It returns nil after a shutdown asked for by ctx.
//
// Serve may be called again after it returned (a supervisor restarting the API
// child): each run builds its transports afresh and keeps the ports, so clients
// reconnect to the same addresses. Runs may not overlap. Close releases the ports.
func (s *Server) Serve(ctx context.Context) error {
	if err := s.Listen(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("server: Serve after Close")
	}
	if s.running {
		s.mu.Unlock()
		return errors.New("server: Serve called while already serving")
	}
	s.running = true
	conns := connectionCaps(s.opts.Limits.MaxConnections, s.opts.Limits.ReservedDescriptors)
	grpcLn := newCapListener(newRunListener(s.grpcLn), conns)
	var httpLn net.Listener = newCapListener(newRunListener(s.httpLn), conns)
	if s.tls != nil {
		httpLn = tls.NewListener(httpLn, s.tls.config([]string{"h2", "http/1.1"}))
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running = false
		s.mu.Unlock()
	}()

	r := s.newRun()
	r.setHealth(true)
	s.log.Info("serving API", "grpc", grpcLn.Addr().String(), "http", httpLn.Addr().String(),
		"tls", s.tls != nil, "authentication", s.gate.authOn, "connections_per_port", conns)
	if s.opts.Insecure && !(isLoopback(grpcLn.Addr().String()) && isLoopback(httpLn.Addr().String())) && !(s.tls != nil && s.gate.authOn) {
		s.log.Warn("INSECURE: serving a non-loopback address without TLS and authentication (insecure: true); anyone who can reach the ports can control every instrument")
	}

	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := r.grpc.Serve(grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("server: gRPC port %s: %w", grpcLn.Addr(), err)
		}
	})
	wg.Go(func() {
		if err := r.http.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("server: HTTP port %s: %w", httpLn.Addr(), err)
		}
	})

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	r.shutdown(s.log, s.opts.ShutdownTimeout)
	wg.Wait()
	_ = grpcLn.Close()
	_ = httpLn.Close()
	s.log.Info("API stopped")
	return err
}

// Close releases both ports and waits for what a run left behind (see
// RestartProcess). Call it once Serve has returned for the last time. It is
// idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	for _, ln := range []net.Listener{s.grpcLn, s.httpLn} {
		if ln != nil {
			if err := ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, err)
			}
		}
	}
	s.mu.Unlock()
	s.bg.Wait()
	return errors.Join(errs...)
}

// shutdown stops both ports; see Serve.
func (r *run) shutdown(log *slog.Logger, timeout time.Duration) {
	r.setHealth(false)
	r.endLife(errShuttingDown)

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() {
			r.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			log.Warn("gRPC graceful stop timed out; closing connections", "timeout", timeout)
			r.grpc.Stop() // makes GracefulStop return
			<-done
		}
	})
	wg.Go(func() {
		if err := r.http.Shutdown(ctx); err != nil {
			log.Warn("HTTP shutdown timed out; closing connections", "timeout", timeout, "err", err)
			_ = r.http.Close()
		}
	})
	wg.Wait()
}

// setHealth sets what /healthz and grpc.health.v1 (both ports) report.
func (r *run) setHealth(up bool) {
	r.serving.Store(up)
	r.health.set(up)
}

// checkExposure refuses a non-loopback address unless both TLS and
// authentication are on, or Options.Insecure says so.
func (s *Server) checkExposure() error {
	if s.opts.Insecure || (s.opts.TLS.enabled() && s.gate.authOn) {
		return nil
	}
	for _, a := range []string{s.opts.GRPCAddr, s.opts.HTTPAddr} {
		if !isLoopback(a) {
			return fmt.Errorf("server: refusing to listen on %s: a non-loopback address needs TLS (tls:) and authentication (auth:), or insecure: true", a)
		}
	}
	return nil
}
