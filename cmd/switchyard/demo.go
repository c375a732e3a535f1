package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
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
	tokens := fs.String("tokens", "", "turn authentication on with this tokens file (switchyard token new makes entries); default: off, loopback only")
	layout := fs.String("archive-layout", "", "archive layout of every device: narrow (a row per sample) or wide (a row per reading, a column per channel); default narrow")
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
	cfg.QuestDB.SpoolDir = *spool
	cfg.QuestDB.Layout = *layout
	if err := cfg.CheckArchiveLayouts(); err != nil {
		fleet.Close()
		return fmt.Errorf("--archive-layout: %w", err)
	}
	if *tokens != "" {
		cfg.Auth.TokensFile = *tokens
	}
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
	fmt.Fprintf(stdout, "dashboard: http://%s/\n", h)
	printAuthHint(stdout, cfg, g.String())

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
	if drifting := driftDevice(fleet); *cfgFile == "" && drifting != "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			driftSetPoint(simCtx, a.devices, drifting, log)
		}()
	}
	appErr := a.Serve(ctx)
	stopSim()
	wg.Wait()
	return errors.Join(appErr, simErr)
}

// driftPeriod is the period of the demo's set-point sweep.
const driftPeriod = 80 * time.Second

// driftSetPoint sweeps a power supply's set-point between 1 and 19 V (a sine of
// period driftPeriod, a step every 2 s), so its voltage crosses every alarm limit
// of demoAlarms and the alarms fire and clear. It stops when ctx ends.
func driftSetPoint(ctx context.Context, devices *devicemgr.Manager, device string, log *slog.Logger) {
	if _, err := devices.Get(device); err != nil {
		return // no such instrument in this fleet
	}
	start := time.Now()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		t := time.Since(start).Seconds()
		v := 10 - 9*math.Cos(2*math.Pi*t/driftPeriod.Seconds())
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := devices.Send(cctx, device, devicemgr.Command{Name: "set_voltage", Args: []string{strconv.FormatFloat(v, 'f', 2, 64)}})
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Debug("demo drift: set_voltage failed", "device", device, "err", err)
		}
	}
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
