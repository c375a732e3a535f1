package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/bench"
)

// cmdBench runs benchmark scenarios with the simulator and the server as child
// processes of this binary, and prints one table (or CSV) of what they measured.
func cmdBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: switchyard bench [flags] SCENARIO...\n\nscenarios: %s, all\n\n", strings.Join(bench.Scenarios, ", "))
		fs.PrintDefaults()
	}
	var o bench.Options
	asCSV := fs.Bool("csv", false, "print the table as CSV")
	md := fs.Bool("markdown", false, "print the table as Markdown")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each measurement window (≥1m: soak mode, a progress CSV line every 10 s)")
	fs.DurationVar(&o.Warmup, "warmup", 3*time.Second, "load before each window opens")
	devices := fs.String("devices", "20,200,1000", "poll: device counts (D) to sweep, each measured against the floor")
	fs.IntVar(&o.FanoutDevices, "fanout-devices", 100, "fanout: polled devices streamed to every subscriber")
	fs.IntVar(&o.Channels, "channels", 4, "poll: channels per device (C), read in one round trip")
	fs.Float64Var(&o.Rate, "rate", 10, "poll: polls per second per device (R)")
	fs.IntVar(&o.Subscribers, "subscribers", 50, "fanout: subscribers (K), one of them slow")
	fs.IntVar(&o.PushDevices, "push-devices", 100, "push, archive: line-pushing devices")
	rates := fs.String("push-rates", "20000,40000,80000,160000,320000", "push: total samples/s to step through")
	fs.Float64Var(&o.ArchiveRate, "archive-rate", 40000, "archive: total samples/s offered")
	fs.IntVar(&o.ScaleDevices, "scale-devices", 10000, "scale: devices at 1 Hz")
	fs.IntVar(&o.ClusterDevices, "cluster-devices", 300, "cluster: devices (with --channels at --rate), on one node and on three")
	fs.StringVar(&o.QuestDB, "questdb", defaultQuestDB(), "archive: QuestDB HTTP address (default 127.0.0.1:$SWITCHYARD_QDB_HTTP_PORT, else :9000, as scripts/questdb starts it)")
	fs.StringVar(&o.QuestDBPidFile, "questdb-pidfile", defaultQuestDBPidFile(), "archive: file holding QuestDB's pid, to measure its CPU (scripts/questdb writes $SWITCHYARD_QDB_ROOT/questdb.pid)")
	layouts := fs.String("archive-layouts", "narrow,wide", "archive: archive layouts to measure")
	fs.StringVar(&o.ServerBinary, "server-binary", "", "run this switchyard binary as the server (default: this one), to compare two servers under one harness")
	fs.DurationVar(&o.BatchWindow, "batch-window", time.Millisecond, "Subscribe batch window asked for by every subscriber")
	fs.StringVar(&o.ProfileDir, "profile", "", "run the server with --pprof and save its CPU and allocation profiles of every window in this directory")
	fs.StringVar(&o.LogDir, "logs", "", "keep the simulator's and every server's log (stderr) in full in this directory (made if missing)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("name at least one scenario")
	}
	for i, f := range strings.Split(*rates, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil || v <= 0 {
			return fmt.Errorf("--push-rates[%d]: want a positive number, got %q", i, f)
		}
		o.PushRates = append(o.PushRates, v)
	}
	for i, f := range strings.Split(*devices, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || v <= 0 {
			return fmt.Errorf("--devices[%d]: want a positive whole number, got %q", i, f)
		}
		o.Devices = append(o.Devices, v)
	}
	for i, f := range strings.Split(*layouts, ",") {
		f = strings.TrimSpace(f)
		if f != "narrow" && f != "wide" {
			return fmt.Errorf("--archive-layouts[%d]: want narrow or wide, got %q", i, f)
		}
		o.ArchiveLayouts = append(o.ArchiveLayouts, f)
	}
	if o.LogDir != "" {
		if err := os.MkdirAll(o.LogDir, 0o755); err != nil {
			return fmt.Errorf("--logs: %w", err)
		}
	}
	bin, err := os.Executable()
	if err != nil {
		return err
	}
	o.Binary = bin
	if o.ServerBinary != "" {
		if o.ServerBinary, err = filepath.Abs(o.ServerBinary); err != nil {
			return err
		}
	}
	o.Progress = stderr
	results, runErr := bench.Run(ctx, fs.Args(), o)
	switch {
	case *asCSV:
		err = bench.WriteCSV(stdout, results)
	case *md:
		err = bench.WriteMarkdown(stdout, results)
	default:
		err = bench.WriteTable(stdout, results)
	}
	if runErr != nil {
		return runErr
	}
	return err
}

// defaultQuestDBPidFile is where scripts/questdb keeps the pid of the QuestDB
// it started: $SWITCHYARD_QDB_ROOT/questdb.pid, else .cache/questdb/questdb.pid
// under the working directory (the repository, for make bench).
func defaultQuestDBPidFile() string {
	root := os.Getenv("SWITCHYARD_QDB_ROOT")
	if root == "" {
		root = filepath.Join(".cache", "questdb")
	}
	return filepath.Join(root, "questdb.pid")
}

// defaultQuestDB is the address scripts/questdb serves QuestDB's HTTP port on.
func defaultQuestDB() string {
	port := os.Getenv("SWITCHYARD_QDB_HTTP_PORT")
	if port == "" {
		port = "9000"
	}
	return "127.0.0.1:" + port
}
