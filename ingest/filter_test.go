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
