package supervisor_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

func TestSignificantChildren(t *testing.T) {
	type step struct {
		who  string // "s1" or "s2"
		kind exitKind
	}
	cases := []struct {
		name   string
		mode   supervisor.AutoShutdown
		rt     supervisor.RestartType
		steps  []step
		stops  bool // the supervisor stops by itself after the steps
		starts int32
	}{
		{"any/transient normal", supervisor.AnySignificant, supervisor.Transient, []step{{"s1", exitNil}}, true, 1},
		{"any/transient error restarts", supervisor.AnySignificant, supervisor.Transient, []step{{"s1", exitErr}}, false, 2},
		{"any/temporary error", supervisor.AnySignificant, supervisor.Temporary, []step{{"s1", exitErr}}, true, 1},
		{"all/one of two", supervisor.AllSignificant, supervisor.Transient, []step{{"s1", exitNil}}, false, 1},
		{"all/both", supervisor.AllSignificant, supervisor.Transient, []step{{"s1", exitNil}, {"s2", exitNil}}, true, 1},
		{"never", supervisor.Never, supervisor.Temporary, []step{{"s1", exitNil}, {"s2", exitNil}}, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				j := &journal{}
				s1, s2, other := newWorker("s1", j), newWorker("s2", j), newWorker("other", j)
				sup := supervisor.New("root", supervisor.Options{AutoShutdown: tc.mode, Rand: noJitter})
				mustAdd(t, sup, supervisor.ChildSpec{ID: "other", Service: other})
				mustAdd(t, sup, supervisor.ChildSpec{ID: "s1", Service: s1, Restart: tc.rt, Significant: true})
				mustAdd(t, sup, supervisor.ChildSpec{ID: "s2", Service: s2, Restart: tc.rt, Significant: true})
				stop, done := serve(t, sup)
				synctest.Wait()
				for _, st := range tc.steps {
					map[string]*worker{"s1": s1, "s2": s2}[st.who].exit <- st.kind
					synctest.Wait()
				}
				sleep(time.Second)
				select {
				case <-done:
					if !tc.stops {
						t.Fatalf("supervisor stopped: %v", stop())
					}
					if err := stop(); err != nil {
						t.Errorf("auto-shutdown should be a normal exit, got %v", err)
					}
					if other.running.Load() != 0 {
						t.Error("other child still running after auto-shutdown")
					}
				default:
					if tc.stops {
						t.Fatal("supervisor did not shut down")
					}
					if err := stop(); err != nil {
						t.Error(err)
					}
				}
				if got := s1.starts.Load(); got != tc.starts {
					t.Errorf("s1 started %d times, want %d", got, tc.starts)
				}
			})
		})
	}
}

func TestSignificantMustNotBePermanent(t *testing.T) {
	sup := supervisor.New("root", supervisor.Options{})
	err := sup.Add(supervisor.ChildSpec{ID: "x", Service: newWorker("x", &journal{}), Significant: true})
	if err == nil || !strings.Contains(err.Error(), "significant") {
		t.Errorf("Add: %v", err)
	}
}

// TestKillHook: a child that ignores cancellation is killed after its
// shutdown timeout, and the kill makes it exit: not leaked.
func TestKillHook(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		w := newWorker("dev", j)
		w.ignoreCancel = true
		var killedAt time.Time
		start := time.Now()
		sup := supervisor.New("root", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "dev", Service: w, Shutdown: 2 * time.Second,
			Kill: func() { killedAt = time.Now(); close(w.release) }})
		stop, _ := serve(t, sup)
		synctest.Wait()
		if err := stop(); err != nil {
			t.Fatalf("Serve: %v", err)
		}
		if got := killedAt.Sub(start); got != 2*time.Second {
			t.Errorf("killed after %v, want 2s", got)
		}
		if n := mustChild(t, sup.Snapshot(), "dev"); n.State != supervisor.Stopped {
			t.Errorf("state %s", n.State)
		}
	})
}

