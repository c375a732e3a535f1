package bench

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// soakHeader names the columns of the progress lines printed during a window;
// `grep ^soak,` of a long run's output is a CSV file to plot.
// spool_rows is the archive's spool depth (rows spooled, not yet acknowledged,
// all archives together) and archive_lag_s the age of the oldest of them (the
// largest over the archives).
const soakHeader = "soak,scenario,elapsed_s,samples_per_s,rss_mb,goroutines,queue_depth,archive_pending_rows,spool_rows,archive_lag_s"

// window is what one measurement window saw of the server.
type window struct {
	from, to   time.Time
	cpu        time.Duration // server CPU used in the window
	peakRSS    int64
	goroutines int
	published  float64 // samples the server's hub published in the window
	overruns   float64
}

// progressEvery is the interval of progress lines: 2 s, or 10 s in soak mode (a
// window of a minute or more).
func (r *Runner) progressEvery() time.Duration {
	if r.opts.Duration >= time.Minute {
		return 10 * time.Second
	}
	return 2 * time.Second
}

// measure opens the subscribers' windows, runs for the configured duration while
// printing progress, and returns the server's figures over the window. Subscribers
// get a short grace to receive the samples stamped inside the window.
func (r *Runner) measure(ctx context.Context, label string, srv *serverProc, subs []*subscriber) (window, error) {
	var w window
	m0, err := scrape(ctx, srv.http)
	if err != nil {
		return w, err
	}
	p0, err := ReadProcStat(srv.pid())
	if err != nil {
		return w, err
	}
	w.from = time.Now()
	for _, s := range subs {
		s.open(w.from)
	}
	r.progress("%s: measuring for %v", label, r.opts.Duration)
	profDone := r.profile(ctx, label, srv)
	defer func() { <-profDone }()
	fmt.Fprintln(r.opts.Progress, soakHeader)
	end := w.from.Add(r.opts.Duration)
	tick := time.NewTicker(r.progressEvery())
	defer tick.Stop()
	prev, prevT := m0, w.from
	for time.Now().Before(end) {
		select {
		case <-ctx.Done():
			return w, ctx.Err()
		case <-time.After(time.Until(end)):
		case now := <-tick.C:
			m, err := scrape(ctx, srv.http)
			if err != nil {
				return w, err
			}
			ps, _ := ReadProcStat(srv.pid())
			rate := (m["switchyard_hub_published_samples_total"] - prev["switchyard_hub_published_samples_total"]) / now.Sub(prevT).Seconds()
			fmt.Fprintf(r.opts.Progress, "soak,%s,%.0f,%.0f,%.1f,%.0f,%.0f,%.0f,%.0f,%.1f\n", label, now.Sub(w.from).Seconds(), rate,
				float64(ps.RSS)/(1<<20), m["go_goroutines"], m["switchyard_hub_queue_depth"], m["switchyard_ingest_pending_rows"],
				m["switchyard_ingest_spool_rows"], m.Max("switchyard_ingest_oldest_unacked_age_seconds"))
			prev, prevT = m, now
		}
		if err := srv.exited(); err != nil {
			return w, err
		}
	}
	w.to = time.Now()
	for _, s := range subs {
		s.closeWindow(w.to)
	}
	p1, err := ReadProcStat(srv.pid())
	if err != nil {
		return w, err
	}
	m1, err := scrape(ctx, srv.http)
	if err != nil {
		return w, err
	}
	w.cpu = p1.CPU - p0.CPU
	w.peakRSS = p1.PeakRSS
	w.goroutines = int(m1["go_goroutines"])
	w.published = m1["switchyard_hub_published_samples_total"] - m0["switchyard_hub_published_samples_total"]
	w.overruns = m1["switchyard_device_poll_overruns_total"] - m0["switchyard_device_poll_overruns_total"]
	// Samples stamped just before w.to are still on their way.
	if err := sleep(ctx, 500*time.Millisecond+r.opts.BatchWindow); err != nil {
		return w, err
	}
	return w, nil
}

// seconds is the window's length.
func (w *window) seconds() float64 { return w.to.Sub(w.from).Seconds() }

// cpuPerSample is the server's CPU per published sample.
func (w *window) cpuPerSample() time.Duration {
	if w.published <= 0 {
		return 0
	}
	return time.Duration(float64(w.cpu) / w.published)
}

// row fills a Result with the window's and one subscriber's figures.
func (w *window) row(scenario, cs string, st subStats) Result {
	res := newResult(scenario, cs)
	res.Rate = float64(st.n) / w.seconds()
	res.CPUPerSample = w.cpuPerSample()
	res.PeakRSS = w.peakRSS
	res.Goroutines = w.goroutines
	res.P50, res.P99, res.Max = st.lat.Quantile(0.5), st.lat.Quantile(0.99), st.lat.Max()
	res.Overruns = int64(w.overruns)
	if st.jit.Count() > 0 {
		res.Jitter = st.jit.Quantile(0.99)
	}
	res.Drops, res.Squashed = st.drops, st.squashed
	res.Produced = int64(w.published)
	res.window = w.seconds()
	return res
}

// profile fetches a CPU profile of the server over the window and then its
// allocation profile into Options.ProfileDir. The returned channel closes when
// both are saved (at once when profiling is off). Failures are reported as
// progress lines: a profile is a diagnosis, not a measurement.
func (r *Runner) profile(ctx context.Context, label string, srv *serverProc) <-chan struct{} {
	done := make(chan struct{})
	if r.opts.ProfileDir == "" {
		close(done)
		return done
	}
	r.nprof++
	base := filepath.Join(r.opts.ProfileDir, fmt.Sprintf("%s-%d", label, r.nprof))
	secs := max(1, int(r.opts.Duration/time.Second))
	go func() {
		defer close(done)
		for _, p := range []struct{ path, file string }{
			{fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), base + "-cpu.pprof"},
			{"/debug/pprof/allocs", base + "-allocs.pprof"},
		} {
			if err := fetchTo(ctx, "http://"+srv.http+p.path, p.file); err != nil {
				r.progress("profile %s: %v", p.file, err)
				return
			}
		}
		r.progress("profiles saved: %s-{cpu,allocs}.pprof", base)
	}()
	return done
}

func fetchTo(ctx context.Context, url, file string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
