package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/switchyard/switchyard/auth"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// The command targets (issue 18): SendCommand's p50 at most 150 µs above a raw
// TCP round trip, and at most 60 µs of server CPU per command.
const (
	targetCommandOverhead = 150 * time.Microsecond
	targetCommandCPU      = 60 * time.Microsecond
)

// command measures SendCommand round trips (a named query command, *IDN?) through
// the server, one at a time for one window, with authentication off and then on
// (a bearer token of role operator), then raw TCP round trips of the same line to
// the same simulated instrument. The devices are polled at 1 Hz in the background.
func (r *Runner) command(ctx context.Context) ([]Result, error) {
	sim, err := r.startSim(ctx, 10, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	target := sim.instruments[0]
	var rows []Result
	for _, authOn := range []bool{false, true} {
		row, err := r.sendCommands(ctx, sim, target, authOn)
		if err != nil {
			return rows, err
		}
		rows = append(rows, row)
	}
	raw, err := r.rawCommands(ctx, target)
	if err != nil {
		return rows, err
	}
	for i := range rows {
		over := rows[i].P50 - raw.P50
		rows[i].Note = fmt.Sprintf("p50 %.0f µs over raw TCP (target ≤%.0f: %s); cpu = server CPU per round trip (target ≤%.0f µs: %s; incl. 1 Hz background polls); %s",
			float64(over)/1e3, float64(targetCommandOverhead)/1e3, verdict(over <= targetCommandOverhead),
			float64(targetCommandCPU)/1e3, verdict(rows[i].CPUPerSample <= targetCommandCPU), rows[i].Note)
	}
	return append(rows, raw), nil
}

// sendCommands runs a server on the simulator's instruments, with or without
// authentication, and measures SendCommand round trips to target.
func (r *Runner) sendCommands(ctx context.Context, sim *simProc, target instrument, authOn bool) (Result, error) {
	cfg, err := serverConfig(sim.instruments, pollChannels(r.opts.Channels, time.Second), "", "")
	if err != nil {
		return Result{}, err
	}
	// The limiter runs as it always does, with room for the commands the
	// benchmark sends (its default is 20 per second per identity).
	cfg.Limits.CommandRate, cfg.Limits.CommandBurst = 1e6, 1000
	label, md := "SendCommand (gRPC, auth off)", metadata.MD{}
	if authOn {
		tok, err := auth.NewToken()
		if err != nil {
			return Result{}, err
		}
		r.nconf++
		file := filepath.Join(r.dir, fmt.Sprintf("tokens-%d.yaml", r.nconf))
		entry := "tokens:\n" + auth.Entry("bench", auth.Operator, auth.HashToken(tok))
		if err := os.WriteFile(file, []byte(entry), 0o600); err != nil {
			return Result{}, err
		}
		cfg.Auth.TokensFile = file
		label, md = "SendCommand (gRPC, auth on)", metadata.Pairs("authorization", "Bearer "+tok)
	}
	srv, err := r.startServer(ctx, cfg, md)
	if err != nil {
		return Result{}, err
	}
	defer srv.stop(60 * time.Second)
	conn, err := dial(srv.grpc)
	if err != nil {
		return Result{}, err
	}
	defer conn.Close()
	client := pb.NewDeviceServiceClient(conn)
	cctx := metadata.NewOutgoingContext(ctx, md)
	req := &pb.SendCommandRequest{Device: target.name, Command: &pb.SendCommandRequest_Name{Name: "identify"}}
	roundTrip := func() error {
		_, err := client.SendCommand(cctx, req)
		return err
	}
	if err := r.loop(ctx, r.opts.Warmup, roundTrip, nil); err != nil {
		return Result{}, fmt.Errorf("SendCommand: %w", err)
	}
	p0, err := ReadProcStat(srv.pid())
	if err != nil {
		return Result{}, err
	}
	var lat Histogram
	r.progress("command: %s for %v", label, r.opts.Duration)
	profDone := r.profile(ctx, "command", srv)
	secs, n, err := r.timed(ctx, roundTrip, &lat)
	<-profDone
	if err != nil {
		return Result{}, fmt.Errorf("SendCommand: %w", err)
	}
	p1, err := ReadProcStat(srv.pid())
	if err != nil {
		return Result{}, err
	}
	sc := newResult("command", label)
	sc.Rate = float64(n) / secs
	sc.CPUPerSample = (p1.CPU - p0.CPU) / time.Duration(max(n, 1))
	sc.PeakRSS = p1.PeakRSS
	sc.P50, sc.P99, sc.Max = lat.Quantile(0.5), lat.Quantile(0.99), lat.Max()
	sc.Note = "one at a time; rate = round trips/s"
	return sc, nil
}

// rawCommands measures raw TCP round trips of the same line to target, on a
// connection of the harness's own.
func (r *Runner) rawCommands(ctx context.Context, target instrument) (Result, error) {
	raw, err := net.DialTimeout("tcp", target.addr, 10*time.Second)
	if err != nil {
		return Result{}, err
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
		return Result{}, fmt.Errorf("raw TCP: %w", err)
	}
	var rawLat Histogram
	c0 := selfCPU()
	r.progress("command: raw TCP for %v", r.opts.Duration)
	secs, n, err := r.timed(ctx, rawTrip, &rawLat)
	if err != nil {
		return Result{}, fmt.Errorf("raw TCP: %w", err)
	}
	rt := newResult("command", "raw TCP baseline")
	rt.Rate = float64(n) / secs
	rt.CPUPerSample = (selfCPU() - c0) / time.Duration(max(n, 1))
	rt.P50, rt.P99, rt.Max = rawLat.Quantile(0.5), rawLat.Quantile(0.99), rawLat.Max()
	rt.Note = "same instrument, own connection; cpu = harness process rusage per round trip"
	return rt, nil
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
