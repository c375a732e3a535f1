package alarm_test

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/telemetry"
)

// BenchmarkMachineSample measures one sample through a channel's alarm machine
// (the engine's per-sample cost), with values crossing the limits.
func BenchmarkMachineSample(b *testing.B) {
	l := lim()
	l.Hysteresis = 0.5
	m := alarm.NewMachine("d", "c", "", l)
	now := time.Unix(0, 0)
	s := telemetry.Sample{Device: "d", Channel: "c"}
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		now = now.Add(time.Millisecond)
		s.Value = telemetry.Float(float64(i % 60))
		m.Sample(now, &s)
	}
}
