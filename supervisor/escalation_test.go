package supervisor_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestEscalationThreeLevels: a worker that always fails exhausts its
// supervisor's intensity, which fails to its parent, and so on up to the
// root, whose Serve returns the chain.
func TestEscalationThreeLevels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts atomic.Int32
		bad := supervisor.ServiceFunc(func(ctx context.Context) error {
			starts.Add(1)
			return errors.New("no instrument")
		})
		// Intensity 1 per level and immediate restarts (Min < 0).
		opts := supervisor.Options{MaxRestarts: 1, MaxTime: 5 * time.Second, Backoff: supervisor.Backoff{Min: -1}}
		leaf := supervisor.New("leaf", opts)
		mid := supervisor.New("mid", opts)
		root := supervisor.New("root", opts)
		mustAdd(t, leaf, supervisor.ChildSpec{ID: "dev", Service: bad})
		mustAdd(t, mid, supervisor.ChildSpec{ID: "leaf", Service: leaf})
		mustAdd(t, root, supervisor.ChildSpec{ID: "mid", Service: mid})

		sub := root.Events(1024)
		defer sub.Close()
		err := root.Serve(t.Context())

		if !errors.Is(err, supervisor.ErrIntensity) {
			t.Fatalf("Serve: %v, want restart intensity exceeded", err)
		}
		// Each level runs its child twice: 2 × 2 × 2 worker starts.
		if got := starts.Load(); got != 8 {
			t.Errorf("worker started %d times, want 8", got)
		}
		var chain []string
		for e := error(err); e != nil; e = errors.Unwrap(e) {
			var esc *supervisor.EscalationError
			if errors.As(e, &esc) && esc == e {
				chain = append(chain, esc.Supervisor+"/"+esc.Child)
			}
		}
		if got := strings.Join(chain, " > "); got != "root/mid > mid/leaf > leaf/dev" {
			t.Errorf("escalation chain %q", got)
		}
		if !strings.Contains(err.Error(), "no instrument") {
			t.Errorf("root error hides the cause: %v", err)
		}
		snap := root.Snapshot()
		if snap.State != supervisor.Stopped || snap.LastExit != err.Error() {
			t.Errorf("root snapshot %+v", snap)
		}
		mid1 := mustChild(t, snap, "mid")
		if mid1.Kind != "supervisor" || mid1.Restarts != 1 || len(mid1.Children) != 1 {
			t.Errorf("mid node %+v", mid1)
		}

		// Nested supervisors' events reach the root's stream with their path.
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var sawLeaf bool
		var last uint64
		for {
			ev, err := sub.Next(ctx)
			if err != nil {
				break
			}
			if last != 0 && ev.Seq != last+1 {
				t.Errorf("seq %d after %d", ev.Seq, last)
			}
			last = ev.Seq
			if ev.Path == "root/mid/leaf" && ev.Child == "dev" && ev.Kind == supervisor.EventExited {
				sawLeaf = true
			}
		}
		if !sawLeaf || sub.Dropped() != 0 {
			t.Errorf("saw leaf exit in root stream: %v; dropped %d", sawLeaf, sub.Dropped())
		}
	})
}

// TestIntensityWindow: restarts spread beyond MaxTime never escalate.
func TestIntensityWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		w := newWorker("w", j)
		sup := supervisor.New("root", supervisor.Options{MaxRestarts: 2, MaxTime: 5 * time.Second, Backoff: supervisor.Backoff{Min: -1}})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w})
		stop, done := serve(t, sup)
		synctest.Wait()
		for range 10 {
			w.exit <- exitErr
			sleep(3 * time.Second) // two restarts per 6s: never more than 2 in 5s
		}
		select {
		case <-done:
			t.Fatalf("escalated: %v", stop())
		default:
		}
		sleep(6 * time.Second) // the window is empty again
		w.exit <- exitErr
		w.exit <- exitErr
		synctest.Wait()
		select {
		case <-done:
			t.Fatalf("escalated after 2 restarts: %v", stop())
		default:
		}
		w.exit <- exitErr // the third within 5s
		<-done
		if err := stop(); !errors.Is(err, supervisor.ErrIntensity) {
			t.Errorf("Serve: %v", err)
		}
	})
}
