package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
)

// Targets of the issues, checked in the notes (never in a test).
const (
	targetPollP99      = 10 * time.Millisecond
	targetScaleRSS     = 1 << 30
	targetArchiveRatio = 0.8
	targetFanoutChange = 0.10
)

// targetFloorRatio is the most server CPU per polled sample, as a multiple of
// the bare poller's at the same size, that meets the target: 2× below 200
// devices (a fixed cost per poll weighs most there), 1.3× from 200 on.
func targetFloorRatio(devices int) float64 {
	if devices < 200 {
		return 2
	}
	return 1.3
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// poll sweeps the device counts of Options.Devices: at each size, D×C×R
// against the server (first with no subscriber: the poll's own cost, compared
// with the floor; then with one subscriber of every sample: latency and the
// cost of streaming), then the bare floor poller against the same simulator.
// floorOnly skips the server.
func (r *Runner) poll(ctx context.Context, floorOnly bool) ([]Result, error) {
	var rows []Result
	for _, n := range r.opts.Devices {
		got, err := r.pollSize(ctx, n, floorOnly)
		rows = append(rows, got...)
		if err != nil {
			return rows, err
		}
	}
	return rows, nil
}

func (r *Runner) pollSize(ctx context.Context, devices int, floorOnly bool) ([]Result, error) {
	o := r.opts
	period := time.Duration(float64(time.Second) / o.Rate)
	sim, err := r.startSim(ctx, devices, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	chans := pollChannels(o.Channels, period)
	label := fmt.Sprintf("%d×%d@%gHz", devices, o.Channels, o.Rate)
	scenario := "poll"
	if floorOnly {
		scenario = "floor"
	}
	var rows []Result
	if !floorOnly {
		cfg, err := serverConfig(sim.instruments, chans, "", "")
		if err != nil {
			return nil, err
		}
		rows, err = r.pollServer(ctx, label, cfg, period)
		if err != nil {
			return rows, err
		}
	}
	fl, err := r.floor(ctx, sim.instruments, joinedQuery(chans), len(chans), period, 0)
	if err != nil {
		return rows, err
	}
	fl.Scenario, fl.Case = scenario, "floor "+label
	slots := devicemgr.PollSlots(period, devices)
	grouped, err := r.floor(ctx, sim.instruments, joinedQuery(chans), len(chans), period, slots)
	if err != nil {
		return append(rows, fl), err
	}
	grouped.Scenario, grouped.Case = scenario, "floor, grouped "+label
	grouped.Note = fmt.Sprintf("the floor poller woken as the server wakes its devices (%d slots per period, one timer); ", slots) + grouped.Note
	if len(rows) == 2 && fl.CPUPerSample > 0 && rows[0].CPUPerSample > 0 {
		ratio := float64(rows[0].CPUPerSample) / float64(fl.CPUPerSample)
		target := targetFloorRatio(devices)
		rows[0].Note = fmt.Sprintf("cpu %.2f× floor (target ≤%.1f: %s), %.2f× the grouped floor; no subscriber",
			ratio, target, verdict(ratio <= target), float64(rows[0].CPUPerSample)/float64(max(1, grouped.CPUPerSample)))
	}
	return append(rows, fl, grouped), nil
}

// pollServer measures one server on cfg twice: with no subscriber (the poll's
// own cost: the row compared with the floor) and with one subscriber of every
// sample (latency device → subscriber, and what streaming adds).
func (r *Runner) pollServer(ctx context.Context, label string, cfg *config.Config, period time.Duration) ([]Result, error) {
	srv, err := r.startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop(60 * time.Second)
	if err := sleep(ctx, r.opts.Warmup); err != nil {
		return nil, err
	}
	w, err := r.measure(ctx, "poll", srv, nil)
	if err != nil {
		return nil, err
	}
	bare := w.row("poll", "switchyard "+label, subStats{})
	bare.Rate = w.published / w.seconds()
	bare.Drops, bare.Squashed = -1, -1
	bare.Note = "no subscriber"

	sub, err := subscribe(ctx, srv.grpc, r.opts.BatchWindow, 0, period)
	if err != nil {
		return []Result{bare}, err
	}
	defer sub.stop()
	if err := sleep(ctx, r.opts.Warmup); err != nil {
		return []Result{bare}, err
	}
	w, err = r.measure(ctx, "poll", srv, []*subscriber{sub})
	if err != nil {
		return []Result{bare}, err
	}
	st := sub.stats()
	if st.err != nil {
		return []Result{bare}, fmt.Errorf("subscriber: %w", st.err)
	}
	streamed := w.row("poll", "+ 1 subscriber "+label, st)
	streamed.Note = fmt.Sprintf("p99 target ≤10ms: %s; cpu includes streaming every sample", verdict(st.lat.Count() > 0 && streamed.P99 <= targetPollP99))
	return []Result{bare, streamed}, nil
}

// serveAndMeasure starts the server on cfg, subscribes once to everything, warms
// up, measures one window and stops the server.
func (r *Runner) serveAndMeasure(ctx context.Context, scenario, cs string, cfg *config.Config, period time.Duration) (Result, error) {
	srv, err := r.startServer(ctx, cfg)
	if err != nil {
		return Result{}, err
	}
	defer srv.stop(60 * time.Second)
	sub, err := subscribe(ctx, srv.grpc, r.opts.BatchWindow, 0, period)
	if err != nil {
		return Result{}, err
	}
	defer sub.stop()
	if err := sleep(ctx, r.opts.Warmup); err != nil {
		return Result{}, err
	}
	w, err := r.measure(ctx, scenario, srv, []*subscriber{sub})
	if err != nil {
		return Result{}, err
	}
	st := sub.stats()
	if st.err != nil {
		return Result{}, fmt.Errorf("subscriber: %w", st.err)
	}
	return w.row(scenario, cs, st), nil
}

// floor is the bare poller: one goroutine per connection, each writes the query
// line and reads the reply line once per period, nothing else. With slots 0 each
// goroutine has a ticker of its own (the floor the targets compare with); with
// slots > 0 one timer goroutine wakes the connections of each of slots slots
// per period together, as the server's scheduler does. It runs inside the
// harness process, whose own CPU (getrusage RUSAGE_SELF) is measured over the
// window while nothing else runs in it. Latency is the round trip; jitter the
// spread of the intervals between successive queries of a connection.
func (r *Runner) floor(ctx context.Context, insts []instrument, query string, perReply int, period time.Duration, slots int) (Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		from, to atomic.Int64
		count    atomic.Int64
		overruns atomic.Int64
		mu       sync.Mutex
		lat, jit Histogram
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	from.Store(-1)
	line := []byte(query + "\n")
	wakes := make([]chan struct{}, len(insts))
	if slots > 0 {
		for i := range wakes {
			wakes[i] = make(chan struct{}, 1)
		}
		wg.Go(func() { slotTicker(ctx, period, slots, wakes) })
	}
	for i, in := range insts {
		conn, err := net.DialTimeout("tcp", in.addr, 10*time.Second)
		if err != nil {
			cancel()
			wg.Wait()
			return Result{}, fmt.Errorf("floor: dial %s: %w", in.name, err)
		}
		offset := period * time.Duration(i) / time.Duration(len(insts))
		wg.Go(func() {
			defer conn.Close()
			go func() { <-ctx.Done(); conn.Close() }()
			var myLat, myJit Histogram
			defer func() { mu.Lock(); lat.Merge(&myLat); jit.Merge(&myJit); mu.Unlock() }()
			rd := bufio.NewReader(conn)
			var tc <-chan time.Time
			if slots == 0 {
				if sleep(ctx, offset) != nil {
					return
				}
				tick := time.NewTicker(period)
				defer tick.Stop()
				tc = tick.C
			}
			var prev time.Time
			for {
				select {
				case <-ctx.Done():
					return
				case <-tc:
				case <-wakes[i]:
				}
				t0 := time.Now()
				if _, err := conn.Write(line); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				if _, err := rd.ReadSlice('\n'); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { firstErr = err })
					}
					return
				}
				t1 := time.Now()
				if f := from.Load(); f >= 0 && t0.UnixNano() >= f && (to.Load() == 0 || t0.UnixNano() < to.Load()) {
					count.Add(1)
					myLat.Observe(t1.Sub(t0))
					if !prev.IsZero() {
						d := t0.Sub(prev) - period
						myJit.Observe(max(d, -d))
					}
					if t1.Sub(t0) > period {
						overruns.Add(1)
					}
				}
				prev = t0
			}
		})
	}
	r.progress("floor: %d connections polling, warming up", len(insts))
	if err := sleep(ctx, r.opts.Warmup); err != nil {
		return Result{}, err
	}
	c0, t0 := selfCPU(), time.Now()
	from.Store(t0.UnixNano())
	r.progress("floor: measuring for %v", r.opts.Duration)
	if err := sleep(ctx, r.opts.Duration); err != nil {
		return Result{}, err
	}
	t1 := time.Now()
	to.Store(t1.UnixNano())
	c1 := selfCPU()
	cancel()
	wg.Wait()
	if firstErr != nil {
		return Result{}, fmt.Errorf("floor poller: %w", firstErr)
	}
	res := newResult("floor", "floor")
	n := count.Load()
	res.Rate = float64(n) * float64(perReply) / t1.Sub(t0).Seconds()
	if n > 0 {
		res.CPUPerSample = (c1 - c0) / time.Duration(n*int64(perReply))
	}
	res.P50, res.P99, res.Max = lat.Quantile(0.5), lat.Quantile(0.99), lat.Max()
	res.Jitter = jit.Quantile(0.99)
	res.Overruns = overruns.Load()
	res.Note = fmt.Sprintf("harness process, rusage delta; %.1f µs CPU per round trip; latency = round trip",
		float64(c1-c0)/float64(max(n, 1))/1e3)
	return res, nil
}

