package ingest

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped exponential delay with jitter. The zero value is not useful;
// build one with newBackoff. It is owned by one goroutine.
type backoff struct {
	min, max time.Duration
	next     time.Duration
	jitter   func(n int64) int64 // returns [0, n); rand.Int64N unless a test swaps it
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min, jitter: rand.Int64N}
}

// Next returns the delay before the next attempt: the current step, less up to half
// of it at random so that writers do not retry in lockstep, and doubles the step up
// to the cap.
func (b *backoff) Next() time.Duration {
	d := b.next
	if half := int64(d / 2); half > 0 {
		d -= time.Duration(b.jitter(half))
	}
	b.next *= 2
	if b.next > b.max || b.next <= 0 {
		b.next = b.max
	}
	return d
}

// Reset starts again from the minimum after a success.
func (b *backoff) Reset() { b.next = b.min }
