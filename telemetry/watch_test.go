package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/telemetry"
)

// logRecorder is a slog.Handler that keeps every record.
type logRecorder struct {
	mu   sync.Mutex
	recs []logRec
}

type logRec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *logRecorder) WithGroup(string) slog.Handler            { return r }
func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	lr := logRec{level: rec.Level, msg: rec.Message, attrs: map[string]string{}}
	rec.Attrs(func(a slog.Attr) bool {
		lr.attrs[a.Key] = a.Value.String()
		return true
	})
	r.mu.Lock()
	r.recs = append(r.recs, lr)
	r.mu.Unlock()
	return nil
}

// at returns the records of one level.
func (r *logRecorder) at(level slog.Level) []logRec {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logRec
	for _, lr := range r.recs {
		if lr.level == level {
			out = append(out, lr)
		}
	}
	return out
}

func newWatchdog(t *testing.T, h *telemetry.Hub, opts telemetry.WatchdogOptions) *telemetry.Watchdog {
	t.Helper()
	w, err := telemetry.NewWatchdog(h, opts)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// serve runs w.Serve and returns a function that cancels it and checks that it
// returned nil.
func serve(t *testing.T, w *telemetry.Watchdog) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	return func() {
		t.Helper()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v, want nil", err)
		}
	}
}

// metric returns the value of a gauge or counter gathered from reg, with the
// subscriber label when subscriber is not empty; -1 if absent.
func metric(t *testing.T, reg *prometheus.Registry, name, subscriber string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := subscriber == ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "subscriber" && lp.GetValue() == subscriber {
					match = true
				}
			}
			if !match {
				continue
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return -1
}

func TestWatchdogReportsStallAfterStallAfterAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		reg := prometheus.NewRegistry()
		h := telemetry.NewHub(reg)
		archive := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
		defer archive.Close()
		logs := &logRecorder{}
		w := newWatchdog(t, h, telemetry.WatchdogOptions{Logger: slog.New(logs), Registerer: reg})
		h.Publish(samples("a", 3)...)
		stop := serve(t, w)
		defer stop()

		// Checks run at whole seconds; look between them.
		time.Sleep(9500 * time.Millisecond)
		synctest.Wait()
		if got := w.Status(); got != "1 subscription; all draining" {
			t.Fatalf("at 9.5s status = %q, want all draining", got)
		}
		if n := len(logs.at(slog.LevelWarn)); n != 0 {
			t.Fatalf("at 9.5s %d warnings, want none before StallAfter", n)
		}

		time.Sleep(time.Second)
		synctest.Wait()
		const want = "1 subscription; 1 stalled: archive (lossless) 3 queued, no drain for 10s"
		if got := w.Status(); got != want {
			t.Fatalf("at 10.5s status = %q, want %q", got, want)
		}
		warns := logs.at(slog.LevelWarn)
		if len(warns) != 1 {
			t.Fatalf("at 10.5s %d warnings, want 1", len(warns))
		}
		for k, v := range map[string]string{"subscriber": "archive", "policy": "lossless", "depth": "3", "no_drain_for": "10s"} {
			if warns[0].attrs[k] != v {
				t.Errorf("warning %s = %q, want %q (record %+v)", k, warns[0].attrs[k], v, warns[0])
			}
		}
		if v := metric(t, reg, "switchyard_hub_stalls_total", "archive"); v != 1 {
			t.Errorf("stalls_total = %v, want 1", v)
		}
		if v := metric(t, reg, "switchyard_hub_stalled_subscriptions", ""); v != 1 {
			t.Errorf("stalled_subscriptions = %v, want 1", v)
		}
		if hs := w.Health(); len(hs) != 1 || !hs[0].Stalled || hs[0].Depth != 3 || hs[0].NoDrainFor != 10*time.Second || !hs[0].LastDrain.IsZero() {
			t.Errorf("health = %+v", hs)
		}

		// Still stalled: no new warning, no new episode.
		time.Sleep(20 * time.Second)
		synctest.Wait()
		if n := len(logs.at(slog.LevelWarn)); n != 1 {
			t.Errorf("at 30.5s %d warnings, want still 1", n)
		}
		if v := metric(t, reg, "switchyard_hub_stalls_total", "archive"); v != 1 {
			t.Errorf("at 30.5s stalls_total = %v, want 1", v)
		}

		archive.Drain(nil, 0)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := w.Status(); got != "1 subscription; all draining" {
			t.Fatalf("after a drain status = %q, want all draining", got)
		}
		infos := logs.at(slog.LevelInfo)
		if len(infos) != 1 || infos[0].attrs["subscriber"] != "archive" {
			t.Fatalf("after a drain info logs = %+v, want one recovery", infos)
		}
		if v := metric(t, reg, "switchyard_hub_stalled_subscriptions", ""); v != 0 {
			t.Errorf("after a drain stalled_subscriptions = %v, want 0", v)
		}
		hs := w.Health()
		if len(hs) != 1 || hs[0].Stalled || !hs[0].LastDrain.Equal(start.Add(31*time.Second)) {
			t.Errorf("after a drain health = %+v, want last drain seen at 31s", hs)
		}

		// A second episode: the clock starts at the check that first sees
		// the new samples (32s), so it stalls at 42s, not earlier.
		h.Publish(samples("a", 2)...)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if v := metric(t, reg, "switchyard_hub_stalls_total", "archive"); v != 1 {
			t.Errorf("at 41.5s stalls_total = %v, want 1", v)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if v := metric(t, reg, "switchyard_hub_stalls_total", "archive"); v != 2 {
			t.Errorf("at 42.5s stalls_total = %v, want 2", v)
		}
		if n := len(logs.at(slog.LevelWarn)); n != 2 {
			t.Errorf("at 42.5s %d warnings, want 2", n)
		}
	})
}

