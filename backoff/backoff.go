package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Defaults of a Policy's zero fields.
const (
	DefaultMin        = 100 * time.Millisecond
	DefaultMax        = 30 * time.Second
	DefaultJitter     = 0.2
	DefaultMultiplier = 2
	DefaultResetAfter = 30 * time.Second
)

// Policy is a schedule of delays: exponential from Min (times Multiplier after
// each failure), capped at Max, with up to Jitter of each delay taken off at
// random. The zero value is the defaults.
type Policy struct {
	// Min is the first delay. Default 100ms. Negative: no delay at all.
	Min time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
	// Multiplier is what each failure in a row multiplies the delay by.
	// Default 2; below 1 takes the default.
	Multiplier float64
	// Jitter is the largest fraction of a delay removed at random, in [0,1].
	// Default 0.2. Negative: no jitter.
	Jitter float64
	// ResetAfter is the stable run after which past failures are forgotten: a
	// Backoff whose attempt ran at least this long before it failed starts
	// again from Min. Zero: only Reset forgets (a supervisor's children default
	// to DefaultResetAfter).
	ResetAfter time.Duration
}

// WithDefaults returns p with its zero Min, Max and Jitter set to their
// defaults and Jitter capped at 1. It is idempotent.
func (p Policy) WithDefaults() Policy {
	if p.Min == 0 {
		p.Min = DefaultMin
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Jitter == 0 {
		p.Jitter = DefaultJitter
	}
	if p.Multiplier < 1 {
		p.Multiplier = DefaultMultiplier
	}
	// A negative Jitter stays negative (none), so that WithDefaults is
	// idempotent: a default applied twice must not turn "none" into 0.2.
	p.Jitter = min(p.Jitter, 1)
	return p
}

// Delay returns the wait before attempt number n after consecutive failures (1
// for the first), given a random number r in [0,1). Zero fields of p take their
// defaults.
func (p Policy) Delay(n int, r float64) time.Duration {
	p = p.WithDefaults()
	if p.Min < 0 || n < 1 {
		return 0
	}
	d := float64(p.Min)
	for i := 1; i < n && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Max))
	return time.Duration(d - d*max(p.Jitter, 0)*r)
}

// Clock is the time a Backoff waits on. System is the real one; in a synctest
// bubble the real one is fake already.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// System is the wall clock (time.Now, time.After).
var System Clock = systemClock{}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff walks a Policy for one goroutine that retries something. The zero
// value uses the default Policy, math/rand/v2 and the System clock.
type Backoff struct {
	Policy Policy
	// Rand returns numbers in [0,1) for the jitter. Default math/rand/v2.Float64.
	Rand func() float64
	// Clock dates attempts (for ResetAfter) and times Wait. Default System.
	Clock Clock

	n    int       // consecutive failures so far
	next time.Time // when the attempt after the last failure is due
}

// New returns a Backoff for p on the System clock.
func New(p Policy) *Backoff { return &Backoff{Policy: p} }

func (b *Backoff) clock() Clock {
	if b.Clock == nil {
		return System
	}
	return b.Clock
}

// Next counts a failure and returns the delay before the next attempt. With
// Policy.ResetAfter set, if the attempt that failed ran that long (from the end
// of the previous delay to now), the count starts again first.
func (b *Backoff) Next() time.Duration {
	p := b.Policy.WithDefaults()
	now := b.clock().Now()
	if b.n > 0 && p.ResetAfter > 0 && now.Sub(b.next) >= p.ResetAfter {
		b.n = 0
	}
	b.n++
	rnd := b.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	d := p.Delay(b.n, rnd())
	b.next = now.Add(d)
	return d
}

// Reset forgets past failures: the next delay is Policy.Min again. Call it
// after a success.
func (b *Backoff) Reset() { b.n = 0 }

// Failures returns the consecutive failures counted since the last Reset.
func (b *Backoff) Failures() int { return b.n }

// Wait counts a failure and sleeps for the next delay (see Sleep). It returns
// the delay.
func (b *Backoff) Wait(ctx context.Context) (time.Duration, error) {
	d := b.Next()
	return d, b.Sleep(ctx, d)
}

// Sleep waits d on the Backoff's clock, or returns context.Cause(ctx) when ctx
// ends first.
func (b *Backoff) Sleep(ctx context.Context, d time.Duration) error {
	if err := context.Cause(ctx); err != nil || d <= 0 {
		return err
	}
	select {
	case <-b.clock().After(d):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
