package telemetry_test

import (
	"testing"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

var ft0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func fs(v float64, seq uint64) *telemetry.Sample {
	return &telemetry.Sample{Device: "d", Channel: "c", Seq: seq, Value: telemetry.Float(v)}
}

func seqs(ss []telemetry.Sample) []uint64 {
	out := make([]uint64, len(ss))
	for i := range ss {
		out[i] = ss[i].Seq
	}
	return out
}

func TestFilterDeadband(t *testing.T) {
	f := telemetry.NewFilter(telemetry.FilterOptions{DeadbandAbs: 0.5})
	var out []telemetry.Sample
	for i, v := range []float64{10, 10.4, 10.5, 10.51, 10.2, 9.9, 9.5} {
		out = f.Offer(ft0, fs(v, uint64(i+1)), out)
	}
	// 10 (first) · 10.4, 10.5 within 0.5 · 10.51 > 0.5 · 10.2 within · 9.9 > 0.5 from 10.51 · 9.5 within
	if got := seqs(out); len(got) != 3 || got[0] != 1 || got[1] != 4 || got[2] != 6 {
		t.Fatalf("delivered seqs %v, want [1 4 6]", got)
	}
	if f.Suppressed() != 4 {
		t.Fatalf("suppressed %d, want 4", f.Suppressed())
	}
	bad := &telemetry.Sample{Device: "d", Channel: "c", Seq: 8, Quality: telemetry.Timeout}
	if out = f.Offer(ft0, bad, out[:0]); len(out) != 1 {
		t.Fatal("a quality change did not pass the deadband")
	}
	rel := telemetry.NewFilter(telemetry.FilterOptions{DeadbandRel: 0.1})
	out = rel.Offer(ft0, fs(100, 1), nil)
	out = rel.Offer(ft0, fs(109, 2), out)
	out = rel.Offer(ft0, fs(111, 3), out)
	if got := seqs(out); len(got) != 2 || got[1] != 3 {
		t.Fatalf("relative deadband delivered %v, want [1 3]", got)
	}
}

func TestFilterRateCapEndsOnLatest(t *testing.T) {
	f := telemetry.NewFilter(telemetry.FilterOptions{MaxRate: 10}) // 100 ms per channel
	var out []telemetry.Sample
	// 100 samples at 1 kHz: at most one per 100 ms, and the last one delivered.
	for i := range 100 {
		now := ft0.Add(time.Duration(i) * time.Millisecond)
		out = f.Due(now, out)
		out = f.Offer(now, fs(float64(i), uint64(i+1)), out)
	}
	due, ok := f.NextDue()
	if !ok || !due.Equal(ft0.Add(100*time.Millisecond)) {
		t.Fatalf("next due %v %v", due, ok)
	}
	out = f.Due(due, out)
	if got := seqs(out); len(got) != 2 || got[0] != 1 || got[1] != 100 {
		t.Fatalf("delivered %v, want [1 100]", got)
	}
	if _, ok := f.NextDue(); ok {
		t.Fatal("still holding a sample")
	}
	if f.Decimated() != 98 {
		t.Fatalf("decimated %d, want 98", f.Decimated())
	}
}

// BenchmarkFilter measures one sample through a deadband and rate cap over 100
// channels.
func BenchmarkFilter(b *testing.B) {
	f := telemetry.NewFilter(telemetry.FilterOptions{DeadbandAbs: 0.5, MaxRate: 10})
	ss := make([]telemetry.Sample, 100)
	for i := range ss {
		ss[i] = telemetry.Sample{Device: "d", Channel: string(rune('a'+i%26)) + string(rune('a'+i/26))}
	}
	now := ft0
	out := make([]telemetry.Sample, 0, 200)
	i := 0
	b.ReportAllocs()
	for b.Loop() {
		i++
		now = now.Add(time.Millisecond)
		s := &ss[i%len(ss)]
		s.Value = telemetry.Float(float64(i % 7))
		out = f.Offer(now, s, out[:0])
		out = f.Due(now, out)
	}
}
