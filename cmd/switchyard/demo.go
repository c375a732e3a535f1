package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"gopkg.in/yaml.v3"

	"github.com/switchyard/switchyard/config"
)

func cmdDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var sf simFlags
	sf.register(fs, 20, 4, "psu-19")
	qdb := fs.String("questdb", os.Getenv("SWITCHYARD_QUESTDB"), "QuestDB HTTP host:port to archive to (default $SWITCHYARD_QUESTDB; empty: no archiving)")
	grpcAddr := fs.String("grpc", "127.0.0.1:7400", "gRPC listen address")
	httpAddr := fs.String("http", "127.0.0.1:7480", "HTTP listen address (the dashboard at /, Connect, gRPC-Web, /healthz, /metrics)")
	spool := fs.String("spool", "", "durable spool directory between the hub and QuestDB (empty: none; samples not yet in QuestDB are lost on a crash)")
	cfgFile := fs.String("config", "", "serve this file's devices (such as examples/lab.yaml) against the examples fleet (implies --examples)")
	nodes := fs.Int("cluster", 0, "run N node processes sharing the fleet over an embedded NATS JetStream (node k: gRPC 7400+k-1, HTTP 7480+k-1)")
	clusterDir := fs.String("cluster-dir", "", "where the cluster demo keeps NATS's store, the nodes' configurations and logs (default: a new temporary directory)")
	tokens := fs.String("tokens", "", "turn authentication on with this tokens file (switchyard token new makes entries); default: off, loopback only")
	layout := fs.String("archive-layout", "", "archive layout of every device: narrow (a row per sample) or wide (a row per reading, a column per channel); default narrow")
	cfgOut := fs.String("config-out", "", "write the demo's configuration to this file (watch: true) and serve it from there: edit the file and the server reloads it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgFile != "" && *cfgOut != "" {
		return errors.New("--config and --config-out: give one of them")
	}
	if *layout != "" && *layout != config.LayoutNarrow && *layout != config.LayoutWide {
		return fmt.Errorf("--archive-layout: want %s or %s, got %q", config.LayoutNarrow, config.LayoutWide, *layout)
	}
	if *nodes > 0 {
		if *cfgFile != "" || *cfgOut != "" {
			return errors.New("--cluster goes with neither --config nor --config-out")
		}
		fleet, err := sf.fleet()
		if err != nil {
			return err
		}
		dir := *clusterDir
		if dir == "" {
			if dir, err = os.MkdirTemp("", "switchyard-cluster-"); err != nil {
				fleet.Close()
				return err
			}
		}
		host, gport, err := splitPort(*grpcAddr)
		if err != nil {
			fleet.Close()
			return fmt.Errorf("--grpc: %w", err)
		}
		_, hport, err := splitPort(*httpAddr)
		if err != nil {
			fleet.Close()
			return fmt.Errorf("--http: %w", err)
		}
		d := &clusterDemo{n: *nodes, dir: dir, grpcHost: host, grpcBase: gport, httpBase: hport,
			questdb: *qdb, spool: *spool, layout: *layout, stdout: stdout, log: log}
		return d.run(ctx, fleet, sf.control)
	}
	if *cfgFile != "" {
		sf.examples = true
	}
	fleet, err := sf.fleet()
	if err != nil {
		return err
	}
	// The command line's settings go on top of the configuration, also of
	// one reloaded from --config.
	overrides := func(cfg *config.Config) {
		cfg.Listen.GRPC, cfg.Listen.HTTP = *grpcAddr, *httpAddr
		cfg.QuestDB.Address = *qdb
		cfg.QuestDB.Table = "samples"
		cfg.QuestDB.SpoolDir = *spool
		cfg.QuestDB.Layout = *layout
		if *tokens != "" {
			cfg.Auth.TokensFile, _ = filepath.Abs(*tokens) // --config-out's file may be elsewhere
		}
	}
	opts := appOptions{Log: log}
	cfg := demoConfig(fleet)
	overrides(cfg)
	if err := cfg.CheckArchiveLayouts(); err != nil {
		fleet.Close()
		return fmt.Errorf("--archive-layout: %w", err)
	}
	if drifting := driftDevice(fleet); *cfgFile == "" && drifting != "" {
		if err := fleet.Instrument(drifting).SetSweep(&demoSweep); err != nil {
			fleet.Close()
			return err
		}
	}
	switch {
	case *cfgFile != "":
		opts.ConfigPath = *cfgFile
		opts.LoadConfig = func(path string) (*config.Config, error) {
			c, err := config.Load(path)
			if err == nil {
				overrides(c)
				err = c.CheckArchiveLayouts()
			}
			return c, err
		}
		if cfg, err = opts.LoadConfig(*cfgFile); err != nil {
			fleet.Close()
			return err
		}
	case *cfgOut != "":
		cfg.Watch = true
		if cfg, err = writeConfig(*cfgOut, cfg); err != nil {
			fleet.Close()
			return err
		}
		opts.ConfigPath = *cfgOut
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	opts.Signals = hup
	a, err := newApp(cfg, opts)
	if err != nil {
		fleet.Close()
		return err
	}
	g, h := a.Addrs()
	fmt.Fprintf(stdout, "switchyard demo: %d simulated instruments; gRPC on %s, HTTP on %s", len(cfg.Devices), g, h)
	if *qdb != "" {
		fmt.Fprintf(stdout, ", archiving to QuestDB at %s", *qdb)
	} else {
		fmt.Fprint(stdout, ", not archiving (no --questdb)")
	}
	fmt.Fprintln(stdout)
	fmt.Fprintf(stdout, "dashboard: http://%s/\n", h)
	if *cfgOut != "" && sf.control != "" {
		fmt.Fprintf(stdout, "configuration in %s (watch: true): edit it and the server reloads it; add an instrument with\n"+
			"  curl -X POST -d '{\"name\": \"psu-99\", \"kind\": \"scpi\"}' http://%s/instruments\n", *cfgOut, sf.control)
	}
	printAuthHint(stdout, cfg, g.String())

	// The instruments outlive the server: it stops first, so that its devices
	// report DISCONNECTED because they were stopped, not because the sim vanished.
	simCtx, stopSim := context.WithCancel(context.Background())
	simErr := make(chan error, 1)
	go func() { simErr <- runFleet(simCtx, fleet, sf.control, log) }()
	appErr := a.Serve(ctx)
	stopSim()
	return errors.Join(appErr, <-simErr)
}

