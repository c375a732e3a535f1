package ingest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/telemetry"
)

func TestHistory(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	base := time.Date(2026, 1, 2, 3, 4, 0, 0, time.UTC)
	var samples []telemetry.Sample
	for i := range 120 { // one a second for two minutes
		s := telemetry.Sample{Device: "psu'1", Channel: "v", TimeNs: base.Add(time.Duration(i) * time.Second).UnixNano(),
			Seq: uint64(i + 1), Value: telemetry.Float(float64(i))}
		if i == 30 {
			s.Value, s.Quality, s.Err = telemetry.Value{}, telemetry.Timeout, "no reply"
		}
		samples = append(samples, s)
	}
	samples = append(samples, telemetry.Sample{Device: "psu'1", Channel: "mode", TimeNs: base.UnixNano(), Seq: 1, Value: telemetry.String("CV")})
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	w := startWriter(t, addr, sub, ingest.Options{Table: table})
	hub.Publish(samples...)
	eventually.True(t, waitTimeout, "written", func() bool { return w.Written() == uint64(len(samples)) })
	ingesttest.WaitCount(t, addr, table, "", int64(len(samples)), waitTimeout)

	h, err := ingest.NewHistory(addr, table)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	got, trunc, err := h.Samples(ctx, ingest.HistoryQuery{Device: "psu'1", Channel: "v", From: base.Add(20 * time.Second), To: base.Add(40 * time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 20 || trunc {
		t.Fatalf("raw: %d samples (truncated %v), want 20", len(got), trunc)
	}
	for i, s := range got {
		if s != samples[20+i] {
			t.Fatalf("raw[%d] = %v, want %v", i, s, samples[20+i])
		}
	}
	got, trunc, err = h.Samples(ctx, ingest.HistoryQuery{Device: "psu'1", Channel: "mode", From: base, Limit: 5})
	if err != nil || len(got) != 1 || got[0] != samples[120] || trunc {
		t.Fatalf("string channel: %v, %v, %v", got, trunc, err)
	}
	_, trunc, err = h.Samples(ctx, ingest.HistoryQuery{Device: "psu'1", Channel: "v", From: base, Limit: 10})
	if err != nil || !trunc {
		t.Fatalf("limit 10 of 120: truncated %v, %v", trunc, err)
	}

	buckets, _, err := h.Buckets(ctx, ingest.HistoryQuery{Device: "psu'1", Channel: "v", From: base, To: base.Add(2 * time.Minute), Agg: ingest.AggAvg, Every: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	// Minute 0: 0..59 without 30 (bad quality); minute 1: 60..119.
	want := []ingest.Bucket{
		{TimeNs: base.UnixNano(), Value: float64(59*60/2-30) / 59, Count: 59},
		{TimeNs: base.Add(time.Minute).UnixNano(), Value: 89.5, Count: 60},
	}
	if len(buckets) != 2 || buckets[0] != want[0] || buckets[1] != want[1] {
		t.Fatalf("avg by minute = %+v, want %+v", buckets, want)
	}
	buckets, _, err = h.Buckets(ctx, ingest.HistoryQuery{Device: "psu'1", Channel: "v", From: base, Agg: ingest.AggMax, Every: 30 * time.Second})
	if err != nil || len(buckets) != 4 || buckets[3].Value != 119 {
		t.Fatalf("max by 30 s = %+v, %v", buckets, err)
	}

	for _, q := range []ingest.HistoryQuery{
		{Channel: "v"},
		{Device: "d", Channel: "v", Agg: ingest.AggAvg},
		{Device: "d", Channel: "v", Limit: -1},
		{Device: "d", Channel: "v", From: base, To: base.Add(-time.Second)},
	} {
		if _, _, err := h.Buckets(ctx, q); !errors.Is(err, ingest.ErrBadHistoryQuery) {
			t.Errorf("Buckets(%+v) = %v, want ErrBadHistoryQuery", q, err)
		}
	}
}
