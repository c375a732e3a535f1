package supervisor_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestStartFailureDuringGroupRestart: under one_for_all, a child that fails
// to start while the group restarts triggers another group restart after
// its own backoff; siblings started before it are stopped again.
func TestStartFailureDuringGroupRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		a, c := newWorker("a", j), newWorker("c", j)
		var bStarts atomic.Int32
		b := supervisor.ReadyFunc(func(ctx context.Context, ready func()) error {
			n := bStarts.Add(1)
			j.add("start b")
			if n == 2 {
				return errors.New("no answer to *IDN?") // fails before ready
			}
			ready()
			<-ctx.Done()
			return nil
		})
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.OneForAll, Rand: noJitter, MaxRestarts: 10})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "c", Service: c})
		stop, _ := serve(t, sup)
		synctest.Wait()
		j.take()
		c.exit <- exitErr
		sleep(150 * time.Millisecond)                        // c's backoff (100ms) passed; b's start fails
		want := "exit c error,stop a,start a,start b,stop a" // b logs no stop
		if got := strings.Join(j.take(), ","); got != want {
			t.Errorf("log %s\nwant %s", got, want)
		}
		n := mustChild(t, sup.Snapshot(), "b")
		if n.State != supervisor.BackingOff || n.LastExit != "no answer to *IDN?" {
			t.Errorf("b %+v", n)
		}
		sleep(time.Second)
		if got := strings.Join(j.take(), ","); got != "start a,start b,start c" {
			t.Errorf("second group restart %s", got)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestRestForOneLaterChildBackingOff: a later child waiting for its own
// restart joins the group restart of an earlier one.
func TestRestForOneLaterChildBackingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		a, b, c := newWorker("a", j), newWorker("b", j), newWorker("c", j)
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.RestForOne, Rand: noJitter, MaxRestarts: 10})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b, Backoff: &supervisor.Backoff{Min: 5 * time.Second}})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "c", Service: c, Backoff: &supervisor.Backoff{Min: time.Hour}})
		stop, _ := serve(t, sup)
		synctest.Wait()
		j.take()
		c.exit <- exitErr // c backs off for an hour
		synctest.Wait()
		b.exit <- exitErr // b and c restart after b's 5s
		sleep(5 * time.Second)
		if got := strings.Join(j.take(), ","); got != "exit c error,exit b error,start b,start c" {
			t.Errorf("log %s", got)
		}
		if a.starts.Load() != 1 {
			t.Error("a restarted under rest_for_one")
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestStopWhileBackingOff: stopping (or removing) during a backoff wait
// leaves nothing behind.
func TestStopWhileBackingOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		a, b := newWorker("a", j), newWorker("b", j)
		sup := supervisor.New("root", supervisor.Options{Backoff: supervisor.Backoff{Min: time.Hour}})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: a})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		stop, _ := serve(t, sup)
		synctest.Wait()
		a.exit <- exitErr
		b.exit <- exitErr
		synctest.Wait()
		if err := sup.Remove("a"); err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
		n := mustChild(t, sup.Snapshot(), "b")
		if n.State != supervisor.Stopped || !n.NextRestart.IsZero() {
			t.Errorf("b after stop: %+v", n)
		}
	})
}

// TestKillHookPanics: a panicking kill hook does not take the supervisor down.
func TestKillHookPanics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorker("w", &journal{})
		w.ignoreCancel = true
		sup := supervisor.New("root", supervisor.Options{})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w, Shutdown: time.Second,
			Kill: func() { panic("socket already closed") }})
		stop, _ := serve(t, sup)
		synctest.Wait()
		if err := stop(); !errors.Is(err, supervisor.ErrLeaked) {
			t.Errorf("Serve: %v", err)
		}
		close(w.release)
		synctest.Wait()
	})
}

// TestTransientSiblingRestartedWithGroup documents OTP's one_for_all rule:
// a transient child that had exited normally is started again when a
// sibling's failure restarts the group.
func TestTransientSiblingRestartedWithGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		j := &journal{}
		tr, p := newWorker("tr", j), newWorker("p", j)
		sup := supervisor.New("root", supervisor.Options{Strategy: supervisor.OneForAll, Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "tr", Service: tr, Restart: supervisor.Transient})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "p", Service: p})
		stop, _ := serve(t, sup)
		synctest.Wait()
		tr.exit <- exitNil
		sleep(time.Second)
		if tr.starts.Load() != 1 {
			t.Fatal("transient restarted after a normal exit")
		}
		p.exit <- exitErr
		sleep(time.Second)
		if tr.starts.Load() != 2 || p.starts.Load() != 2 {
			t.Errorf("starts tr=%d p=%d, want 2 2", tr.starts.Load(), p.starts.Load())
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestRestartedSupervisorStartsAfresh: a supervisor served again after
// escalating starts all its children again, with fresh intensity.
func TestRestartedSupervisorStartsAfresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorker("w", &journal{})
		sup := supervisor.New("s", supervisor.Options{MaxRestarts: -1})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w})
		stop, done := serve(t, sup)
		synctest.Wait()
		w.exit <- exitErr
		<-done
		if err := stop(); !errors.Is(err, supervisor.ErrIntensity) {
			t.Fatalf("Serve: %v", err)
		}
		stop, _ = serve(t, sup)
		synctest.Wait()
		if n := mustChild(t, sup.Snapshot(), "w"); n.State != supervisor.Running || n.Restarts != 1 {
			t.Errorf("w after re-serve: %+v", n)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestOwnCancellationIsNormal: whatever a child returns after its
// supervisor cancelled it is a normal shutdown: no restart, no intensity.
func TestOwnCancellationIsNormal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sockErr := supervisor.ServiceFunc(func(ctx context.Context) error {
			<-ctx.Done()
			return errors.New("read tcp: use of closed network connection")
		})
		sup := supervisor.New("root", supervisor.Options{MaxRestarts: -1}) // any restart escalates
		mustAdd(t, sup, supervisor.ChildSpec{ID: "a", Service: sockErr, Restart: supervisor.Transient})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: sockErr})
		stop, done := serve(t, sup)
		synctest.Wait()
		if err := sup.Remove("a"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		select {
		case <-done:
			t.Fatalf("escalated after Remove: %v", stop())
		default:
		}
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
		if n := mustChild(t, sup.Snapshot(), "b"); n.State != supervisor.Stopped || n.LastExit != "shutdown: read tcp: use of closed network connection" {
			t.Errorf("b %+v", n)
		}
	})
}

// TestPanicLogged: a panic is logged at error level with its stack.
func TestPanicLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf strings.Builder
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil))
		w := newWorker("w", &journal{})
		sup := supervisor.New("root", supervisor.Options{Logger: log})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w})
		stop, _ := serve(t, sup)
		synctest.Wait()
		w.exit <- exitPanic
		synctest.Wait()
		if err := stop(); err != nil {
			t.Error(err)
		}
		mu.Lock()
		out := buf.String()
		mu.Unlock()
		if !strings.Contains(out, "level=ERROR msg=\"child panicked\" supervisor=root child=w panic=kaboom stack=") || !strings.Contains(out, "exitWith") {
			t.Errorf("log:\n%s", out)
		}
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