// writeConfig writes cfg to path as YAML and loads it back from there, as the
// server will reload it (checked, with its hash).
func writeConfig(path string, cfg *config.Config) (*config.Config, error) {
	data, err := yaml.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return nil, err
	}
	return config.Load(path)
}

// splitPort splits host:port with a numeric port.
func splitPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

// printAuthHint tells the demo's user how callers identify themselves.
func printAuthHint(w io.Writer, cfg *config.Config, grpcAddr string) {
	if cfg.AuthOn() {
		fmt.Fprintf(w, "authentication is on (%s): send a token from it, e.g.\n"+
			"  grpcurl -plaintext -H 'authorization: Bearer TOKEN' %s switchyard.v1.DeviceService/ListDevices\n"+
			"  SWITCHYARD_TOKEN=TOKEN switchyard devices\n", cfg.Auth.TokensFile, grpcAddr)
		return
	}
	fmt.Fprintf(w, "authentication is off (loopback only; every caller is admin). To turn it on:\n"+
		"  switchyard token new --name alice --role operator   # first line: the token; then its entry\n"+
		"  (put the entry under tokens: in tokens.yaml, then restart with --tokens tokens.yaml)\n"+
		"  grpcurl -plaintext -H 'authorization: Bearer TOKEN' %s switchyard.v1.DeviceService/ListDevices\n", grpcAddr)
}
