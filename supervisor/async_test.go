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

// slowReady is a Readier whose incarnations after the first take readyAfter
// to get ready (forever if readyAfter < 0).
type slowReady struct {
	starts     atomic.Int32
	readyAfter time.Duration
	fail       chan struct{}
}

func (s *slowReady) Serve(ctx context.Context) error { return s.ServeReady(ctx, func() {}) }

func (s *slowReady) ServeReady(ctx context.Context, ready func()) error {
	if s.starts.Add(1) > 1 {
		var after <-chan time.Time
		if s.readyAfter >= 0 {
			after = time.After(s.readyAfter)
		}
		select {
		case <-after:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	ready()
	select {
	case <-s.fail:
		return errNoAnswer
	case <-ctx.Done():
		return nil
	}
}

var errNoAnswer = errors.New("no answer")

// TestOneForOneRestartDoesNotBlock: a one_for_one restart of a slow
// Readier leaves the supervisor free to restart siblings and serve Remove.
func TestOneForOneRestartDoesNotBlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &slowReady{readyAfter: 10 * time.Second, fail: make(chan struct{})}
		b := newWorker("b", &journal{})
		c := newWorker("c", &journal{})
		sup := supervisor.New("devices", supervisor.Options{Rand: noJitter})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "slow", Service: slow})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "b", Service: b})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "c", Service: c})
		sub := sup.Events(0)
		defer sub.Close()
		stop, _ := serve(t, sup)
		synctest.Wait()

		slow.fail <- struct{}{}
		sleep(200 * time.Millisecond) // slow restarted, now getting ready for 10s
		if n := mustChild(t, sup.Snapshot(), "slow"); n.State != supervisor.Starting {
			t.Fatalf("slow %s, want starting", n.State)
		}
		b.exit <- exitErr
		sleep(200 * time.Millisecond)
		if b.starts.Load() != 2 {
			t.Errorf("b not restarted while slow was getting ready")
		}
		if err := sup.Remove("c"); err != nil || c.running.Load() != 0 {
			t.Errorf("Remove while slow was getting ready: %v", err)
		}
		sleep(10 * time.Second)
		if n := mustChild(t, sup.Snapshot(), "slow"); n.State != supervisor.Running || n.Restarts != 1 {
			t.Errorf("slow %+v", n)
		}
		var kinds []string
		for {
			ev, err := sub.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if ev.Child == "slow" {
				kinds = append(kinds, ev.Kind.String())
			}
			if ev.Child == "slow" && ev.Kind == supervisor.EventStarted && ev.Restarts == 1 {
				break
			}
		}
		if got := strings.Join(kinds, ","); got != "started,exited,restart_scheduled,started" {
			t.Errorf("slow events %s", got)
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}

// TestAsyncStartTimeout: a one_for_one restart that never gets ready is
// stopped after StartTimeout and counts as a failure.
func TestAsyncStartTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := &slowReady{readyAfter: -1, fail: make(chan struct{})}
		sup := supervisor.New("devices", supervisor.Options{Rand: noJitter, MaxRestarts: 100})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "slow", Service: slow, StartTimeout: time.Second})
		stop, _ := serve(t, sup)
		synctest.Wait()
		slow.fail <- struct{}{}
		sleep(100*time.Millisecond + time.Second - time.Nanosecond)
		if n := mustChild(t, sup.Snapshot(), "slow"); n.State != supervisor.Starting {
			t.Fatalf("slow %s before its start timeout", n.State)
		}
		sleep(time.Nanosecond)
		n := mustChild(t, sup.Snapshot(), "slow")
		if n.State != supervisor.BackingOff || !strings.Contains(n.LastExit, "not ready in time") {
			t.Errorf("slow after start timeout: %+v", n)
		}
		sleep(200 * time.Millisecond) // second consecutive failure: 200ms
		if slow.starts.Load() != 3 {
			t.Errorf("starts %d, want 3", slow.starts.Load())
		}
		if err := stop(); err != nil {
			t.Error(err)
		}
	})
}
