package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/audit"
	"github.com/switchyard/switchyard/auth"
	dashboard "github.com/switchyard/switchyard/clients/web"
	"github.com/switchyard/switchyard/cluster"
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
//	├── config         worker: reloads the configuration (SIGHUP, watch: true;
//	│                  ReloadConfig calls it too), only with a configuration file
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
//  5. config   - the reloader: from now on a reload applies a new configuration
//     as a diff (reload.go).
//  6. api      - the gRPC and HTTP servers.
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
	cluster *clusterSide // nil on a single node
	devices *devicemgr.Manager
	writer  *ingest.SampleWriter // nil without archiving
	wide    *ingest.WideWriter   // nil without devices archived in the wide layout
	filter  *ingest.Filter       // the sample archive's filter; nil without archiving
	wfilter *ingest.Filter       // the wide archive's filter; nil without it
	events  *ingest.EventWriter  // device events and reloads; nil without archiving
	alarms  *alarm.Engine
	api     *server.Server
	root    *supervisor.Supervisor
	devSup  *supervisor.Supervisor // the dynamic device supervisor
	config  *config.Reloader       // nil without a configuration file, and in a cluster
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
	// Node names this node in a cluster (overrides cluster.node).
	Node string
	// ConfigPath is the configuration file the server reloads (SIGHUP,
	// ReloadConfig, watch: true); empty: no reloads (the generated demo).
	ConfigPath string
	// LoadConfig reads the file on a reload. Default config.Load; the demo
	// adds its command-line settings.
	LoadConfig func(path string) (*config.Config, error)
	// Signals trigger a reload each (SIGHUP).
	Signals <-chan os.Signal
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
	if cfg.Cluster != nil {
		if a.cluster, err = newClusterSide(context.Background(), cfg, opts.Node, mgr, log); err != nil {
			return nil, err
		}
		log = a.cluster.log
		a.log = log
	}
	ok := false
	defer func() {
		if !ok && a.cluster != nil {
			a.cluster.nc.Close()
		}
	}()
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

	// In a cluster the archive takes what the cluster's archiver gives it (each
	// sample of every node once), not this node's hub.
	archiveHub := a.hub
	if a.cluster != nil {
		archiveHub = telemetry.NewHub(nil)
	}
	// The archives' spools as channels (switchyard/archive_spool_fill, ...),
	// archived and alarmed like any reading (alarm.SystemRules).
	mon := ingest.NewSpoolMonitor(a.hub.PublishNoWait, time.Second)
	q := cfg.QuestDB
	qdb := opts.Appender
	var sinks []alarm.Sink
	var alarmHistory *alarm.History
	var deviceHistory *ingest.DeviceHistory
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
		// Which devices are wide is settled at start (a reload that changes
		// it needs a restart, config.Diff.NeedsRestart).
		var narrowOnly func(*telemetry.Sample) bool
		if len(wide) > 0 {
			narrowOnly = func(s *telemetry.Sample) bool { return !wide[s.Device] }
		}
		sub := archiveHub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless, Match: narrowOnly})
		aopts := cfg.ArchiveOptions()
		if aopts.Filter == nil {
			aopts.Filter = ingest.NewFilter(nil) // a reload may give channels filters
		}
		a.filter = aopts.Filter
		w, err := ingest.NewSampleWriter(qdb, sub, withRuntime(aopts, log, reg))
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
		archived := []archivedWaiter{w}
		if len(wide) > 0 {
			wsub := archiveHub.Subscribe(telemetry.SubscribeOptions{Name: "archive_wide", Policy: telemetry.Lossless,
				Match: func(s *telemetry.Sample) bool { return wide[s.Device] }})
			wopts := cfg.WideArchiveOptions()
			if wopts.Filter == nil {
				wopts.Filter = ingest.NewFilter(nil)
			}
			a.wfilter = wopts.Filter // a Filter is its writer's own
			ww, err := ingest.NewWideWriter(qdb, wsub, withRuntime(wopts, log, reg))
			if err != nil {
				return nil, fmt.Errorf("questdb: %w", err)
			}
			a.wide = ww
			archived = append(archived, ww)
			if err := a.root.Add(supervisor.ChildSpec{ID: "archive-wide", Service: ww, Shutdown: 60 * time.Second}); err != nil {
				return nil, err
			}
		}
		if a.cluster != nil {
			arch := cluster.NewArchiver(a.cluster.c, archiveAppender{archiveHub, archived}, cluster.ArchiverOptions{Logger: log})
			a.cluster.archiver = arch
			if err := a.root.Add(supervisor.ChildSpec{ID: "cluster-archive", Service: arch, Shutdown: 10 * time.Second}); err != nil {
				return nil, err
			}
		}
		ew, err := ingest.NewEventWriter(qdb, withRuntime(q.SideArchiveOptions(q.EventsTable, eventsSpool), log, reg))
		if err != nil {
			return nil, fmt.Errorf("questdb.events_table: %w", err)
		}
		a.events = ew
		if err := a.root.Add(supervisor.ChildSpec{ID: "device-events-archive", Service: ew, Shutdown: 30 * time.Second}); err != nil {
			return nil, err
		}
		// Every change, not only each device's latest: a restart's STOPPED,
		// CONNECTING, CONNECTED come within milliseconds.
		de := ingest.NewDeviceEvents(mgr.WatchStatusEvery(deviceEventsQueue), ew)
		if err := a.root.Add(supervisor.ChildSpec{ID: "device-events", Service: de}); err != nil {
			return nil, err
		}
		if deviceHistory, err = ingest.NewDeviceHistory(q.Address, de); err != nil {
			return nil, err
		}
		sink, err := alarm.NewArchive(qdb, withRuntime(q.SideArchiveOptions(q.SideTable(alarm.DefaultEventsTable), alarmsSpool), log, reg))
		if err != nil {
			return nil, err
		}
		if alarmHistory, err = alarm.NewHistory(q.Address, sink); err != nil {
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
	var saver *alarmSaver
	if a.cluster != nil {
		// Alarm state (condition, latch, acknowledgement, shelf) into the
		// cluster, so the device's next owner goes on from it.
		saver = newAlarmSaver(a.cluster.c.Alarms(), a.cluster.pub, a.cluster.isOwned, a.cluster.cfg.Node, log)
		a.cluster.saver = saver
		sinks = append(sinks, saver)
		if err := a.root.Add(supervisor.ChildSpec{ID: "cluster-alarms", Service: saver, Shutdown: 5 * time.Second}); err != nil {
			return nil, err
		}
	}
	rules := alarmRules(cfg)
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
	switch {
	case opts.ConfigPath != "" && a.cluster != nil:
		log.Warn("configuration reloads are not available on a cluster node yet: restart the nodes to change the configuration")
	case opts.ConfigPath != "":
		// Reloads (SIGHUP, a change of the file, ReloadConfig), after the devices.
		a.config = config.NewReloader(opts.ConfigPath, cfg, a.apply, config.ReloaderOptions{
			Load: opts.LoadConfig, Record: a.recordReload, Signals: opts.Signals, Logger: log,
		})
		if err := a.root.Add(supervisor.ChildSpec{ID: "config", Service: a.config}); err != nil {
			return nil, err
		}
	}
	var apiHub = a.hub
	var apiDevices server.Devices = managerDevices{mgr}
	var apiCluster server.Cluster
	if a.cluster != nil {
		apiHub, apiDevices, apiCluster = a.cluster.viewHub, a.cluster.devices, a.cluster
	}

	web := dashboard.Handler() // the browser dashboard at / of the HTTP port
	if opts.Profiling {
		web = server.WithProfiling(web)
	}
	var archive server.Archive
	var hist *ingest.History
	if a.writer != nil {
		if hist, err = ingest.NewHistory(cfg.QuestDB.Address, a.writer.Table()); err != nil {
			return nil, fmt.Errorf("questdb: %w", err)
		}
		if a.wide != nil {
			hist = hist.WithWideTable(a.wide.Table())
		}
		h := hist.WithWriter(a.writer)
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
	sopts.WebHandler, sopts.Alarms, sopts.Archive, sopts.Cluster = web, eng, archive, apiCluster
	// The watches replay what was archived (since_ns). Not in a cluster: each
	// node archives its own engine's transitions and its own devices' states,
	// while a watch follows the whole cluster; its replay_end says there is no
	// replay, and clients report what a break cost.
	if alarmHistory != nil && a.cluster == nil {
		sopts.AlarmArchive, sopts.DeviceArchive = alarmHistory, deviceHistory
	}
	if a.cluster != nil {
		// A replay (since_ns) comes from the cluster's stream, which holds
		// every sample this node's API has shown, archived or not; QuestDB
		// serves what is older than the stream.
		a.cluster.reader = cluster.NewReader(a.cluster.c, newArchiveHistory(hist))
		sopts.Replay = a.cluster
		// Alarms of every device, whichever node owns it.
		a.cluster.alarms = newClusterAlarms(eng, a.cluster, cfg.DeviceRefs(), log)
		sopts.Alarms = a.cluster.alarms
	}
	if a.config != nil {
		sopts.Config = a.config
	}
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
	a.api = server.New(apiHub, apiDevices, a.root, sopts)
	if err := a.api.Listen(); err != nil {
		return nil, err
	}
	if a.cluster != nil {
		if err := a.addCluster(cfg); err != nil {
			return nil, err
		}
		reg.MustRegister(newClusterCollector(a.cluster))
	}
	if err := a.root.Add(supervisor.ChildSpec{ID: "api", Service: a.api, Shutdown: 15 * time.Second}); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// managerDevices is the device manager as the API's devices on a single
// node (a cluster node's are clusterDevices).
type managerDevices struct{ *devicemgr.Manager }

// Abort implements server.Devices: the request's caller matters only to a
// cluster node, which takes it to the device's owner.
func (m managerDevices) Abort(_ context.Context, device, reason string) (string, error) {
	return m.Manager.Abort(device, reason)
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
	if a.cluster == nil && a.waitDevicesRunning(ctx, events) {
		a.addDevices(ctx) // in a cluster, cluster-node adds the devices this node wins
	}
	events.Close()
	err := <-done
	if cerr := a.api.Close(); cerr != nil {
		a.log.Warn("API ports not released cleanly", "err", cerr)
	}
	if err != nil {
		a.log.Error("supervision tree failed; stopping", "err", err)
	}
	if a.cluster != nil {
		a.cluster.nc.Close()
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

// addDevices hands every configured device to the running device supervisor
// (devicemgr.Manager.Start). Each Add starts the device at once; a device that
// cannot connect is still a running process (its state says why), so Add
// fails only on a duplicate name, which the configuration already refuses.
// Devices added by a reload later go the same way.
func (a *app) addDevices(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if err := a.devices.Start(a.devSup); err != nil {
		a.log.Error("devices not added to their supervisor", "err", err)
	}
}

// Addrs returns the bound gRPC and HTTP addresses.
func (a *app) Addrs() (grpcAddr, httpAddr net.Addr) { return a.api.GRPCAddr(), a.api.HTTPAddr() }

// deviceEventsQueue bounds the device-event archive's watch: changes it has
// not yet taken (past it the oldest are dropped, counted and archived as a
// "squashed" event).
const deviceEventsQueue = 65536

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
