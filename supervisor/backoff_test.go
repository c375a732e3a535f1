package supervisor_test

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

func TestBackoffDelay(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		b    supervisor.Backoff
		n    int
		r    float64
		want time.Duration
	}{
		{"defaults first", supervisor.Backoff{}, 1, 0, 100 * ms},
		{"doubles", supervisor.Backoff{}, 4, 0, 800 * ms},
		{"capped", supervisor.Backoff{}, 40, 0, 30 * time.Second},
		{"jitter removes up to 20%", supervisor.Backoff{}, 1, 0.5, 90 * ms},
		{"jitter never exceeds cap", supervisor.Backoff{Max: time.Second}, 20, 0.999, time.Second - time.Duration(float64(time.Second)*0.2*0.999)},
		{"no jitter", supervisor.Backoff{Jitter: -1}, 2, 0.9, 200 * ms},
		{"immediate", supervisor.Backoff{Min: -1}, 5, 0.5, 0},
		{"custom", supervisor.Backoff{Min: time.Second, Max: 5 * time.Second, Jitter: -1}, 3, 0, 4 * time.Second},
	}
	for _, tc := range cases {
		if got := tc.b.Delay(tc.n, tc.r); got != tc.want {
			t.Errorf("%s: Delay(%d, %v) = %v, want %v", tc.name, tc.n, tc.r, got, tc.want)
		}
	}
}

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

func TestRetryWalksAndResets(t *testing.T) {
	r := supervisor.Retry{
		Backoff: supervisor.Backoff{Min: 100 * time.Millisecond, Max: 350 * time.Millisecond, Jitter: 0.5},
		Rand:    func() float64 { return 0 },
	}
	var got []time.Duration
	for range 4 {
		got = append(got, r.Next())
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 350 * time.Millisecond, 350 * time.Millisecond}
	if !slices.Equal(got, want) {
		t.Fatalf("delays %v, want %v", got, want)
	}
	r.Reset()
	r.Rand = func() float64 { return 0.999 }
	if d := r.Next(); d <= 50*time.Millisecond || d > 51*time.Millisecond {
		t.Fatalf("after Reset, fully jittered first delay %v, want just over half of 100ms", d)
	}
}
