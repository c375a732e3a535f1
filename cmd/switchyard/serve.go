package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/switchyard/switchyard/config"
)

func cmdServe(ctx context.Context, args []string, log *slog.Logger) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "", "configuration file (YAML)")
	prof := fs.Bool("pprof", false, "serve Go runtime profiles at /debug/pprof/ on the HTTP port")
	node := fs.String("node", os.Getenv("SWITCHYARD_NODE"), "this node's name in a cluster (overrides cluster.node; default $SWITCHYARD_NODE)")
	grpcAddr := fs.String("grpc", "", "gRPC listen address (overrides listen.grpc)")
	httpAddr := fs.String("http", "", "HTTP listen address (overrides listen.http)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *path == "" {
		return errors.New("--config FILE is required")
	}
	// The command line's addresses go on top of the file, also of a reloaded one.
	load := func(p string) (*config.Config, error) {
		cfg, err := config.Load(p)
		if err != nil {
			return nil, err
		}
		if *grpcAddr != "" {
			cfg.Listen.GRPC = *grpcAddr
		}
		if *httpAddr != "" {
			cfg.Listen.HTTP = *httpAddr
		}
		return cfg, nil
	}
	cfg, err := load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	// SIGHUP reloads the configuration (see config.Reloader).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := newApp(cfg, appOptions{Log: log, Profiling: *prof, Node: *node, ConfigPath: *path, LoadConfig: load, Signals: hup})
	if err != nil {
		return err
	}
	g, h := a.Addrs()
	log.Info("switchyard serving", "devices", len(cfg.Devices), "grpc", g.String(), "http", h.String())
	return a.Serve(ctx)
}
