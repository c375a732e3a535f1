package devicemgr

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

// TestReconnectBackoffFollowsTheModel: the delay starts at the model's
// initial, grows by its multiplier, stops at its max, loses at most a fifth
// to jitter, and starts over after a reset; the defaults are 250ms, 2 and 10s.
func TestReconnectBackoffFollowsTheModel(t *testing.T) {
	b := backoff.Backoff{Policy: backoff.Policy{Min: 100 * time.Millisecond, Max: time.Second, Multiplier: 3, Jitter: 0.2}, Rand: func() float64 { return 0 }}
	var got []time.Duration
	for range 5 {
		got = append(got, b.Next())
	}
	want := []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	b.Reset()
	b.Rand = func() float64 { return 0.999 }
	if d := b.Next(); d < 80*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("after a reset with full jitter: %v, want 80-100ms", d)
	}
	s := (&Spec{Name: "x", Driver: DriverSCPI}).withDefaults()
	if s.BackoffMin != 250*time.Millisecond || s.BackoffMax != 10*time.Second || s.BackoffMultiplier != 2 || s.ProbeInterval != 500*time.Millisecond {
		t.Fatalf("defaults: %v %v %v %v", s.BackoffMin, s.BackoffMax, s.BackoffMultiplier, s.ProbeInterval)
	}
}
