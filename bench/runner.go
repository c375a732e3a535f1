package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// Scenarios lists every scenario. `switchyard bench all` runs them in this order
// except floor, which poll already runs beside its own figures.
var Scenarios = []string{"poll", "floor", "command", "fanout", "push", "archive", "scale", "cluster"}

// Options configure a run. The zero value of every field but Binary selects the
// default noted beside it.
type Options struct {
	// Binary is the switchyard executable run as the simulator and the server.
	// Required.
	Binary string
	// ServerBinary, when set, is run as the server instead of Binary (the
	// simulator and the harness stay the same): one harness measures an older
	// and a newer server alternately. Default Binary.
	ServerBinary string
	// Duration is each measurement window. Default 10s. From 1 minute on, progress
	// lines come every 10 s instead of every 2 s (soak mode).
	Duration time.Duration
	// Warmup runs load before each window opens. Default 3s.
	Warmup time.Duration
	// Devices lists the device counts the poll and floor scenarios sweep, each
	// measured against the floor at the same size. Default 20, 200, 1000.
	Devices []int
	// Channels and Rate shape every polled device (poll, floor, fanout, and the
	// command scenario's background load). Defaults 4, 10 Hz.
	Channels int
	Rate     float64
	// FanoutDevices is the number of polled devices the fanout scenario streams.
	// Default 100.
	FanoutDevices int
	// Subscribers is the fanout scenario's K. Default 50.
	Subscribers int
	// PushDevices is the number of line pushers in push and archive. Default 100.
	PushDevices int
	// PushRates are the total sample rates push steps through until the server no
	// longer keeps up. Default 20k, 40k, 80k, 160k, 320k samples/s.
	PushRates []float64
	// ArchiveRate is the total sample rate offered in archive. Default 40,000/s.
	ArchiveRate float64
	// ScaleDevices is the scale scenario's device count (at 1 Hz). Default 10,000.
	ScaleDevices int
	// ClusterDevices is the cluster scenario's device count (with Channels at
	// Rate). Default 300.
	ClusterDevices int
	// QuestDB is the QuestDB HTTP address for archive. Default 127.0.0.1:9000.
	QuestDB string
	// QuestDBPidFile names the file holding the pid of that QuestDB (scripts/questdb
	// writes one), so that archive can measure QuestDB's CPU beside the server's.
	// Default none: QuestDB's CPU is not measured (the rows say so).
	QuestDBPidFile string
	// ArchiveLayouts are the archive layouts the archive scenario measures
	// (questdb.layout: "narrow", "wide"). Default both.
	ArchiveLayouts []string
	// BatchWindow is the Subscribe batching window asked for by every subscriber.
	// Default 1ms (the server's own default is 50 ms, which would dominate latency).
	BatchWindow time.Duration
	// Progress receives progress lines while a scenario runs. Default io.Discard.
	Progress io.Writer
	// ProfileDir, when set, runs the server with --pprof and saves a CPU profile of
	// every measurement window and an allocation profile at its end there
	// (<scenario>-<n>-cpu.pprof, <scenario>-<n>-allocs.pprof). Default none.
	ProfileDir string
	// LogDir, when set, keeps the whole stderr (the log) of every child process
	// in this directory, which must exist: sim.log, server-<n>.log, and the
	// cluster scenario's nodes as cluster-n1.log… Default none (the harness
	// keeps the last lines for its error messages only).
	LogDir string
	// Dir holds the generated server configurations. Default a new temp directory,
	// removed at the end.
	Dir string
}

func (o *Options) setDefaults() {
	def := func(p *int, v int) {
		if *p <= 0 {
			*p = v
		}
	}
	if o.Duration <= 0 {
		o.Duration = 10 * time.Second
	}
	if o.Warmup <= 0 {
		o.Warmup = 3 * time.Second
	}
	if len(o.Devices) == 0 {
		o.Devices = []int{20, 200, 1000}
	}
	def(&o.Channels, 4)
	def(&o.FanoutDevices, 100)
	if o.Rate <= 0 {
		o.Rate = 10
	}
	def(&o.Subscribers, 50)
	def(&o.PushDevices, 100)
	if len(o.PushRates) == 0 {
		o.PushRates = []float64{20e3, 40e3, 80e3, 160e3, 320e3}
	}
	if o.ArchiveRate <= 0 {
		o.ArchiveRate = 40e3
	}
	def(&o.ScaleDevices, 10000)
	def(&o.ClusterDevices, 300)
	if o.QuestDB == "" {
		o.QuestDB = "127.0.0.1:9000"
	}
	if len(o.ArchiveLayouts) == 0 {
		o.ArchiveLayouts = []string{"narrow", "wide"}
	}
	if o.ServerBinary == "" {
		o.ServerBinary = o.Binary
	}
	if o.BatchWindow <= 0 {
		o.BatchWindow = time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
}

// Runner runs scenarios with one set of Options.
type Runner struct {
	opts  Options
	dir   string
	nconf int
	nprof int
}

// Run runs the named scenarios ("all" for every one) in order and returns their
// rows. A scenario that fails adds a row whose note holds the error, and the run
// goes on with the next one; the returned error joins the failures.
func Run(ctx context.Context, scenarios []string, opts Options) ([]Result, error) {
	if opts.Binary == "" {
		return nil, fmt.Errorf("bench: Options.Binary is required")
	}
	opts.setDefaults()
	for _, n := range opts.Devices {
		if n <= 0 {
			return nil, fmt.Errorf("bench: device counts must be positive, got %d", n)
		}
	}
	var names []string
	for _, s := range scenarios {
		if s == "all" {
			for _, n := range Scenarios {
				if n != "floor" {
					names = append(names, n)
				}
			}
			continue
		}
		if !slices.Contains(Scenarios, s) {
			return nil, fmt.Errorf("bench: unknown scenario %q (want one of %s or all)", s, strings.Join(Scenarios, ", "))
		}
		names = append(names, s)
	}
	r := &Runner{opts: opts, dir: opts.Dir}
	if r.dir == "" {
		d, err := os.MkdirTemp("", "switchyard-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		r.dir = d
	}
	var results []Result
	var errs []string
	for _, name := range names {
		r.progress("== %s", name)
		rows, err := r.run(ctx, name)
		results = append(results, rows...)
		if err != nil {
			row := newResult(name, "error")
			row.Note = err.Error()
			results = append(results, row)
			errs = append(errs, name+": "+err.Error())
			r.progress("%s failed: %v", name, err)
		}
		if ctx.Err() != nil {
			break
		}
	}
	if len(errs) > 0 {
		return results, fmt.Errorf("bench: %s", strings.Join(errs, "; "))
	}
	return results, nil
}

func (r *Runner) run(ctx context.Context, name string) ([]Result, error) {
	switch name {
	case "poll", "floor":
		return r.poll(ctx, name == "floor")
	case "command":
		return r.command(ctx)
	case "fanout":
		return r.fanout(ctx)
	case "push":
		return r.push(ctx)
	case "archive":
		return r.archive(ctx)
	case "scale":
		return r.scale(ctx)
	case "cluster":
		return r.clusterScenario(ctx)
	}
	return nil, fmt.Errorf("unknown scenario %q", name)
}

// progress prints one progress line.
func (r *Runner) progress(format string, args ...any) {
	fmt.Fprintf(r.opts.Progress, "bench %s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
