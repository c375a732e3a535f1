package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/auth"
	dashboard "github.com/switchyard/switchyard/clients/web"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// app is a wired Switchyard: the telemetry hub, the device manager, the archive
// writer and the API servers in one supervision tree:
//
//	switchyard (one_for_one, at most 5 restarts in 30 s)
//	├── telemetry      worker: the hub's watchdog
//	├── archive        worker: the QuestDB writer (only with a QuestDB address)
//	├── archive-wide   worker: the QuestDB writer of the devices archived in the wide layout (if any)
//	├── device-events  worker: device state changes into QuestDB (with archiving)
//	├── alarm-archive  worker: alarm transitions into QuestDB (with archiving)
//	├── alarms         worker: the alarm engine
//	├── spool-monitor  worker: the archives' spools (fill, damage, stopped) as channels (with a spool)
//	├── devices        dynamic supervisor (one_for_one): one worker per
//	│                  instrument, added at run time, keyed by its device name,
//	│                  each with its command mailbox
//	└── api            worker: the gRPC and HTTP servers
//
// The telemetry hub's fan-out runs on its publishers' goroutines (a publish
// never waits for a viewer; only a lossless consumer at its bound, the archive
// or the alarm engine, holds it back). Its process in the tree is the
// watchdog: it keeps every subscription's queue depth current and reports
// stalled consumers and lossless queues at their bound as its status (each
// change is a supervision STATUS event), in the log, in metrics and as the
// switchyard/hub_backpressure channel.
//
// Start order (the root supervisor starts children in order, each after the one
// before it is ready):
//
//  0. telemetry - the hub's watchdog.
//  1. archive  - the QuestDB writer; its hub subscription exists before any device
//     publishes, so it sees every sample from the first one on. Then the device
//     events writer and its feed (the state watch exists before any device starts).
//  2. alarm-archive - the QuestDB writer of alarm transitions (with archiving).
//  3. alarms   - the alarm engine; like the archive, subscribed before any device
//     publishes.
//  4. devices  - starts empty; once it runs, Serve adds every configured device
//     to it as a dynamic child (DynamicSupervisor.start_child), the same path a
//     device added at run time takes. Dynamic children stay across a restart of
//     the devices supervisor.
//  5. api      - the gRPC and HTTP servers.
//
// A crash restarts only what it should: a device process alone (its own
// connection failures are states inside it, not crashes); the archive writer or
// the API alone; the whole device supervisor when its devices crash faster than
// its intensity allows. When the root's own intensity is exceeded, Serve logs
// the failure and returns it, and the process exits non-zero.
//
// Shutdown is the reverse: the API ends its streams and stops accepting; the
// devices stop (publishing DISCONNECTED for their channels); last, the archive
// writer drains everything that was published and flushes it to QuestDB.
type app struct {
	hub     *telemetry.Hub
	devices *devicemgr.Manager
	writer  *ingest.SampleWriter // nil without archiving
	wide    *ingest.WideWriter   // nil without devices archived in the wide layout
	alarms  *alarm.Engine
	api     *server.Server
	root    *supervisor.Supervisor
	devSup  *supervisor.Supervisor // the dynamic device supervisor
	log     *slog.Logger
}

type appOptions struct {
	Log *slog.Logger
	// Registry for all metrics; a new one when nil.
	Registry *prometheus.Registry
	// Profiling serves /debug/pprof/ on the HTTP port.
	Profiling bool
	// Appender is the archives' database when questdb.address is set. Default
	// QuestDB at that address (tests put an ingesttest.FakeDB here).
	Appender ingest.Appender
}