func TestWatchdogSetsDepthOfUndrainedQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		h := telemetry.NewHub(reg)
		viewer := h.Subscribe(telemetry.SubscribeOptions{Name: "viewer", Capacity: 100})
		defer viewer.Close()
		h.Publish(samples("a", 5)...)
		viewer.Drain(nil, 0)
		h.Publish(samples("a", 7)...)
		if v := metric(t, reg, "switchyard_hub_queue_depth", "viewer"); v != 0 {
			t.Fatalf("before the watchdog depth = %v, want the stale 0 of the last drain", v)
		}

		// Two subscribers sharing a name: the gauge shows the deeper queue.
		api1 := h.Subscribe(telemetry.SubscribeOptions{Name: "api", Match: func(s *telemetry.Sample) bool { return s.Device == "b" }})
		api2 := h.Subscribe(telemetry.SubscribeOptions{Name: "api", Match: func(s *telemetry.Sample) bool { return s.Device == "c" }})
		defer api1.Close()
		defer api2.Close()
		h.Publish(samples("c", 9)...)
		h.Publish(samples("b", 2)...)

		w := newWatchdog(t, h, telemetry.WatchdogOptions{})
		stop := serve(t, w)
		defer stop()
		synctest.Wait()
		if v := metric(t, reg, "switchyard_hub_queue_depth", "viewer"); v != 18 {
			t.Errorf("viewer depth = %v, want 18", v)
		}
		if v := metric(t, reg, "switchyard_hub_queue_depth", "api"); v != 9 {
			t.Errorf("api depth = %v, want the deeper 9", v)
		}

		// Drain still sets it between checks.
		viewer.Drain(nil, 10)
		if v := metric(t, reg, "switchyard_hub_queue_depth", "viewer"); v != 8 {
			t.Errorf("after Drain depth = %v, want 8", v)
		}
	})
}

func TestWatchdogOnStatusOnlyOnChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := telemetry.NewHub(nil)
		live := h.Subscribe(telemetry.SubscribeOptions{Name: "live", Policy: telemetry.Squash})
		archive := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
		defer live.Close()
		defer archive.Close()
		var mu sync.Mutex
		var calls []string
		w := newWatchdog(t, h, telemetry.WatchdogOptions{
			StallAfter: 5 * time.Second,
			Logger:     slog.New(&logRecorder{}),
			OnStatus: func(_ context.Context, s string) {
				mu.Lock()
				calls = append(calls, s)
				mu.Unlock()
			},
		})
		stop := serve(t, w)
		defer stop()

		var viewer *telemetry.Subscription
		statuses := map[string]bool{}
		time.Sleep(500 * time.Millisecond)
		for i := range 60 {
			// Depths change at every check.
			h.Publish(samples("a", i%7+1)...)
			live.Drain(nil, i%3)
			if i < 20 || i >= 40 {
				archive.Drain(nil, 0)
			}
			switch i {
			case 45:
				viewer = h.Subscribe(telemetry.SubscribeOptions{Name: "viewer"})
			case 50:
				viewer.Close()
			}
			time.Sleep(time.Second)
			synctest.Wait()
			statuses[w.Status()] = true
		}

		mu.Lock()
		defer mu.Unlock()
		if len(calls) != 5 {
			t.Fatalf("OnStatus called %d times over 60 checks, want 5: %q", len(calls), calls)
		}
		const stalled = "2 subscriptions; 1 stalled: archive (lossless) "
		if calls[0] != "2 subscriptions; all draining" ||
			!strings.HasPrefix(calls[1], stalled) || !strings.HasSuffix(calls[1], " queued, no drain for 5s") ||
			calls[2] != "2 subscriptions; all draining" ||
			calls[3] != "3 subscriptions; all draining" ||
			calls[4] != "2 subscriptions; all draining" {
			t.Errorf("OnStatus calls = %q", calls)
		}
		// Meanwhile Status itself followed every depth.
		n := 0
		for s := range statuses {
			if strings.HasPrefix(s, stalled) {
				n++
			}
		}
		if n < 10 {
			t.Errorf("Status showed %d distinct stalled lines, want one per check of the stall", n)
		}
	})
}

