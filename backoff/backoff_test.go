package backoff_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

func noJitter() float64 { return 0 }

func TestDelay(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name string
		p    backoff.Policy
		n    int
		r    float64
		want time.Duration
	}{
		{"defaults first", backoff.Policy{}, 1, 0, 100 * ms},
		{"doubles", backoff.Policy{}, 4, 0, 800 * ms},
		{"capped", backoff.Policy{}, 40, 0, 30 * time.Second},
		{"no overflow far past the cap", backoff.Policy{}, 1 << 30, 0, 30 * time.Second},
		{"jitter removes up to 20%", backoff.Policy{}, 1, 0.5, 90 * ms},
		{"jitter never exceeds cap", backoff.Policy{Max: time.Second}, 20, 0.999, time.Second - time.Duration(float64(time.Second)*0.2*0.999)},
		{"no jitter", backoff.Policy{Jitter: -1}, 2, 0.9, 200 * ms},
		{"jitter clamped to 1", backoff.Policy{Jitter: 3}, 1, 0.5, 50 * ms},
		{"immediate", backoff.Policy{Min: -1}, 5, 0.5, 0},
		{"before the first failure", backoff.Policy{}, 0, 0, 0},
		{"custom", backoff.Policy{Min: time.Second, Max: 5 * time.Second, Jitter: -1}, 3, 0, 4 * time.Second},
		{"multiplier 3", backoff.Policy{Min: 100 * ms, Max: time.Second, Multiplier: 3, Jitter: -1}, 3, 0, 900 * ms},
		{"multiplier capped", backoff.Policy{Min: 100 * ms, Max: time.Second, Multiplier: 3, Jitter: -1}, 4, 0, time.Second},
		{"multiplier 1.5", backoff.Policy{Min: 100 * ms, Multiplier: 1.5, Jitter: -1}, 3, 0, 225 * ms},
		{"multiplier 1: constant", backoff.Policy{Min: 100 * ms, Multiplier: 1, Jitter: -1}, 9, 0, 100 * ms},
		{"multiplier below 1: default", backoff.Policy{Min: 100 * ms, Multiplier: 0.5, Jitter: -1}, 2, 0, 200 * ms},
	}
	for _, tc := range cases {
		if got := tc.p.Delay(tc.n, tc.r); got != tc.want {
			t.Errorf("%s: Delay(%d, %v) = %v, want %v", tc.name, tc.n, tc.r, got, tc.want)
		}
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.now = c.now.Add(d)
	ch <- c.now
	return ch
}

func TestNextResetAndResetAfter(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	b := &backoff.Backoff{Policy: backoff.Policy{Min: time.Second, Max: 8 * time.Second, ResetAfter: time.Minute}, Rand: noJitter, Clock: clk}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 8}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("delays %v, want %v s", got, want)
		}
	}
	b.Reset()
	if d := b.Next(); d != time.Second || b.Failures() != 1 {
		t.Fatalf("after Reset: %v (%d failures), want 1s (1)", d, b.Failures())
	}
	// The next attempt starts after that 1 s and runs 59 s: not yet stable.
	clk.now = clk.now.Add(time.Second + 59*time.Second)
	if d := b.Next(); d != 2*time.Second {
		t.Fatalf("after a 59 s run: %v, want 2s", d)
	}
	// Then one that runs a whole minute: forgotten.
	clk.now = clk.now.Add(2*time.Second + time.Minute)
	if d := b.Next(); d != time.Second {
		t.Fatalf("after a 60 s run: %v, want 1s (ResetAfter)", d)
	}
	// Without ResetAfter only Reset forgets.
	b2 := &backoff.Backoff{Policy: backoff.Policy{Min: time.Second}, Rand: noJitter, Clock: clk}
	b2.Next()
	clk.now = clk.now.Add(time.Hour)
	if d := b2.Next(); d != 2*time.Second {
		t.Fatalf("without ResetAfter, after an hour: %v, want 2s", d)
	}
}

func TestJitterSpreadsDelays(t *testing.T) {
	b := &backoff.Backoff{Policy: backoff.Policy{Min: time.Second, Jitter: 0.5}}
	seen := map[time.Duration]bool{}
	for range 20 {
		d := b.Next()
		b.Reset()
		if d > time.Second || d <= time.Second/2 {
			t.Fatalf("jittered delay %v outside (0.5s, 1s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 2 {
		t.Fatalf("20 jittered delays were all %v", seen)
	}
}

func TestWaitOnTheClock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backoff.Backoff{Policy: backoff.Policy{Min: time.Second}, Rand: noJitter}
		start := time.Now()
		if d, err := b.Wait(t.Context()); err != nil || d != time.Second || time.Since(start) != time.Second {
			t.Fatalf("Wait = %v, %v after %v; want 1s, nil after 1s", d, err, time.Since(start))
		}
		ctx, cancel := context.WithCancelCause(t.Context())
		go func() {
			time.Sleep(500 * time.Millisecond)
			cancel(io.ErrUnexpectedEOF)
		}()
		start = time.Now()
		if _, err := b.Wait(ctx); !errors.Is(err, io.ErrUnexpectedEOF) || time.Since(start) != 500*time.Millisecond {
			t.Fatalf("Wait with a context ended after 0.5s = %v after %v, want its cause after 0.5s", err, time.Since(start))
		}
	})
}

