// Package supervisortest holds helpers for tests of code that runs under a
// supervisor.Supervisor. They work inside testing/synctest bubbles.
package supervisortest

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// Serve runs sup on its own goroutine until stop is called or the test
// ends. stop cancels it, waits, and returns Serve's error; it is
// idempotent and meant to be called from the test's goroutine. At cleanup, a Serve that returned an error nobody asked for
// through stop fails the test.
func Serve(t testing.TB, sup *supervisor.Supervisor) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = sup.Serve(ctx)
	}()
	asked := false
	stop = func() error {
		asked = true
		cancel()
		<-done
		return err
	}
	t.Cleanup(func() {
		wasAsked := asked
		if e := stop(); e != nil && !wasAsked {
			t.Errorf("supervisor %q: Serve: %v", sup.ID(), e)
		}
	})
	return stop
}

// WaitEvent reads sub until an event satisfies match and returns it. It
// fails the test if none arrives within d (fake time inside a synctest
// bubble) or the subscription is closed.
func WaitEvent(t testing.TB, sub *supervisor.Subscription, d time.Duration, match func(supervisor.Event) bool) supervisor.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("no matching supervisor event within %s: %v", d, err)
			return supervisor.Event{}
		}
		if match(ev) {
			return ev
		}
	}
}

// Child matches events of the given kind about the child with the given id.
func Child(kind supervisor.EventKind, id string) func(supervisor.Event) bool {
	return func(ev supervisor.Event) bool { return ev.Kind == kind && ev.Child == id }
}
