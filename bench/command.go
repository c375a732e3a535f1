package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// command measures SendCommand round trips (a named query command, *IDN?) through
// the server, then raw TCP round trips of the same line to the same simulated
// instrument, one at a time for one window each. The devices are polled at 1 Hz in
// the background.
func (r *Runner) command(ctx context.Context) ([]Result, error) {
	sim, err := r.startSim(ctx, 10, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	cfg, err := serverConfig(sim.instruments, pollChannels(r.opts.Channels, time.Second), "", "")
	if err != nil {
		return nil, err
	}
	srv, err := r.startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop(60 * time.Second)
	conn, err := dial(srv.grpc)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	target := sim.instruments[0]
	client := pb.NewDeviceServiceClient(conn)
	req := &pb.SendCommandRequest{Device: target.name, Command: &pb.SendCommandRequest_Name{Name: "identify"}}
	roundTrip := func() error {
		_, err := client.SendCommand(ctx, req)
		return err
	}
	if err := r.loop(ctx, r.opts.Warmup, roundTrip, nil); err != nil {
		return nil, fmt.Errorf("SendCommand: %w", err)
	}
	p0, err := ReadProcStat(srv.pid())
	if err != nil {
		return nil, err
	}
	var lat Histogram
	r.progress("command: SendCommand for %v", r.opts.Duration)
	secs, n, err := r.timed(ctx, roundTrip, &lat)
	if err != nil {
		return nil, fmt.Errorf("SendCommand: %w", err)
	}
	p1, err := ReadProcStat(srv.pid())
	if err != nil {
		return nil, err
	}
	sc := newResult("command", "SendCommand (gRPC)")
	sc.Rate = float64(n) / secs
	sc.CPUPerSample = (p1.CPU - p0.CPU) / time.Duration(max(n, 1))
	sc.PeakRSS = p1.PeakRSS
	sc.P50, sc.P99, sc.Max = lat.Quantile(0.5), lat.Quantile(0.99), lat.Max()
	sc.Note = "one at a time; rate = round trips/s; cpu = server CPU per round trip (incl. 1 Hz background polls)"

	raw, err := net.DialTimeout("tcp", target.addr, 10*time.Second)
	if err != nil {
		return []Result{sc}, err
	}
	defer raw.Close()
	rd := bufio.NewReader(raw)
	line := []byte("*IDN?\n")
	rawTrip := func() error {
		if _, err := raw.Write(line); err != nil {
			return err
		}
		_, err := rd.ReadSlice('\n')
		return err
	}
	if err := r.loop(ctx, time.Second, rawTrip, nil); err != nil {
		return []Result{sc}, fmt.Errorf("raw TCP: %w", err)
	}
	var rawLat Histogram
	c0 := selfCPU()
	r.progress("command: raw TCP for %v", r.opts.Duration)
	secs, n, err = r.timed(ctx, rawTrip, &rawLat)
	if err != nil {
		return []Result{sc}, fmt.Errorf("raw TCP: %w", err)
	}
	rt := newResult("command", "raw TCP baseline")
	rt.Rate = float64(n) / secs
	rt.CPUPerSample = (selfCPU() - c0) / time.Duration(max(n, 1))
	rt.P50, rt.P99, rt.Max = rawLat.Quantile(0.5), rawLat.Quantile(0.99), rawLat.Max()
	rt.Note = "same instrument, own connection; cpu = harness process rusage per round trip"
	return []Result{sc, rt}, nil
}

// loop calls fn back to back for d, observing each call's latency into h (if not
// nil), and returns the first error.
func (r *Runner) loop(ctx context.Context, d time.Duration, fn func() error, h *Histogram) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := fn(); err != nil {
			return err
		}
		if h != nil {
			h.Observe(time.Since(t0))
		}
	}
	return nil
}

// timed runs loop for one window and returns its length in seconds and the calls.
func (r *Runner) timed(ctx context.Context, fn func() error, h *Histogram) (float64, int64, error) {
	t0 := time.Now()
	err := r.loop(ctx, r.opts.Duration, fn, h)
	return time.Since(t0).Seconds(), int64(h.Count()), err
}