func TestWatchdogWarnsOnceWhenLosslessGrowsPastLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := telemetry.NewHub(nil)
		archive := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
		viewer := h.Subscribe(telemetry.SubscribeOptions{Name: "viewer", Capacity: 1000})
		defer archive.Close()
		defer viewer.Close()
		logs := &logRecorder{}
		w := newWatchdog(t, h, telemetry.WatchdogOptions{
			LosslessWarnDepth: 100, StallAfter: time.Hour, Logger: slog.New(logs),
		})
		stop := serve(t, w)
		defer stop()
		tick := func() { time.Sleep(time.Second); synctest.Wait() }

		h.Publish(samples("a", 100)...)
		tick()
		if n := len(logs.at(slog.LevelWarn)); n != 0 {
			t.Fatalf("at the limit: %d warnings, want 0", n)
		}
		h.Publish(samples("a", 50)...)
		tick()
		warns := logs.at(slog.LevelWarn)
		if len(warns) != 1 || warns[0].attrs["subscriber"] != "archive" || warns[0].attrs["depth"] != "150" {
			t.Fatalf("over the limit: warnings %+v, want one for archive", warns)
		}
		if got, want := w.Status(), "2 subscriptions; 1 over limit: archive (lossless) 150 queued, over 100"; got != want {
			t.Errorf("status = %q, want %q", got, want)
		}
		h.Publish(samples("a", 50)...)
		tick()
		tick()
		archive.Drain(nil, 120) // 80 left: above half the limit, still over
		tick()
		if n := len(logs.at(slog.LevelWarn)); n != 1 {
			t.Errorf("while over the limit: %d warnings, want still 1", n)
		}
		if n := len(logs.at(slog.LevelInfo)); n != 0 {
			t.Errorf("at 80 queued: %d infos, want none (clears at half the limit)", n)
		}
		archive.Drain(nil, 40) // 40 left
		tick()
		if infos := logs.at(slog.LevelInfo); len(infos) != 1 || infos[0].attrs["depth"] != "40" {
			t.Errorf("back under: infos %+v, want one at depth 40", infos)
		}
		if hs := w.Health(); len(hs) != 2 || hs[0].OverLimit || hs[1].OverLimit {
			t.Errorf("health = %+v, want none over limit", hs)
		}
		h.Publish(samples("a", 100)...)
		tick()
		if n := len(logs.at(slog.LevelWarn)); n != 2 {
			t.Errorf("second episode: %d warnings, want 2", n)
		}
	})
}

func TestWatchdogServeStopsAndRestarts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := telemetry.NewHub(nil)
		s := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
		defer s.Close()
		reg := prometheus.NewRegistry()
		w := newWatchdog(t, h, telemetry.WatchdogOptions{Registerer: reg, Logger: slog.New(&logRecorder{})})
		stop := serve(t, w)
		synctest.Wait()
		if err := w.Serve(context.Background()); !errors.Is(err, telemetry.ErrWatchdogRunning) {
			t.Errorf("second Serve = %v, want ErrWatchdogRunning", err)
		}
		h.Publish(samples("a", 1)...)
		time.Sleep(12 * time.Second)
		stop()
		// Serve has returned (synctest.Test would fail on a goroutine left
		// behind). A restart keeps the episode: no second count.
		stop = serve(t, w)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if v := metric(t, reg, "switchyard_hub_stalls_total", "archive"); v != 1 {
			t.Errorf("stalls_total after restart = %v, want 1", v)
		}
		stop()
	})
}