type flaky struct{ code int }

func (e *flaky) Error() string     { return fmt.Sprintf("status %d", e.code) }
func (e *flaky) Recoverable() bool { return e.code >= 500 }

func TestIsRecoverable(t *testing.T) {
	base := errors.New("connection refused")
	cases := []struct {
		err  error
		want bool
	}{
		{nil, false},
		{base, false},
		{backoff.Recoverable(base), true},
		{fmt.Errorf("query: %w", backoff.Recoverable(base)), true},
		{&flaky{503}, true},
		{&flaky{400}, false},
		{fmt.Errorf("wrapped: %w", &flaky{503}), true},
		{backoff.Recoverable(context.Canceled), false},
		{backoff.Recoverable(context.DeadlineExceeded), false},
	}
	for _, tc := range cases {
		if got := backoff.IsRecoverable(tc.err); got != tc.want {
			t.Errorf("IsRecoverable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
	if backoff.Recoverable(nil) != nil {
		t.Error("Recoverable(nil) is not nil")
	}
	if err := backoff.Recoverable(base); !errors.Is(err, base) || err.Error() != base.Error() {
		t.Errorf("the mark hides the error: %v", err)
	}
}

func TestRetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &backoff.Backoff{Policy: backoff.Policy{Min: time.Second, Max: 4 * time.Second}, Rand: noJitter}
		start := time.Now()
		calls := 0
		var delays []time.Duration
		err := backoff.Retry(t.Context(), b, func() error {
			calls++
			if calls < 4 {
				return backoff.Recoverable(errors.New("refused"))
			}
			return nil
		}, func(err error, d time.Duration) { delays = append(delays, d) })
		if err != nil || calls != 4 || time.Since(start) != 7*time.Second || fmt.Sprint(delays) != "[1s 2s 4s]" {
			t.Fatalf("Retry = %v after %d calls, %v, delays %v; want nil after 4 calls, 7s, [1s 2s 4s]", err, calls, time.Since(start), delays)
		}
		if b.Failures() != 0 {
			t.Fatalf("a success left %d failures counted", b.Failures())
		}

		// A permanent error ends it at once, as it is.
		bad := errors.New("syntax error in query")
		calls, start = 0, time.Now()
		err = backoff.Retry(t.Context(), b, func() error { calls++; return bad }, nil)
		if err != bad || calls != 1 || time.Since(start) != 0 {
			t.Fatalf("Retry of a permanent error = %v after %d calls and %v; want it back after 1 call at once", err, calls, time.Since(start))
		}

		// The context ends the waiting.
		ctx, cancel := context.WithTimeout(t.Context(), 2500*time.Millisecond)
		defer cancel()
		b.Reset()
		err = backoff.Retry(ctx, b, func() error { return backoff.Recoverable(errors.New("down")) }, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Retry past its context = %v, want DeadlineExceeded", err)
		}
	})
}

func ExampleRetry() {
	b := &backoff.Backoff{Policy: backoff.Policy{Min: time.Millisecond, Jitter: -1}}
	attempt := 0
	err := backoff.Retry(context.Background(), b, func() error {
		attempt++
		if attempt < 3 {
			return backoff.Recoverable(fmt.Errorf("attempt %d: connection refused", attempt))
		}
		return nil
	}, func(err error, d time.Duration) { fmt.Printf("%v; again in %v\n", err, d) })
	fmt.Println("done:", err)
	// Output:
	// attempt 1: connection refused; again in 1ms
	// attempt 2: connection refused; again in 2ms
	// done: <nil>
}

// TestWithDefaultsIdempotent: "no jitter" survives defaults applied twice (a
// supervisor applies them to its options, then Delay again).
func TestWithDefaultsIdempotent(t *testing.T) {
	for _, p := range []backoff.Policy{{}, {Jitter: -1}, {Min: -1}, {Jitter: 2, Max: time.Second}} {
		once := p.WithDefaults()
		if twice := once.WithDefaults(); twice != once {
			t.Errorf("%+v: WithDefaults once %+v, twice %+v", p, once, twice)
		}
	}
	if d := (backoff.Policy{Jitter: -1}).WithDefaults().Delay(1, 0.99); d != backoff.DefaultMin {
		t.Errorf("no jitter after defaults: Delay = %v, want %v", d, backoff.DefaultMin)
	}
}