// slotTicker wakes the connections of slot k%slots at tick k, slots ticks per
// period, until ctx ends: connection i is in slot i%slots.
func slotTicker(ctx context.Context, period time.Duration, slots int, wakes []chan struct{}) {
	t := time.NewTimer(0)
	defer t.Stop()
	base := time.Now()
	for k := 0; ; k++ {
		at := time.Duration(k/slots)*period + time.Duration(k%slots)*period/time.Duration(slots)
		t.Reset(at - time.Since(base))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for i := k % slots; i < len(wakes); i += slots {
			select {
			case wakes[i] <- struct{}{}:
			default: // still polling: this tick is skipped
			}
		}
	}
}

// scale connects ScaleDevices devices polled at 1 Hz.
func (r *Runner) scale(ctx context.Context) ([]Result, error) {
	o := r.opts
	want := uint64(3*o.ScaleDevices + 4096)
	lim, err := RaiseFileLimit(want)
	note := fmt.Sprintf("RLIMIT_NOFILE raised to %d for harness, simulator and server", lim)
	if err != nil {
		note = fmt.Sprintf("RLIMIT_NOFILE raised to %d only (hard limit; raising it further: %v)", lim, errors.Unwrap(err))
	}
	r.progress("scale: %s", note)
	if need := uint64(o.ScaleDevices + 1024); lim < need {
		return nil, fmt.Errorf("scale: the server needs an open-file limit of at least %d for %d devices, and only %d could be set (raise the hard limit, e.g. ulimit -Hn as root, or pass a smaller --scale-devices)",
			need, o.ScaleDevices, lim)
	}
	// One simulator holds a listener and a connection per instrument, so it needs
	// two descriptors per device; where the limit is lower, the instruments are
	// split over several simulator processes.
	perSim := o.ScaleDevices
	if avail := int(lim) - 1024; avail < 2*perSim {
		perSim = max(1, avail/2)
	}
	var insts []instrument
	shards := 0
	for left := o.ScaleDevices; left > 0; left -= perSim {
		n := min(left, perSim)
		shards++
		sim, err := r.startSim(ctx, n, 0, 0)
		if err != nil {
			return nil, err
		}
		defer sim.stop(60 * time.Second)
		for _, in := range sim.instruments {
			in.name = fmt.Sprintf("s%d-%s", shards, in.name)
			insts = append(insts, in)
		}
	}
	if shards > 1 {
		note += fmt.Sprintf("; instruments split over %d simulator processes", shards)
	}
	chans := pollChannels(o.Channels, time.Second)
	cfg, err := serverConfig(insts, chans, "", "")
	if err != nil {
		return nil, err
	}
	r.progress("scale: starting the server with %d devices", o.ScaleDevices)
	row, err := r.serveAndMeasure(ctx, "scale", fmt.Sprintf("%d×%d@1Hz", o.ScaleDevices, o.Channels), cfg, time.Second)
	if err != nil {
		return nil, err
	}
	row.Note = fmt.Sprintf("RSS target ≤1 GiB: %s; %s", verdict(row.PeakRSS > 0 && row.PeakRSS <= targetScaleRSS), note)
	return []Result{row}, nil
}