// The watchdog dates everything with Now, so a test may drive it with its own
// clock even outside a synctest bubble.
func TestWatchdogUsesInjectedClock(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	defer s.Close()
	h.Publish(samples("a", 4)...)
	statuses := make(chan string, 16)
	w := newWatchdog(t, h, telemetry.WatchdogOptions{
		Period: time.Millisecond, Now: clock, Logger: slog.New(&logRecorder{}),
		OnStatus: func(_ context.Context, s string) { statuses <- s },
	})
	stop := serve(t, w)
	defer stop()
	if got := <-statuses; got != "1 subscription; all draining" {
		t.Fatalf("first status %q", got)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if got, want := <-statuses, "1 subscription; 1 stalled: archive (lossless) 4 queued, no drain for 1m0s"; got != want {
		t.Fatalf("status %q, want %q", got, want)
	}
}

func TestNewWatchdogRejectsBadInput(t *testing.T) {
	h := telemetry.NewHub(nil)
	for _, tc := range []struct {
		name string
		hub  *telemetry.Hub
		opts telemetry.WatchdogOptions
		want string
	}{
		{"nil hub", nil, telemetry.WatchdogOptions{}, "hub is nil"},
		{"zero hub", &telemetry.Hub{}, telemetry.WatchdogOptions{}, "not made by NewHub"},
		{"period", h, telemetry.WatchdogOptions{Period: -time.Second}, "Period must be >= 0, got -1s"},
		{"stall", h, telemetry.WatchdogOptions{StallAfter: -1}, "StallAfter must be >= 0, got -1ns"},
		{"depth", h, telemetry.WatchdogOptions{LosslessWarnDepth: -5}, "LosslessWarnDepth must be >= 0, got -5"},
	} {
		w, err := telemetry.NewWatchdog(tc.hub, tc.opts)
		if w != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, %v; want an error containing %q", tc.name, w, err, tc.want)
		}
	}

	reg := prometheus.NewRegistry()
	if _, err := telemetry.NewWatchdog(h, telemetry.WatchdogOptions{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	_, err := telemetry.NewWatchdog(h, telemetry.WatchdogOptions{Registerer: reg})
	if are := (prometheus.AlreadyRegisteredError{}); !errors.As(err, &are) {
		t.Errorf("second registration: %v, want an AlreadyRegisteredError", err)
	}
}

func TestPolicyString(t *testing.T) {
	for p, want := range map[telemetry.Policy]string{
		telemetry.DropOldest: "drop_oldest",
		telemetry.Lossless:   "lossless",
		telemetry.Squash:     "squash",
		telemetry.Policy(9):  "unknown",
	} {
		if got := p.String(); got != want {
			t.Errorf("Policy(%d).String() = %q, want %q", p, got, want)
		}
	}
}

func ExampleWatchdog() {
	h := telemetry.NewHub(nil)
	archive := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	defer archive.Close()

	statuses := make(chan string, 8)
	w, err := telemetry.NewWatchdog(h, telemetry.WatchdogOptions{
		OnStatus: func(_ context.Context, s string) { statuses <- s }, // e.g. to the supervisor
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	fmt.Println(<-statuses)
	cancel()
	fmt.Println(<-done)
	// Output:
	// 1 subscription; all draining
	// <nil>
}

// TestWatchdogReportsBackpressure: a Lossless subscription at its bound makes
// publishers wait; the watchdog logs it at error, names it in its status and
// publishes the count on the system channel (for the alarm engine), and clears
// when the consumer catches up.
func TestWatchdogReportsBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := telemetry.NewHub(nil)
		archive := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless, Capacity: 10})
		defer archive.Close()
		health := h.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Capacity: 100,
			Match: func(s *telemetry.Sample) bool { return s.Channel == telemetry.BackpressureChannel }})
		defer health.Close()
		logs := &logRecorder{}
		w := newWatchdog(t, h, telemetry.WatchdogOptions{StallAfter: time.Hour, Logger: slog.New(logs), PublishHealth: true})
		stop := serve(t, w)
		defer stop()
		tick := func() { time.Sleep(time.Second); synctest.Wait() }
		lastHealth := func() float64 {
			got := health.Drain(nil, 0)
			if len(got) == 0 {
				t.Fatal("no health sample published")
			}
			s := got[len(got)-1]
			if s.Device != telemetry.SystemDevice {
				t.Fatalf("health sample %v", s)
			}
			return s.Value.F
		}
		tick()
		if v := lastHealth(); v != 0 {
			t.Fatalf("backpressure %v with nothing queued", v)
		}
		go h.Publish(samples("a", 15)...) // 5 more than the bound: waits
		tick()
		if v := lastHealth(); v != 1 {
			t.Fatalf("backpressure %v while a publisher waits, want 1", v)
		}
		if errs := logs.at(slog.LevelError); len(errs) != 1 || errs[0].attrs["subscriber"] != "archive" {
			t.Fatalf("error logs %+v, want one for archive", errs)
		}
		if got, want := w.Status(), "2 subscriptions; 1 holding publishers back: archive (lossless) 10 queued, at its bound"; got != want {
			t.Errorf("status %q, want %q", got, want)
		}
		// The health samples themselves passed the full queue (PublishNoWait).
		archive.Drain(nil, 0)
		synctest.Wait()
		archive.Drain(nil, 0)
		tick()
		tick()
		if v := lastHealth(); v != 0 {
			t.Fatalf("backpressure %v after the consumer caught up, want 0", v)
		}
		if !strings.HasSuffix(w.Status(), "all draining") {
			t.Errorf("status %q after recovery", w.Status())
		}
	})
}