func newApp(cfg *config.Config, opts appOptions) (*app, error) {
	log := opts.Log
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &app{hub: telemetry.NewHub(reg), log: log}
	mgr, err := devicemgr.New(cfg.Specs(), a.hub, devicemgr.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	a.devices = mgr
	a.root = supervisor.New("switchyard", supervisor.Options{
		Strategy: supervisor.OneForOne, MaxRestarts: 5, MaxTime: 30 * time.Second, Logger: log,
	})
	watchdog, err := telemetry.NewWatchdog(a.hub, telemetry.WatchdogOptions{
		Logger: log, Registerer: reg, OnStatus: supervisor.ReportStatus, PublishHealth: true,
	})
	if err != nil {
		return nil, err
	}
	if err := a.root.Add(supervisor.ChildSpec{ID: "telemetry", Service: watchdog, Shutdown: 5 * time.Second}); err != nil {
		return nil, err
	}

	// The archives' spools as channels (switchyard/archive_spool_fill, ...),
	// archived and alarmed like any reading (alarm.SystemRules).
	mon := ingest.NewSpoolMonitor(a.hub.PublishNoWait, time.Second)
	q := cfg.QuestDB
	qdb := opts.Appender
	var sinks []alarm.Sink
	if q.Address != "" {
		// A spool directory the archive cannot use is refused before anything
		// starts (one that breaks later stops archiving, not the server).
		wide := cfg.WideDevices()
		sides := []string{eventsSpool, alarmsSpool, auditSpool}
		if len(wide) > 0 {
			sides = append(sides, config.WideSpool)
		}
		for _, dir := range q.SpoolDirs(sides...) {
			if err := ingest.CheckSpoolDir(dir); err != nil {
				return nil, fmt.Errorf("questdb.spool_dir: %w", err)
			}
		}
		if qdb == nil {
			if qdb, err = questdb.New(q.Address); err != nil {
				return nil, fmt.Errorf("questdb: %w", err)
			}
		}
		// The devices of the wide layout (a row per reading) have an archive
		// of their own; everything else (the system channels too) is narrow.
		var narrowOnly func(*telemetry.Sample) bool
		if len(wide) > 0 {
			narrowOnly = func(s *telemetry.Sample) bool { return !wide[s.Device] }
		}
		sub := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless, Match: narrowOnly})
		w, err := ingest.NewSampleWriter(qdb, sub, withRuntime(cfg.ArchiveOptions(), log, reg))
		if err != nil {
			return nil, fmt.Errorf("questdb: %w", err)
		}
		a.writer = w
		if q.SpoolDir == "" {
			log.Warn("no questdb.spool_dir configured: samples not yet in QuestDB are lost if the server crashes")
		}
		if err := a.root.Add(supervisor.ChildSpec{ID: "archive", Service: w, Shutdown: 60 * time.Second}); err != nil {
			return nil, err
		}
		if len(wide) > 0 {
			wsub := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "archive_wide", Policy: telemetry.Lossless,
				Match: func(s *telemetry.Sample) bool { return wide[s.Device] }})
			ww, err := ingest.NewWideWriter(qdb, wsub, withRuntime(cfg.WideArchiveOptions(), log, reg))
			if err != nil {
				return nil, fmt.Errorf("questdb: %w", err)
			}
			a.wide = ww
			if err := a.root.Add(supervisor.ChildSpec{ID: "archive-wide", Service: ww, Shutdown: 60 * time.Second}); err != nil {
				return nil, err
			}
		}
		ew, err := ingest.NewEventWriter(qdb, withRuntime(q.SideArchiveOptions(q.EventsTable, eventsSpool), log, reg))
		if err != nil {
			return nil, fmt.Errorf("questdb.events_table: %w", err)
		}
		if err := a.root.Add(supervisor.ChildSpec{ID: "device-events-archive", Service: ew, Shutdown: 30 * time.Second}); err != nil {
			return nil, err
		}
		if err := a.root.Add(supervisor.ChildSpec{ID: "device-events", Service: ingest.NewDeviceEvents(mgr.WatchStatus(), ew)}); err != nil {
			return nil, err
		}
		sink, err := alarm.NewArchive(qdb, withRuntime(q.SideArchiveOptions(q.SideTable(alarm.DefaultEventsTable), alarmsSpool), log, reg))
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, sink)
		if err := a.root.Add(supervisor.ChildSpec{ID: "alarm-archive", Service: sink, Shutdown: 30 * time.Second}); err != nil {
			return nil, err
		}
		if q.SpoolDir != "" {
			mon.Add("archive", w.SpoolStatus)
			if a.wide != nil {
				mon.Add("wide_archive", a.wide.SpoolStatus)
			}
			mon.Add("device_events_archive", ew.SpoolStatus)
			mon.Add("alarm_archive", sink.SpoolStatus)
		}
	} else {
		log.Warn("no QuestDB address configured: samples are NOT archived (set questdb.address, --questdb or SWITCHYARD_QUESTDB)")
	}
	rules := append(cfg.AlarmRules(), alarm.SystemRules()...)
	spooled := a.writer != nil && cfg.QuestDB.SpoolDir != ""
	// The engine is only sent the samples it can act on: a poll of a channel
	// without alarms does not wake it.
	interest := alarm.NewInterest(rules)
	alarmSub := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless, Match: interest.Wants})
	eng, err := alarm.NewEngine(rules, alarmSub, mgr.WatchStatus(), alarm.Options{Logger: log, Registerer: reg, Sinks: sinks, Interest: interest})
	if err != nil {
		return nil, err
	}
	a.alarms = eng
	if err := a.root.Add(supervisor.ChildSpec{ID: "alarms", Service: eng, Shutdown: 5 * time.Second}); err != nil {
		return nil, err
	}
	if spooled {
		if err := a.root.Add(supervisor.ChildSpec{ID: "spool-monitor", Service: mon}); err != nil {
			return nil, err
		}
	}

	a.devSup = supervisor.New(devicesID, supervisor.Options{
		Strategy: supervisor.OneForOne,
		// A device process handles connection failures itself; only a crash (a
		// bug) restarts it. Many crashing devices in a short time mean a bug that
		// affects all of them: escalate.
		MaxRestarts: 10 + len(cfg.Devices), MaxTime: 10 * time.Second,
		Logger: log,
	})
	if err := a.root.Add(supervisor.ChildSpec{ID: devicesID, Service: a.devSup}); err != nil {
		return nil, err
	}

	web := dashboard.Handler() // the browser dashboard at / of the HTTP port
	if opts.Profiling {
		web = server.WithProfiling(web)
	}
	var archive server.Archive
	if a.writer != nil {
		h, err := ingest.NewHistory(cfg.QuestDB.Address, a.writer.Table())
		if err != nil {
			return nil, fmt.Errorf("questdb: %w", err)
		}
		h = h.WithWriter(a.writer)
		if a.wide != nil {
			h = h.WithWide(a.wide)
		}
		archive = h
	}
	sopts, err := apiOptions(cfg, log)
	if err != nil {
		return nil, err
	}
	sopts.Logger, sopts.Gatherer, sopts.Registerer = log, reg, reg
	sopts.WebHandler, sopts.Alarms, sopts.Archive = web, eng, archive
	if q.Address != "" {
		sink, err := audit.NewArchive(qdb, withRuntime(q.SideArchiveOptions(q.SideTable(audit.DefaultTable), auditSpool), log, reg))
		if err != nil {
			return nil, err
		}
		if err := a.root.Add(supervisor.ChildSpec{ID: "audit-archive", Service: sink, Shutdown: 30 * time.Second}); err != nil {
			return nil, err
		}
		sopts.Audit = sink
		if q.SpoolDir != "" {
			mon.Add("audit_archive", sink.SpoolStatus)
		}
	}
	a.api = server.New(a.hub, mgr, a.root, sopts)
	if err := a.api.Listen(); err != nil {
		return nil, err
	}
	if err := a.root.Add(supervisor.ChildSpec{ID: "api", Service: a.api, Shutdown: 15 * time.Second}); err != nil {
		return nil, err
	}
	return a, nil
}

