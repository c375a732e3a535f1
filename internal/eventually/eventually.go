// Package eventually is the one wait helper of Switchyard's tests: it polls a
// condition that becomes true by itself, outside the test's control (a device
// process, another OS process, QuestDB applying its WAL), until it holds or a
// deadline passes. The deadline only bounds a broken run; it never decides an
// outcome, so it is generous.
//
// What a test drives itself needs no waiting: inside a synctest bubble, or with
// an injected clock, assert right after the step.
package eventually

import (
	"testing"
	"time"
)

// Timeout is the deadline of True and Truef when the test gives none (0): long
// enough for a loaded 2-core machine.
const Timeout = 60 * time.Second

// poll is the pause between two looks at a condition.
const poll = 10 * time.Millisecond

// True polls cond until it reports true, and fails t (naming what it waited
// for) when it still does not after timeout (Timeout when 0).
func True(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	Truef(t, timeout, func() string { return what }, cond)
}

// Truef is True with the failure's text made by describe when it fails, so it
// can show the last state seen.
func Truef(t testing.TB, timeout time.Duration, describe func() string, cond func() bool) {
	t.Helper()
	if timeout <= 0 {
		timeout = Timeout
	}
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", timeout, describe())
		}
		time.Sleep(poll)
	}
}

// Value polls f until it returns ok, and returns its value; it fails t like
// True.
func Value[T any](t testing.TB, timeout time.Duration, what string, f func() (T, bool)) T {
	t.Helper()
	var v T
	True(t, timeout, what, func() bool {
		var ok bool
		v, ok = f()
		return ok
	})
	return v
}
