package supervisor

import (
	"math/rand/v2"
	"time"
)

// Default backoff values.
const (
	DefaultBackoffMin        = 100 * time.Millisecond
	DefaultBackoffMax        = 30 * time.Second
	DefaultBackoffJitter     = 0.2
	DefaultBackoffResetAfter = 30 * time.Second
)

// Backoff is the delay before a child is restarted: exponential from Min,
// capped at Max, with up to Jitter of it removed at random so that many
// children failing together do not retry together. A child that ran for
// ResetAfter before failing starts again from Min. Backoff is separate from
// restart intensity: intensity decides whether to restart at all, backoff
// decides when. While a child waits it is in state BackingOff and its
// Node.NextRestart says when it will be started.
type Backoff struct {
	// Min is the first delay. Default 100ms. Negative: restart at once
	// (OTP's behaviour), with no backoff at all.
	Min time.Duration
	// Max caps the delay. Default 30s.
	Max time.Duration
	// Jitter is the largest fraction of the delay removed at random, in
	// [0,1]. Default 0.2. Negative: no jitter.
	Jitter float64
	// ResetAfter is the uptime after which past failures are forgotten.
	// Default 30s.
	ResetAfter time.Duration
}

func (b Backoff) withDefaults() Backoff {
	if b.Min == 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Jitter == 0 {
		b.Jitter = DefaultBackoffJitter
	}
	if b.Jitter < 0 {
		b.Jitter = 0
	}
	if b.Jitter > 1 {
		b.Jitter = 1
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	return b
}

// Delay returns the wait before restart number n (1 for the first
// consecutive failure), given a random number r in [0,1). Zero fields of b
// take their defaults.
func (b Backoff) Delay(n int, r float64) time.Duration {
	b = b.withDefaults()
	if b.Min < 0 || n < 1 {
		return 0
	}
	d := b.Min
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	return d - time.Duration(float64(d)*b.Jitter*r)
}

// Retry walks a Backoff for one goroutine that retries something: Next returns
// the delay before the next attempt, Reset starts over from Min after a
// success. The zero value uses the Backoff defaults and math/rand/v2. It is not
// safe for concurrent use.
type Retry struct {
	Backoff Backoff
	// Rand returns numbers in [0,1) for the jitter. Default math/rand/v2.Float64.
	Rand func() float64
	n    int
}

// Next returns the delay before the next attempt and counts the attempt.
func (r *Retry) Next() time.Duration {
	r.n++
	rnd := r.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	return r.Backoff.Delay(r.n, rnd())
}

// Reset forgets past failures: the next delay is Backoff.Min again.
func (r *Retry) Reset() { r.n = 0 }