// devicesID is the id of the dynamic device supervisor under the root.
const devicesID = "devices"

// Serve runs everything until ctx ends, then stops it in reverse order. Once the
// device supervisor runs, it adds every device to it as a dynamic child. A
// failure of the root (its restart intensity exceeded) is logged and returned.
func (a *app) Serve(ctx context.Context) error {
	events := a.root.Events(0)
	defer events.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- a.root.Serve(ctx)
		cancel() // ends the wait below if the root never got the devices running
	}()
	if a.waitDevicesRunning(ctx, events) {
		a.addDevices(ctx)
	}
	events.Close()
	err := <-done
	if cerr := a.api.Close(); cerr != nil {
		a.log.Warn("API ports not released cleanly", "err", cerr)
	}
	if err != nil {
		a.log.Error("supervision tree failed; stopping", "err", err)
	}
	return err
}

// waitDevicesRunning waits for the device supervisor's start event. It reports
// false if ctx ended first.
func (a *app) waitDevicesRunning(ctx context.Context, events *supervisor.Subscription) bool {
	path := a.root.Snapshot().ID + "/" + devicesID
	for {
		ev, err := events.Next(ctx)
		if err != nil {
			return false
		}
		if ev.Kind == supervisor.EventStarting && ev.Path == path {
			return true
		}
	}
}

