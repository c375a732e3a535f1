package sim_test

import (
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestSweep: a swept supply's set-point follows the sweep step by step (a
// cosine from Min up to Max and back), on the instrument's clock, as read over
// SCPI; a VOLTage command holds until the next step; a sweep out of range, or
// on an instrument that is no supply, is refused; nil stops it.
func TestSweep(t *testing.T) {
	var mu sync.Mutex
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	at := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = start.Add(d) }
	psu := simtest.SCPI(t, "psu-20", sim.Options{Now: clock})
	c := dial(t, psu.Addr())
	sweep := sim.Sweep{Min: 1, Max: 19, Period: 80 * time.Second, Step: 2 * time.Second}
	if err := psu.SetSweep(&sweep); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		t    time.Duration
		want float64
	}{
		{0, 1},                             // the start: Min
		{1900 * time.Millisecond, 1},       // the same step
		{2 * time.Second, 1.11},            // 10 - 9 cos(2π·2/80)
		{20 * time.Second, 10},             // a quarter: half way
		{41 * time.Second, 19},             // the top (step of 40 s)
		{60*time.Second + time.Second, 10}, // back half way (step of 60 s)
		{80 * time.Second, 1},              // the period: Min again
	} {
		at(step.t)
		if got := parseFloat(t, c.query("SOUR:VOLT?")); got != step.want {
			t.Errorf("SOUR:VOLT? at %v = %v, want %v", step.t, got, step.want)
		}
		if got := psu.SetPoint(); got != step.want {
			t.Errorf("SetPoint at %v = %v, want %v", step.t, got, step.want)
		}
	}
	// A command holds until the next step.
	at(81 * time.Second)
	c.send("VOLT 12")
	if got := parseFloat(t, c.query("SOUR:VOLT?")); got != 12 {
		t.Errorf("after VOLT 12 in the same step: %v, want 12", got)
	}
	at(82 * time.Second)
	if got := parseFloat(t, c.query("SOUR:VOLT?")); got != 1.11 {
		t.Errorf("at the next step: %v, want the sweep's 1.11", got)
	}
	// Stopped: the set-point stays.
	if err := psu.SetSweep(nil); err != nil {
		t.Fatal(err)
	}
	at(100 * time.Second)
	if got := psu.SetPoint(); got != 1.11 {
		t.Errorf("after the sweep stopped: %v, want 1.11 kept", got)
	}

	for _, bad := range []sim.Sweep{
		{Min: 5, Max: 1, Period: time.Second, Step: time.Second},
		{Min: 0, Max: sim.MaxVolts + 1, Period: time.Second, Step: time.Second},
		{Min: 0, Max: 1, Period: 0, Step: time.Second},
	} {
		if err := psu.SetSweep(&bad); err == nil {
			t.Errorf("SetSweep(%+v) accepted", bad)
		}
	}
	env := simtest.Lines(t, "env-01", sim.Options{})
	if err := env.SetSweep(&sweep); err == nil {
		t.Error("a line pusher accepted a sweep")
	}
}
