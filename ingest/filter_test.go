package ingest

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

func TestFilter(t *testing.T) {
	f := NewFilter(map[string]ChannelFilter{
		"psu/v":    {Deadband: 0.5, Heartbeat: 10 * time.Second},
		"psu/i":    {Deadband: 0.1, Relative: true},
		"psu/mode": {Heartbeat: 5 * time.Second},
	})
	s := func(ch string, sec int, v telemetry.Value) telemetry.Sample {
		return telemetry.Sample{Device: "psu", Channel: ch, TimeNs: int64(sec) * 1e9, Value: v}
	}
	bad := s("v", 9, telemetry.Value{})
	bad.Quality, bad.Err = telemetry.Timeout, "no reply"
	for i, tc := range []struct {
		smp  telemetry.Sample
		keep bool
	}{
		{s("v", 0, telemetry.Float(10)), true},    // first
		{s("v", 1, telemetry.Float(10.4)), false}, // inside the band
		{s("v", 2, telemetry.Float(10.6)), true},  // past it
		{s("v", 3, telemetry.Float(10.6)), false},
		{s("v", 12, telemetry.Float(10.6)), true}, // heartbeat: 10 s since the last archived
		{bad, true}, // quality changed
		{s("i", 0, telemetry.Float(100)), true},
		{s("i", 1, telemetry.Float(109)), false}, // 9% < 10%
		{s("i", 2, telemetry.Float(111)), true},
		{s("mode", 0, telemetry.String("CV")), true},
		{s("mode", 1, telemetry.String("CV")), false},
		{s("mode", 2, telemetry.String("CC")), true},
		{s("mode", 7, telemetry.String("CC")), true}, // heartbeat
		{s("other", 0, telemetry.Float(1)), true},    // no filter
		{s("other", 1, telemetry.Float(1)), true},
	} {
		want := tc.keep
		if got := f.Keep(&tc.smp); got != want {
			t.Errorf("case %d %v: Keep = %v, want %v", i, tc.smp, got, want)
		}
	}
	// Back to good after the bad sample: archived although the value is the same.
	if back := s("v", 13, telemetry.Float(10.6)); !f.Keep(&back) {
		t.Error("first good sample after a bad one was filtered")
	}
}

// TestFilterSetSpecs replaces the channel filters as a reload does: a channel
// filtered before and after goes on from its last archived sample, one
// filtered from now on starts afresh, one no longer filtered is archived in
// full.
func TestFilterSetSpecs(t *testing.T) {
	f := NewFilter(map[string]ChannelFilter{"psu/v": {Deadband: 0.5}, "psu/i": {Deadband: 0.5}})
	keep := func(ch string, ns int64, v float64) bool {
		return f.Keep(&telemetry.Sample{Device: "psu", Channel: ch, TimeNs: ns, Value: telemetry.Float(v)})
	}
	if !keep("v", 1, 10) || !keep("i", 1, 1) {
		t.Fatal("first samples filtered")
	}
	f.SetSpecs(map[string]ChannelFilter{"psu/v": {Deadband: 1}, "psu/t": {Deadband: 1}})
	if keep("v", 2, 10.8) {
		t.Error("psu/v: inside the new band of the last archived value, kept")
	}
	if !keep("t", 3, 1) || keep("t", 4, 1.1) {
		t.Error("psu/t, filtered from now on: want its first sample kept, the next one inside the band dropped")
	}
	if !keep("i", 3, 1) || !keep("i", 4, 1.1) {
		t.Error("psu/i, not filtered any more: want every sample kept")
	}
	f.SetSpecs(nil)
	if !keep("v", 5, 10.8) || !keep("v", 6, 10.8) {
		t.Error("no filter any more: want every sample kept")
	}
}