// TestLeakedChild: a child that survives shutdown and kill is Leaked, is
// never started beside itself, and is restarted once its goroutine ends.
func TestLeakedChild(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		stuck, b := newWorker("stuck", j), newWorker("b", j)
		stuck.ignoreCancel = true
		var kills atomic.Int32
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.OneForAll, Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "stuck", Service: stuck, Shutdown: time.Second, KillWait: time.Second,
			Kill: func() { kills.Add(1) }})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		sub := sup.Events(64)
		defer sub.Close()
		stop, _ := serve(t, sup)
		synctest.Wait()

		b.exit <- exitErr // one_for_all: stuck must stop, and cannot
		sleep(10 * time.Second)
		snap := sup.Snapshot()
		if n := mustChild(t, snap, "stuck"); n.State != supervisor.Leaked || !strings.Contains(n.LastExit, "leaked") {
			t.Errorf("stuck: %+v", n)
		}
		if n := mustChild(t, snap, "b"); n.State != supervisor.Running {
			t.Errorf("b: %+v", n)
		}
		if stuck.starts.Load() != 1 || kills.Load() != 1 {
			t.Errorf("stuck starts %d kills %d, want 1 1", stuck.starts.Load(), kills.Load())
		}

		stuck.release <- struct{}{} // the goroutine finally ends
		sleep(time.Second)
		if stuck.starts.Load() != 2 || stuck.maxRun.Load() != 1 {
			t.Errorf("stuck starts %d, max concurrent %d; want 2, 1", stuck.starts.Load(), stuck.maxRun.Load())
		}
		if n := mustChild(t, sup.Snapshot(), "stuck"); n.State != supervisor.Running {
			t.Errorf("stuck after release: %+v", n)
		}
		var sawLeak bool
		for {
			ev, err := sub.Next(t.Context())
			if err != nil || ev.Kind == supervisor.EventStarted && ev.Child == "stuck" && ev.Restarts == 1 {
				break
			}
			sawLeak = sawLeak || ev.Kind == supervisor.EventLeaked && ev.Child == "stuck"
		}
		if !sawLeak {
			t.Error("no leaked event")
		}
		// The new incarnation also ignores cancellation, but ends within its
		// shutdown timeout: stop waits for it.
		go func() { time.Sleep(500 * time.Millisecond); stuck.release <- struct{}{} }()
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// TestLeakedOnShutdownAndRemove: Serve reports leaked children, and
// Remove refuses to forget one until its goroutine ends.
func TestLeakedOnShutdownAndRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		stuck := newWorker("stuck", j)
		stuck.ignoreCancel = true
		sup := supervisor.New("root", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "stuck", Service: stuck, Shutdown: time.Second})
		stop, _ := serve(t, sup)
		synctest.Wait()
		if err := stop(); !errors.Is(err, supervisor.ErrLeaked) {
			t.Errorf("Serve: %v, want leaked", err)
		}
		// Served again while the old goroutine runs: not started beside it.
		stop, _ = serve(t, sup)
		synctest.Wait()
		if stuck.starts.Load() != 1 {
			t.Errorf("started beside its leaked self")
		}
		if err := sup.Remove("stuck"); !errors.Is(err, supervisor.ErrLeaked) {
			t.Errorf("Remove: %v", err)
		}
		if err := sup.Add(supervisor.ChildSpec{ID: "stuck", Service: stuck}); !errors.Is(err, supervisor.ErrDuplicate) {
			t.Errorf("re-Add while leaked: %v", err)
		}
		close(stuck.release)
		synctest.Wait()
		if _, ok := child(t, sup.Snapshot(), "stuck"); ok {
			t.Error("removed leaked child still listed after it ended")
		}
		if stuck.starts.Load() != 1 {
			t.Errorf("removed child restarted")
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

func TestDynamicChildren(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		sup := supervisor.New("devices", supervisor.Options{})
		stop, _ := serve(t, sup)
		synctest.Wait()
		a, b := newWorker("a", j), newWorker("b", j)
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		if n := mustChild(t, sup.Snapshot(), "b"); n.State != supervisor.Running {
			t.Errorf("b after Add: %s", n.State)
		}
		if err := sup.Add(supervisor.ChildSpec{ID: "a", Service: a}); !errors.Is(err, supervisor.ErrDuplicate) {
			t.Errorf("duplicate Add: %v", err)
		}
		if err := sup.Add(supervisor.ChildSpec{ID: "", Service: a}); err == nil {
			t.Error("Add with empty ID succeeded")
		}
		if err := sup.Remove("a"); err != nil {
			t.Fatal(err)
		}
		if a.running.Load() != 0 {
			t.Error("a still running after Remove")
		}
		if err := sup.Remove("a"); !errors.Is(err, supervisor.ErrNotFound) {
			t.Errorf("second Remove: %v", err)
		}
		if got := len(sup.Snapshot().Children); got != 1 {
			t.Errorf("%d children, want 1", got)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		if err := sup.Remove("b"); err != nil {
			t.Errorf("Remove while stopped: %v", err)
		}
	})
}

