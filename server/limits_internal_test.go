package server

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// The per-identity command buckets are evicted once idle for a refill, so
// identities (or client hosts) that come and go leave nothing behind; and
// eviction is invisible: the same commands are admitted and refused as by a
// limiter that never evicts.
func TestCommandBucketsAreEvicted(t *testing.T) {
	lim := Limits{CommandRate: 10, CommandBurst: 20, CommandsPerDevice: 1000}.withDefaults()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	c := newCommandLimiter(lim, clock)
	if c.refill != 2*time.Second {
		t.Fatalf("refill %v, want 2s (burst 20 at 10/s)", c.refill)
	}
	admit := func(c *commandLimiter, key string) bool {
		release, err := c.admit(key, "psu1")
		if err != nil {
			return false
		}
		release()
		return true
	}

	// A thousand callers, each once: then a refill later, one more caller.
	for i := range 1000 {
		if !admit(c, fmt.Sprintf("anonymous@10.0.%d.%d", i/256, i%256)) {
			t.Fatalf("caller %d refused", i)
		}
	}
	if len(c.buckets) != 1000 {
		t.Fatalf("%d buckets after 1000 callers", len(c.buckets))
	}
	now = now.Add(2 * time.Second)
	admit(c, "token:late")
	if len(c.buckets) != 1 {
		t.Fatalf("%d buckets a refill after 1000 callers went idle, want 1 (the new caller's)", len(c.buckets))
	}

	// Eviction changes no decision: a random workload against a limiter
	// that never evicts, callers sending faster than their rate in bursts
	// with pauses shorter and longer than the refill.
	evicting := newCommandLimiter(lim, clock)
	keeping := newCommandLimiter(lim, clock)
	keeping.refill = time.Duration(1<<63 - 1) // never sweeps
	rng := rand.New(rand.NewPCG(1, 2))
	peak, refused := 0, 0
	for i := range 50000 {
		if rng.IntN(100) == 0 {
			now = now.Add(time.Duration(rng.IntN(3000)) * time.Millisecond)
		} else {
			now = now.Add(time.Duration(rng.IntN(5)) * time.Millisecond)
		}
		key := fmt.Sprintf("token:%d", rng.IntN(5))
		got, want := admit(evicting, key), admit(keeping, key)
		if got != want {
			t.Fatalf("step %d (%s at %v): evicting limiter admitted=%v, one that keeps every bucket %v", i, key, now, got, want)
		}
		if !got {
			refused++
		}
		peak = max(peak, len(evicting.buckets))
	}
	if refused < 10000 || len(keeping.buckets) != 5 || peak > 5 {
		t.Fatalf("%d refused, buckets: %d kept, peak %d evicting; want many refused, 5 and at most 5", refused, len(keeping.buckets), peak)
	}
}

// TestStalledStreamsEndByDefault: without limits.stream_stall_timeout a stream
// that stopped reading is still ended (after DefaultStreamStallTimeout), so no
// configuration leaves stalled streams holding their budget for ever.
func TestStalledStreamsEndByDefault(t *testing.T) {
	if got := (Limits{}).withDefaults().StreamStallTimeout; got != DefaultStreamStallTimeout || got <= 0 {
		t.Fatalf("default stream stall timeout %v, want %v", got, DefaultStreamStallTimeout)
	}
	if got := (Limits{StreamStallTimeout: 5 * time.Second}).withDefaults().StreamStallTimeout; got != 5*time.Second {
		t.Fatalf("configured stream stall timeout became %v", got)
	}
}
