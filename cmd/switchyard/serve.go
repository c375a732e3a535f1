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
	// SIGHUP reloads the configuration (see config.Reloader).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	a, err := newApp(cfg, appOptions{Log: log, Profiling: *prof, ConfigPath: *path, Signals: hup})
	if err != nil {
		return err
	}
	g, h := a.Addrs()
	log.Info("switchyard serving", "devices", len(cfg.Devices), "grpc", g.String(), "http", h.String())
	return a.Serve(ctx)
}
