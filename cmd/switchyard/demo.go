package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"

	"github.com/switchyard/switchyard/config"
)

func cmdDemo(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	var sf simFlags
	sf.register(fs, 20, 4)
	qdb := fs.String("questdb", os.Getenv("SWITCHYARD_QUESTDB"), "QuestDB HTTP host:port to archive to (default $SWITCHYARD_QUESTDB; empty: no archiving)")
	grpcAddr := fs.String("grpc", "127.0.0.1:7400", "gRPC listen address")
	httpAddr := fs.String("http", "127.0.0.1:7480", "HTTP listen address (Connect, gRPC-Web, /healthz, /metrics)")
	cfgFile := fs.String("config", "", "serve this file's devices (such as examples/lab.yaml) against the examples fleet (implies --examples)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgFile != "" {
		sf.examples = true
	}
	fleet, err := sf.fleet()
	if err != nil {
		return err
	}
	cfg := demoConfig(fleet)
	if *cfgFile != "" {
		if cfg, err = config.Load(*cfgFile); err != nil {
			fleet.Close()
			return err
		}
	}
	cfg.Listen.GRPC, cfg.Listen.HTTP = *grpcAddr, *httpAddr
	cfg.QuestDB.Address = *qdb
	cfg.QuestDB.Table = "samples"
	a, err := newApp(cfg, appOptions{Log: log})
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

	// The instruments outlive the server: it stops first, so that its devices
	// report DISCONNECTED because they were stopped, not because the sim vanished.
	simCtx, stopSim := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var simErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		simErr = runFleet(simCtx, fleet, sf.control, log)
	}()
	appErr := a.Serve(ctx)
	stopSim()
	wg.Wait()
	return errors.Join(appErr, simErr)
}