// addDevices adds every configured device to the running device supervisor.
// Each Add starts the device at once; a device that cannot connect is still a
// running process (its state says why), so Add fails only on a duplicate name,
// which the configuration already refuses.
func (a *app) addDevices(ctx context.Context) {
	for _, d := range a.devices.Devices() {
		if ctx.Err() != nil {
			return
		}
		if err := a.devSup.Add(deviceSpec(d)); err != nil {
			a.log.Error("device not added to its supervisor", "device", d.Name(), "err", err)
		}
	}
}

// deviceSpec is how one device runs under the device supervisor: permanent,
// 5 s to stop (its socket closes as soon as its context ends), its connection
// state shown as the process's status in the tree.
func deviceSpec(d *devicemgr.Device) supervisor.ChildSpec {
	// The mailbox carries the device's commands: the supervisor fails queued
	// ones with ErrRestarted when it restarts the process (never replayed), and
	// the tree shows its depth and the command in progress.
	return supervisor.ChildSpec{ID: d.Name(), Service: d, Shutdown: 5 * time.Second, Mailbox: d.Mailbox()}
}

// Addrs returns the bound gRPC and HTTP addresses.
func (a *app) Addrs() (grpcAddr, httpAddr net.Addr) { return a.api.GRPCAddr(), a.api.HTTPAddr() }

// The side archives' spool directories under questdb.spool_dir.
const (
	eventsSpool = "events"
	alarmsSpool = "alarms"
	auditSpool  = "audit"
)

// withRuntime adds what an archive needs besides its configuration.
func withRuntime(opts ingest.Options, log *slog.Logger, reg prometheus.Registerer) ingest.Options {
	opts.Logger, opts.Registerer = log, reg
	return opts
}

// apiOptions translates the configuration's listen, auth, tls, http, limits
// and insecure sections into the server's options; it reads the tokens file.
func apiOptions(cfg *config.Config, log *slog.Logger) (server.Options, error) {
	l := cfg.Limits
	opts := server.Options{
		GRPCAddr: cfg.Listen.GRPC, HTTPAddr: cfg.Listen.HTTP,
		TLS:          server.TLS{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile, ClientCAFile: cfg.TLS.ClientCAFile},
		Insecure:     cfg.Insecure,
		AllowedHosts: cfg.HTTP.AllowedHosts, CORSOrigins: cfg.HTTP.CORSOrigins,
		Limits: server.Limits{
			StreamsPerConnection: l.StreamsPerConnection, StreamsPerIdentity: l.StreamsPerIdentity, Streams: l.Streams,
			CommandRate: l.CommandRate, CommandBurst: l.CommandBurst, CommandsPerDevice: l.CommandsPerDevice,
			MaxConnections: l.MaxConnections, ReservedDescriptors: l.ReservedDescriptors,
			BodyTimeout: time.Duration(l.BodyTimeout), MaxRequestBytes: l.MaxRequestBytes,
			SubscriberQueueBytes: l.SubscriberQueueBytes, StreamStallTimeout: time.Duration(l.StreamStallTimeout),
		},
		Auth: server.Auth{CertRoles: cfg.CertRoles()},
	}
	if cfg.Auth.TokensFile != "" {
		tokens, err := auth.LoadTokens(cfg.Auth.TokensFile, log)
		if err != nil {
			return opts, fmt.Errorf("auth.tokens_file: %w", err)
		}
		opts.Auth.Tokens = tokens
	}
	return opts, nil
}