func TestServeTwice(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sup := supervisor.New("root", supervisor.Options{})
		stop, _ := serve(t, sup)
		synctest.Wait()
		if err := sup.Serve(t.Context()); !errors.Is(err, supervisor.ErrAlreadyRunning) {
			t.Errorf("second Serve: %v", err)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestSnapshotNeverBlocks: a snapshot taken while the supervisor waits for
// a stuck child's shutdown returns at once and shows it Stopping.
func TestSnapshotNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		stuck := newWorker("stuck", j)
		stuck.ignoreCancel = true
		sup := supervisor.New("root", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "stuck", Service: stuck, Shutdown: time.Hour,
			Kill: func() { close(stuck.release) }})
		stop, _ := serve(t, sup)
		synctest.Wait()
		errc := make(chan error)
		go func() { errc <- stop() }()
		synctest.Wait() // now blocked waiting for stuck, for an hour of fake time
		snap := sup.Snapshot()
		if snap.State != supervisor.Stopping || mustChild(t, snap, "stuck").State != supervisor.Stopping {
			t.Errorf("snapshot during shutdown: %+v", snap)
		}
		if err := <-errc; err != nil {
			t.Error(err)
		}
	})
}

func TestMaxChildren(t *testing.T) {
	sup := supervisor.New("devices", supervisor.Options{MaxChildren: 1})
	j := &journal{}
	mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: newWorker("a", j)})
	if err := sup.Add(supervisor.ChildSpec{ID: "b", Service: newWorker("b", j)}); !errors.Is(err, supervisor.ErrTooManyChildren) {
		t.Errorf("Add beyond MaxChildren: %v", err)
	}
}

// TestNestedOrder: a nested supervisor's children all start before the
// parent's next child, and shutdown runs in exact reverse.
func TestNestedOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		sub := supervisor.New("sub", supervisor.Options{})
		mustAdd(t, sub, supervisor.ChildSpec{ID: "a", Service: newWorker("a", j)})
		mustAdd(t, sub, supervisor.ChildSpec{ID: "b", Service: newWorker("b", j)})
		root := supervisor.New("root", supervisor.Options{})
		mustAdd(t, root, supervisor.ChildSpec{ID: "sub", Service: sub})
		mustAdd(t, root, supervisor.ChildSpec{ID: "c", Service: newWorker("c", j)})
		stop, _ := serve(t, root)
		synctest.Wait()
		if got := strings.Join(j.take(), ","); got != "start a,start b,start c" {
			t.Errorf("start order %s", got)
		}
		snap := root.Snapshot()
		if n := mustChild(t, snap, "sub"); n.Kind != "supervisor" || n.Strategy != "one_for_one" || len(n.Children) != 2 || n.State != supervisor.Running {
			t.Errorf("sub node %+v", n)
		}
		if n, ok := snap.Find("sub", "b"); !ok || n.ID != "b" || n.State != supervisor.Running {
			t.Errorf("Find(sub, b) = %+v, %v", n, ok)
		}
		if _, ok := snap.Find("sub", "c"); ok {
			t.Error("Find(sub, c) found a child of root")
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		if got := strings.Join(j.take(), ","); got != "stop c,stop b,stop a" {
			t.Errorf("stop order %s", got)
		}
		other := supervisor.New("other", supervisor.Options{})
		if err := other.Add(supervisor.ChildSpec{ID: "sub", Service: sub}); err == nil {
			t.Error("a supervisor was added to two parents")
		}
		if err := sub.Add(supervisor.ChildSpec{ID: "root", Service: root}); err == nil {
			t.Error("a supervisor was added below itself")
		}
		if err := root.Add(supervisor.ChildSpec{ID: "self", Service: root}); err == nil {
			t.Error("a supervisor was added to itself")
		}
	})
}

