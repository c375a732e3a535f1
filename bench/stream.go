package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// fanout streams D/10 devices (at least 10) × C × R to K subscribers: first K-1
// normal ones, then the same K-1 with one deliberately slow subscriber added (it
// sleeps 1 s after each batch), and compares each normal subscriber's p99.
func (r *Runner) fanout(ctx context.Context) ([]Result, error) {
	o := r.opts
	devices := o.FanoutDevices
	period := time.Duration(float64(time.Second) / o.Rate)
	sim, err := r.startSim(ctx, devices, 0, 0)
	if err != nil {
		return nil, err
	}
	defer sim.stop(30 * time.Second)
	cfg, err := serverConfig(sim.instruments, pollChannels(o.Channels, period), "", "")
	if err != nil {
		return nil, err
	}
	srv, err := r.startServer(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer srv.stop(60 * time.Second)
	var subs []*subscriber
	defer func() {
		for _, s := range subs {
			s.stop()
		}
	}()
	for range o.Subscribers - 1 {
		s, err := subscribe(ctx, srv.grpc, o.BatchWindow, 0, 0)
		if err != nil {
			return nil, err
		}
		subs = append(subs, s)
	}
	// K-1 new streams start with a backlog; give them twice the warm-up.
	if err := sleep(ctx, 2*o.Warmup); err != nil {
		return nil, err
	}
	label := fmt.Sprintf("%d×%d@%gHz", devices, o.Channels, o.Rate)
	wA, err := r.measure(ctx, "fanout", srv, subs)
	if err != nil {
		return nil, err
	}
	before := collect(subs)
	slow, err := subscribe(ctx, srv.grpc, o.BatchWindow, time.Second, 0)
	if err != nil {
		return nil, err
	}
	subs = append(subs, slow)
	if err := sleep(ctx, o.Warmup); err != nil {
		return nil, err
	}
	wB, err := r.measure(ctx, "fanout", srv, subs)
	if err != nil {
		return nil, err
	}
	after := collect(subs)
	rowA := fanoutRow(&wA, fmt.Sprintf("%d subscribers %s", o.Subscribers-1, label), before)
	rowB := fanoutRow(&wB, fmt.Sprintf("%d + 1 slow", o.Subscribers-1), after[:len(after)-1])
	worst := math.Inf(-1)
	for i := range before {
		b, a := before[i].lat.Quantile(0.99), after[i].lat.Quantile(0.99)
		if b > 0 {
			worst = max(worst, (float64(a)-float64(b))/float64(b))
		}
	}
	rowB.Note = fmt.Sprintf("worst normal subscriber p99 change %+.0f%% (target ≤+10%%: %s)", worst*100, verdict(worst <= targetFanoutChange))
	rowS := wB.row("fanout", "the slow subscriber", after[len(after)-1])
	rowS.Rate = float64(after[len(after)-1].n) / wB.seconds()
	rowS.Note = "sleeps 1 s after each batch"
	return []Result{rowA, rowB, rowS}, nil
}

func collect(subs []*subscriber) []subStats {
	out := make([]subStats, len(subs))
	for i, s := range subs {
		out[i] = s.stats()
	}
	return out
}

// fanoutRow sums the delivered rate over subs and reports the median subscriber's
// p50, the worst p99 and max, and the largest drop count.
func fanoutRow(w *window, cs string, subs []subStats) Result {
	var all Histogram
	res := w.row("fanout", cs, subStats{})
	var n int64
	p50s := make([]time.Duration, 0, len(subs))
	for _, s := range subs {
		n += s.n
		all.Merge(&s.lat)
		p50s = append(p50s, s.lat.Quantile(0.5))
		res.P99 = max(res.P99, s.lat.Quantile(0.99))
		res.Drops = max(res.Drops, s.drops)
		res.Squashed = max(res.Squashed, s.squashed)
	}
	slices.Sort(p50s)
	if len(p50s) > 0 {
		res.P50 = p50s[len(p50s)/2]
	}
	res.Max = all.Max()
	res.Rate = float64(n) / w.seconds()
	res.Overruns = int64(w.overruns)
	return res
}

// push steps the total pushed sample rate up through PushRates until the server
// no longer delivers 95 % of it to a subscriber without loss (dropped or squashed):
// the knee. Each step
// runs a fresh simulator and server.
func (r *Runner) push(ctx context.Context) ([]Result, error) {
	o := r.opts
	var rows []Result
	for _, rate := range o.PushRates {
		hz := rate / float64(4*o.PushDevices)
		row, err := r.pushStep(ctx, rate, hz)
		if err != nil {
			return rows, err
		}
		ok := row.Rate >= 0.95*rate && row.Drops == 0 && row.Squashed == 0
		if !ok {
			// Say where the shortfall is: in reading the pushers (the server's hub
			// published less than offered: the simulator could not push that fast
			// or the server could not read it) or in delivery to the subscriber.
			where := "in delivery to the subscriber"
			if float64(row.Produced) < 0.95*rate*row.window {
				where = "before the hub (simulator or server input)"
			}
			row.Note = fmt.Sprintf("knee: delivered %.0f%% of offered; shortfall %s", 100*row.Rate/rate, where)
			rows = append(rows, row)
			return rows, nil
		}
		row.Note = "keeps up"
		rows = append(rows, row)
	}
	rows[len(rows)-1].Note += "; no knee up to the highest step"
	return rows, nil
}

func (r *Runner) pushStep(ctx context.Context, rate, hz float64) (Result, error) {
	o := r.opts
	sim, err := r.startSim(ctx, 0, o.PushDevices, hz)
	if err != nil {
		return Result{}, err
	}
	defer sim.stop(30 * time.Second)
	cfg, err := serverConfig(sim.instruments, nil, "", "")
	if err != nil {
		return Result{}, err
	}
	r.progress("push: offering %.0f samples/s (%d devices × %.1f lines/s × 4)", rate, o.PushDevices, hz)
	return r.serveAndMeasure(ctx, "push", fmt.Sprintf("offered %.0f/s", rate), cfg, 0)
}
