package supervisor_test

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestBackoffSchedule: consecutive failures wait 100, 200, 400ms; the child
// is BackingOff with NextRestart meanwhile; a stable run resets the delay.
func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		w := newWorker("w", j)
		sup := supervisor.New("root", supervisor.Options{Rand: noJitter, MaxRestarts: 100})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w})
		stop, _ := serve(t, sup)
		synctest.Wait()
		for _, want := range []time.Duration{100, 200, 400, 800} {
			want *= time.Millisecond
			failed := time.Now()
			w.exit <- exitErr
			synctest.Wait()
			n := mustChild(t, sup.Snapshot(), "w")
			if n.State != supervisor.BackingOff || n.NextRestart.Sub(failed) != want {
				t.Fatalf("after failure: state %s next in %v, want backoff in %v", n.State, n.NextRestart.Sub(failed), want)
			}
			sleep(want - time.Nanosecond)
			if w.running.Load() != 0 {
				t.Fatalf("restarted before %v", want)
			}
			sleep(time.Nanosecond)
			if w.running.Load() != 1 {
				t.Fatalf("not restarted at %v", want)
			}
		}
		sleep(31 * time.Second) // stable: past ResetAfter
		failed := time.Now()
		w.exit <- exitErr
		synctest.Wait()
		if n := mustChild(t, sup.Snapshot(), "w"); n.NextRestart.Sub(failed) != 100*time.Millisecond {
			t.Errorf("after a stable run the delay is %v, want 100ms", n.NextRestart.Sub(failed))
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestChildBackoffOverride: ChildSpec.Backoff replaces Options.Backoff.
func TestChildBackoffOverride(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorker("w", &journal{})
		sup := supervisor.New("root", supervisor.Options{Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w, Backoff: &supervisor.Backoff{Min: 3 * time.Second}})
		stop, _ := serve(t, sup)
		synctest.Wait()
		failed := time.Now()
		w.exit <- exitErr
		synctest.Wait()
		if n := mustChild(t, sup.Snapshot(), "w"); n.NextRestart.Sub(failed) != 3*time.Second {
			t.Errorf("next restart in %v, want 3s", n.NextRestart.Sub(failed))
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestNoJitterIsKept: Jitter < 0 means no jitter, for Options.Backoff and for
// a ChildSpec's own, however random the supervisor's Rand. (Defaults used to be
// applied twice, and the second time turned "none" back into 0.2.)
func TestNoJitterIsKept(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		almostOne := func() float64 { return 0.999 }
		opts := supervisor.Options{Rand: almostOne, Backoff: supervisor.Backoff{Min: time.Second, Jitter: -1}}
		sup := supervisor.New("root", opts)
		a, b := newWorker("a", &journal{}), newWorker("b", &journal{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b, Backoff: &supervisor.Backoff{Min: 2 * time.Second, Jitter: -1}})
		stop, _ := serve(t, sup)
		synctest.Wait()
		for _, c := range []struct {
			w    *worker
			want time.Duration
		}{{a, time.Second}, {b, 2 * time.Second}} {
			failed := time.Now()
			c.w.exit <- exitErr
			synctest.Wait()
			if n := mustChild(t, sup.Snapshot(), c.w.id); n.NextRestart.Sub(failed) != c.want {
				t.Errorf("%s: next restart in %v, want exactly %v", c.w.id, n.NextRestart.Sub(failed), c.want)
			}
			sleep(c.want)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}