// TestManualRestart: Restart bypasses backoff and intensity and restarts
// only that child.
func TestManualRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		a, b := newWorker("a", j), newWorker("b", j)
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.OneForAll, MaxRestarts: -1})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b, Restart: supervisor.Temporary})
		if err := sup.Restart("a"); !errors.Is(err, supervisor.ErrNotRunning) {
			t.Errorf("Restart before Serve: %v", err)
		}
		stop, done := serve(t, sup)
		synctest.Wait()
		j.take()
		for range 3 {
			if err := sup.Restart("b"); err != nil {
				t.Fatal(err)
			}
		}
		if got := strings.Join(j.take(), ","); got != "stop b,start b,stop b,start b,stop b,start b" {
			t.Errorf("log %s", got)
		}
		select {
		case <-done:
			t.Fatalf("manual restarts counted as intensity: %v", stop())
		default:
		}
		if n := mustChild(t, sup.Snapshot(), "b"); n.Restarts != 3 || n.State != supervisor.Running {
			t.Errorf("b %+v", n)
		}
		if err := sup.Restart("zz"); !errors.Is(err, supervisor.ErrNotFound) {
			t.Errorf("Restart unknown: %v", err)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestReportStatus: a running child's reported status shows in the
// snapshot and each change is one status event; repeats emit nothing, and a
// stopped incarnation's context reports nothing.
func TestReportStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		say := make(chan string)
		var last context.Context
		psu1 := supervisor.ServiceFunc(func(ctx context.Context) error {
			last = ctx
			for {
				select {
				case st := <-say:
					supervisor.ReportStatus(ctx, st)
				case <-ctx.Done():
					return nil
				}
			}
		})
		sup := supervisor.New("devices", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "psu1", Service: psu1})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "psu2", Service: newWorker("psu2", &journal{})})
		events := sup.Events(0)
		defer events.Close()
		stop, _ := serve(t, sup)
		synctest.Wait()
		for _, st := range []string{"connecting", "backoff: connection refused", "backoff: connection refused", "connected"} {
			say <- st
		}
		synctest.Wait()
		var got []string
		for {
			ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
			ev, err := events.Next(ctx)
			cancel()
			if err != nil {
				break
			}
			if ev.Kind == supervisor.EventStatus {
				got = append(got, ev.Child+": "+ev.Reason)
			}
		}
		want := []string{"psu1: connecting", "psu1: backoff: connection refused", "psu1: connected"}
		if !slices.Equal(got, want) {
			t.Errorf("status events %q, want %q", got, want)
		}
		snap := sup.Snapshot()
		if n := mustChild(t, snap, "psu1"); n.State != supervisor.Running || n.Status != "connected" {
			t.Errorf("psu1 = %+v, want running, status connected", n)
		}
		if n := mustChild(t, snap, "psu2"); n.Status != "" {
			t.Errorf("psu2 status %q, want none", n.Status)
		}
		// Only the child's own context reports.
		supervisor.ReportStatus(t.Context(), "not a child")
		if err := stop(); err != nil {
			t.Error(err)
		}
		supervisor.ReportStatus(last, "after stop")
		if n := mustChild(t, sup.Snapshot(), "psu1"); n.State != supervisor.Stopped || n.Status != "" {
			t.Errorf("psu1 after stop = %+v, want stopped without status", n)
		}
		for {
			ctx, cancel := context.WithTimeout(t.Context(), time.Millisecond)
			ev, err := events.Next(ctx)
			cancel()
			if err != nil {
				break
			}
			if ev.Kind == supervisor.EventStatus {
				t.Errorf("status event %+v after the last report", ev)
			}
		}
	})
}

// TestRestartPath: an operator's restart reaches a grandchild through its
// supervisor; unknown paths are ErrNotFound.
func TestRestartPath(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		devices := supervisor.New("devices", supervisor.Options{})
		psu := newWorker("psu1", j)
		mustAdd(t, devices, supervisor.ChildSpec{ID: "psu1", Service: psu})
		root := supervisor.New("root", supervisor.Options{})
		mustAdd(t, root, supervisor.ChildSpec{ID: "devices", Service: devices})
		mustAdd(t, root, supervisor.ChildSpec{ID: "api", Service: newWorker("api", j)})
		stop, _ := serve(t, root)
		synctest.Wait()
		if err := root.RestartPath("devices", "psu1"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := psu.starts.Load(); n != 2 {
			t.Errorf("psu1 started %d times, want 2", n)
		}
		for _, path := range [][]string{{}, {"nope", "psu1"}, {"api", "psu1"}, {"devices", "nope"}} {
			if err := root.RestartPath(path...); !errors.Is(err, supervisor.ErrNotFound) {
				t.Errorf("RestartPath(%q) = %v, want ErrNotFound", path, err)
			}
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestReportStatusAtOnce: a status reported as soon as Serve starts, before
// the supervisor has gone on, is kept (a device that connects at once).
func TestReportStatusAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sup := supervisor.New("devices", supervisor.Options{})
		for _, id := range []string{"psu1", "psu2", "psu3", "psu4"} {
			mustAdd(t, sup, supervisor.ChildSpec{ID: id, Service: supervisor.ServiceFunc(func(ctx context.Context) error {
				supervisor.ReportStatus(ctx, "connected")
				<-ctx.Done()
				return nil
			})})
		}
		stop, _ := serve(t, sup)
		synctest.Wait()
		for _, n := range sup.Snapshot().Children {
			if n.Status != "connected" {
				t.Errorf("%s: status %q, want the one it reported at once", n.ID, n.Status)
			}
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}
