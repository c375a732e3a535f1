package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// app is a wired Switchyard: the telemetry hub, the device manager, the archive
// writer and the API servers under one root supervisor.
//
// Start order (the root supervisor starts children in order, each after the one
// before it is ready):
//
//  1. archive  - the QuestDB writer; its hub subscription exists before any device
//     publishes, so it sees every sample from the first one on. Then the device
//     events writer and its feed (the state watch exists before any device starts).
//  2. devices  - a one_for_one supervisor with one process per instrument.
//  3. api      - the gRPC and HTTP servers.
//
// Shutdown is the reverse: the API ends its streams and stops accepting; the
// devices stop (publishing DISCONNECTED for their channels); last, the archive
// writer drains everything that was published and flushes it to QuestDB.
type app struct {
	hub     *telemetry.Hub
	devices *devicemgr.Manager
	writer  *ingest.Writer // nil without archiving
	api     *server.Server
	root    *supervisor.Supervisor
}

type appOptions struct {
	Log *slog.Logger
	// Registry for all metrics; a new one when nil.
	Registry *prometheus.Registry
}

func newApp(cfg *config.Config, opts appOptions) (*app, error) {
	log := opts.Log
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	a := &app{hub: telemetry.NewHub(reg)}
	mgr, err := devicemgr.New(cfg.Specs(), a.hub, devicemgr.Options{Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	a.devices = mgr
	a.root = supervisor.New("switchyard", supervisor.Options{
		Strategy: supervisor.OneForOne, MaxRestarts: 5, MaxTime: 30 * time.Second, Logger: log,
	})

	if cfg.QuestDB.Address != "" {
		sub := a.hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
		q := cfg.QuestDB
		w, err := ingest.NewWriter(q.Address, sub, ingest.Options{Table: q.Table, Logger: log, Registerer: reg,
			SpoolDir: q.SpoolDir, SpoolNoFsync: q.SpoolFsync != nil && !*q.SpoolFsync, SpoolMaxBytes: q.SpoolMaxBytes,
			DeadLetterPath: q.DeadLetter, Filter: archiveFilter(cfg)})
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
		if err := addDeviceEvents(a.root, mgr, cfg, log, reg); err != nil {
			return nil, err
		}
	} else {
		log.Warn("no QuestDB address configured: samples are NOT archived (set questdb.address, --questdb or SWITCHYARD_QUESTDB)")
	}

	devSup := supervisor.New("devices", supervisor.Options{
		Strategy: supervisor.OneForOne,
		// A device process handles connection failures itself; only a crash (a
		// bug) restarts it. Many crashing devices in a short time mean a bug that
		// affects all of them: escalate.
		MaxRestarts: 10 + len(cfg.Devices), MaxTime: 10 * time.Second,
		Logger: log,
	})
	for _, d := range mgr.Devices() {
		if err := devSup.Add(supervisor.ChildSpec{ID: d.Name(), Service: d, Shutdown: 5 * time.Second}); err != nil {
			return nil, err
		}
	}
	if err := a.root.Add(supervisor.ChildSpec{ID: "devices", Service: devSup}); err != nil {
		return nil, err
	}

	var archive server.Archive
	if a.writer != nil {
		h, err := ingest.NewHistory(cfg.QuestDB.Address, cfg.QuestDB.Table)
		if err != nil {
			return nil, fmt.Errorf("questdb: %w", err)
		}
		archive = h.WithWriter(a.writer)
	}
	a.api = server.New(a.hub, mgr, a.root, server.Options{
		GRPCAddr: cfg.Listen.GRPC, HTTPAddr: cfg.Listen.HTTP, Logger: log, Gatherer: reg, Registerer: reg,
		Archive: archive,
	})
	if err := a.api.Listen(); err != nil {
		return nil, err
	}
	if err := a.root.Add(supervisor.ChildSpec{ID: "api", Service: a.api, Shutdown: 15 * time.Second}); err != nil {
		return nil, err
	}
	return a, nil
}

// Serve runs everything until ctx ends, then stops it in reverse order.
func (a *app) Serve(ctx context.Context) error { return a.root.Serve(ctx) }

// Addrs returns the bound gRPC and HTTP addresses.
func (a *app) Addrs() (grpcAddr, httpAddr net.Addr) { return a.api.GRPCAddr(), a.api.HTTPAddr() }

// archiveFilter collects the channels' archive deadbands and heartbeats; nil when
// no channel has one.
func archiveFilter(cfg *config.Config) *ingest.Filter {
	specs := map[string]ingest.ChannelFilter{}
	for _, d := range cfg.Devices {
		for _, ch := range d.Channels {
			if ch.ArchiveDeadband > 0 || ch.ArchiveHeartbeat > 0 {
				specs[d.Name+"/"+ch.Name] = ingest.ChannelFilter{
					Deadband: ch.ArchiveDeadband, Relative: ch.ArchiveRelative, Heartbeat: time.Duration(ch.ArchiveHeartbeat),
				}
			}
		}
	}
	if len(specs) == 0 {
		return nil
	}
	return ingest.NewFilter(specs)
}

// addDeviceEvents archives device state changes into questdb.events_table: an
// EventWriter (spool in spool_dir/events) and the feed from the device manager,
// whose watch exists before any device starts.
func addDeviceEvents(root *supervisor.Supervisor, mgr *devicemgr.Manager, cfg *config.Config, log *slog.Logger, reg prometheus.Registerer) error {
	q := cfg.QuestDB
	opts := ingest.Options{Table: q.EventsTable, Logger: log, Registerer: reg,
		SpoolNoFsync: q.SpoolFsync != nil && !*q.SpoolFsync, SpoolMaxBytes: q.SpoolMaxBytes}
	if q.SpoolDir != "" {
		opts.SpoolDir = filepath.Join(q.SpoolDir, "events")
	}
	ew, err := ingest.NewEventWriter(q.Address, opts)
	if err != nil {
		return fmt.Errorf("questdb.events_table: %w", err)
	}
	if err := root.Add(supervisor.ChildSpec{ID: "device-events-archive", Service: ew, Shutdown: 30 * time.Second}); err != nil {
		return err
	}
	return root.Add(supervisor.ChildSpec{ID: "device-events", Service: ingest.NewDeviceEvents(mgr.WatchStates(), ew)})
}
