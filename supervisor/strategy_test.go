package supervisor_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestStrategyRestartExit is the table over strategy × restart type × exit
// kind: children a, b, c (a and c permanent); b exits by itself.
func TestStrategyRestartExit(t *testing.T) {
	strategies := []supervisor.Strategy{supervisor.OneForOne, supervisor.OneForAll, supervisor.RestForOne}
	restarts := []supervisor.RestartType{supervisor.Permanent, supervisor.Transient, supervisor.Temporary}
	exits := []exitKind{exitNil, exitErr, exitPanic, exitForeignCancel}
	for _, st := range strategies {
		for _, rt := range restarts {
			for _, ek := range exits {
				t.Run(fmt.Sprintf("%s/%s/%s", st, rt, ek), func(t *testing.T) {
					synctest.Test(t, func(t *testing.T) { strategyCase(t, st, rt, ek) })
				})
			}
		}
	}
}

func strategyCase(t *testing.T, st supervisor.Strategy, rt supervisor.RestartType, ek exitKind) {
	j := &journal{}
	a, b, c := newWorker("a", j), newWorker("b", j), newWorker("c", j)
	sup := supervisor.New("root", supervisor.Options{Strategy: st, Rand: noJitter})
	mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
	mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b, Restart: rt})
	mustAdd(t, sup, supervisor.ChildSpec{ID: "c", Service: c})
	stop, _ := serve(t, sup)
	synctest.Wait()
	if got := strings.Join(j.take(), ","); got != "start a,start b,start c" {
		t.Fatalf("start order: %s", got)
	}

	b.exit <- ek
	synctest.Wait()

	restartB := rt == supervisor.Permanent || (rt == supervisor.Transient && ek.abnormal())
	snap := sup.Snapshot()
	nb, present := child(t, snap, "b")
	switch {
	case restartB:
		if nb.State != supervisor.BackingOff || nb.NextRestart.IsZero() {
			t.Errorf("b before restart: state %s next %v, want backoff with a time", nb.State, nb.NextRestart)
		}
	case rt == supervisor.Temporary:
		if present {
			t.Errorf("temporary b still listed after exiting: %+v", nb)
		}
	default:
		if nb.State != supervisor.Stopped {
			t.Errorf("b state %s, want stopped", nb.State)
		}
	}
	if present && ek == exitPanic && !strings.Contains(nb.LastExit, "panic: kaboom") || present && ek == exitPanic && !strings.Contains(nb.LastExit, "goroutine") {
		t.Errorf("b LastExit lacks panic value or stack: %q", nb.LastExit)
	}

	sleep(time.Second) // past the 100ms backoff
	want := map[string]int32{"a": 1, "b": 1, "c": 1}
	if restartB {
		want["b"] = 2
		if st == supervisor.OneForAll {
			want["a"] = 2
		}
		if st != supervisor.OneForOne {
			want["c"] = 2
		}
	}
	for _, w := range []*worker{a, b, c} {
		if got := w.starts.Load(); got != want[w.id] {
			t.Errorf("%s started %d times, want %d", w.id, got, want[w.id])
		}
	}
	log := j.take()
	if restartB && st == supervisor.OneForAll {
		// Siblings stop in reverse order, then all start in order.
		wantLog := []string{"exit b " + ek.String(), "stop c", "stop a", "start a", "start b", "start c"}
		if strings.Join(log, ",") != strings.Join(wantLog, ",") {
			t.Errorf("log %q, want %q", log, wantLog)
		}
	}
	if restartB {
		if n := mustChild(t, sup.Snapshot(), "b"); n.Restarts != 1 || n.State != supervisor.Running {
			t.Errorf("b after restart: %+v", n)
		}
	}
	// Shutdown stops every running child, in reverse start order: exactly
	// the children the tree shows running now, last first.
	var wantStop []string
	for _, n := range sup.Snapshot().Children {
		if n.State == supervisor.Running {
			wantStop = append([]string{"stop " + n.ID}, wantStop...)
		}
	}
	if len(wantStop) < 2 {
		t.Fatalf("%d children running before shutdown, want at least a and c", len(wantStop))
	}
	if err := stop(); err != nil {
		t.Errorf("Serve: %v", err)
	}
	if got := j.take(); strings.Join(got, ",") != strings.Join(wantStop, ",") {
		t.Errorf("shutdown log %q, want %q (every running child, in reverse order)", got, wantStop)
	}
}

// TestTemporarySiblingsNotRestarted: a sibling's failure stops temporary
// children and they never come back.
func TestTemporarySiblingsNotRestarted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		a, b, c := newWorker("a", j), newWorker("b", j), newWorker("c", j)
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.OneForAll, Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a, Restart: supervisor.Temporary})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "c", Service: c, Restart: supervisor.Temporary})
		stop, _ := serve(t, sup)
		synctest.Wait()
		b.exit <- exitErr
		sleep(time.Second)
		if a.starts.Load() != 1 || c.starts.Load() != 1 || b.starts.Load() != 2 {
			t.Errorf("starts a=%d b=%d c=%d, want 1 2 1", a.starts.Load(), b.starts.Load(), c.starts.Load())
		}
		snap := sup.Snapshot()
		if len(snap.Children) != 1 || snap.Children[0].ID != "b" {
			t.Errorf("children after restart: %+v", snap.Children)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestReadinessOrder: each start waits for the previous child's ready call.
func TestReadinessOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		slow := supervisor.ReadyFunc(func(ctx context.Context, ready func()) error {
			j.add("dialing")
			time.Sleep(2 * time.Second)
			j.add("ready slow")
			ready()
			<-ctx.Done()
			return nil
		})
		b := newWorker("b", j)
		sup := supervisor.New("root", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "slow", Service: slow})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		stop, _ := serve(t, sup)
		synctest.Wait()
		if n := mustChild(t, sup.Snapshot(), "slow"); n.State != supervisor.Starting {
			t.Errorf("slow state %s, want starting", n.State)
		}
		sleep(3 * time.Second)
		if got := strings.Join(j.take(), ","); got != "dialing,ready slow,start b" {
			t.Errorf("log %s", got)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestStartTimeout: a child that never becomes ready is stopped and counts
// as failed.
func TestStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts int
		never := supervisor.ReadyFunc(func(ctx context.Context, ready func()) error {
			starts++
			<-ctx.Done()
			return ctx.Err()
		})
		sup := supervisor.New("root", supervisor.Options{Rand: noJitter, MaxRestarts: 100})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "never", Service: never, StartTimeout: time.Second})
		stop, _ := serve(t, sup)
		sleep(1500 * time.Millisecond)
		n := mustChild(t, sup.Snapshot(), "never")
		if starts != 2 || !strings.Contains(n.LastExit, "not ready in time") {
			t.Errorf("starts %d, node %+v", starts, n)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}
