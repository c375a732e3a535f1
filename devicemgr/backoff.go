package devicemgr

import (
	"math/rand/v2"
	"time"
)

// backoff is a capped, jittered exponential delay. The zero value is not usable;
// build it with newBackoff.
type backoff struct {
	min, max time.Duration
	cur      time.Duration
	rnd      *rand.Rand
}

func newBackoff(min, max time.Duration, seed uint64) backoff {
	return backoff{min: min, max: max, rnd: rand.New(rand.NewPCG(seed, 0x5317c4))}
}

// next returns the delay before the next attempt and doubles the base for the one
// after. The delay is the base ±20 %, never above max.
func (b *backoff) next() time.Duration {
	if b.cur == 0 {
		b.cur = b.min
	}
	d := b.cur
	b.cur *= 2
	if b.cur > b.max {
		b.cur = b.max
	}
	j := time.Duration((b.rnd.Float64()*0.4 - 0.2) * float64(d))
	d += j
	if d > b.max {
		d = b.max
	}
	if d < 0 {
		d = 0
	}
	return d
}

// reset returns the delay to its minimum after a connection proved stable.
func (b *backoff) reset() { b.cur = 0 }
