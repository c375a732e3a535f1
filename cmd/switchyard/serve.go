package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"

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
	cfg, err := config.Load(*path)
	if err != nil {
		return err
	}
	for _, w := range cfg.Warnings {
		log.Warn("configuration: " + w)
	}
	if *grpcAddr != "" {
		cfg.Listen.GRPC = *grpcAddr
	}
	if *httpAddr != "" {
		cfg.Listen.HTTP = *httpAddr
	}
	a, err := newApp(cfg, appOptions{Log: log, Profiling: *prof, Node: *node})
	if err != nil {
		return err
	}
	g, h := a.Addrs()
	log.Info("switchyard serving", "devices", len(cfg.Devices), "grpc", g.String(), "http", h.String())
	return a.Serve(ctx)
}
