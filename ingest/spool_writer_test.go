package ingest_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestSpoolSurvivesRestart stops a Writer while QuestDB is unreachable, then
// starts another on the same spool: every sample lands exactly once.
func TestSpoolSurvivesRestart(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	proxy := ingesttest.NewProxy(t, addr)
	dir := t.TempDir()
	const n = 6000
	samples := makeSamples(n, testBase())
	opts := ingest.Options{
		Table: table, SpoolDir: dir, BatchRows: 500, SpoolSegmentBytes: 64 << 10,
		RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond,
		ShutdownTimeout: 200 * time.Millisecond,
	}

	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	w := startWriter(t, proxy.Addr(), sub, opts)
	publish(hub, samples[:n/2], 100)
	eventually.True(t, waitTimeout, "first half written", func() bool { return w.Written() == n/2 })
	proxy.Set(ingesttest.Drop)
	publish(hub, samples[n/2:], 100)
	eventually.True(t, waitTimeout, "second half spooled", func() bool { return w.Pending() == n/2 && sub.Len() == 0 })
	if err := w.stop(t); err != nil {
		t.Fatalf("Serve with everything in the spool: %v", err)
	}
	sub.Close()
	if st := w.SpoolStatus(); !st.Enabled || st.Rows != n/2 || st.Bytes == 0 {
		t.Fatalf("spool after stop = %+v, want %d rows", st, n/2)
	}

	proxy.Set(ingesttest.Up)
	hub2 := telemetry.NewHub(nil)
	sub2 := archiveSub(hub2)
	defer sub2.Close()
	w2 := startWriter(t, proxy.Addr(), sub2, opts)
	eventually.True(t, waitTimeout, "spool replayed", func() bool { return w2.Written() == n/2 })
	if err := w2.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", n, waitTimeout)
	if st := w2.SpoolStatus(); st.Rows != 0 {
		t.Fatalf("spool after replay = %+v, want empty", st)
	}
}

// TestPoisonedRowGoesToDeadLetter: the rows QuestDB refuses are in the
// dead-letter file with QuestDB's message; the rest of their batch lands.
func TestPoisonedRowGoesToDeadLetter(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	ddl := strings.Replace(ingest.CreateTableSQL(table), "value_string VARCHAR", "value_string LONG", 1)
	if _, _, err := ingest.Query(context.Background(), addr, ddl); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	base := testBase()
	samples := make([]telemetry.Sample, n)
	for i := range samples {
		samples[i] = telemetry.Sample{Device: "dmm", Channel: "v", TimeNs: base.UnixNano() + int64(i)*1000,
			Seq: uint64(i + 1), Value: telemetry.Float(float64(i))}
	}
	samples[321].Value = telemetry.String("poison")
	dir := t.TempDir()
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()
	w := startWriter(t, addr, sub, ingest.Options{Table: table, SpoolDir: dir, Registerer: reg, BatchRows: n})
	hub.Publish(samples...)
	eventually.True(t, waitTimeout, "batch settled", func() bool { return w.Written() == n-1 && w.BadRows() == 1 })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", n-1, waitTimeout)
	ingesttest.WaitCount(t, addr, table, "seq = 322", 0, waitTimeout)

	f, err := os.Open(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var dls []ingest.DeadLetter
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var dl ingest.DeadLetter
		if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
			t.Fatalf("dead-letter line %q: %v", sc.Text(), err)
		}
		dls = append(dls, dl)
	}
	if len(dls) != 1 {
		t.Fatalf("dead-letter file has %d lines, want 1: %+v", len(dls), dls)
	}
	dl := dls[0]
	if dl.Seq != 322 || dl.Device != "dmm" || dl.Value != "poison" || dl.Table != table || dl.Error == "" {
		t.Fatalf("dead letter = %+v", dl)
	}
	t.Logf("dead letter: %+v", dl)
	if got := metrictest.Sum(t, reg, "switchyard_ingest_dead_letters_total"); got != 1 {
		t.Errorf("dead letters metric = %v, want 1", got)
	}
}

// TestSpoolFullPolicy fills a small spool while QuestDB is unreachable: the
// alarm is raised, samples wait in the hub's queue, and all land once QuestDB is
// back.
func TestSpoolFullPolicy(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	proxy := ingesttest.NewProxy(t, addr)
	proxy.Set(ingesttest.Drop)
	const n = 5000
	samples := makeSamples(n, testBase())
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()
	w := startWriter(t, proxy.Addr(), sub, ingest.Options{
		Table: table, SpoolDir: t.TempDir(), SpoolMaxBytes: 64 << 10, BatchRows: 200, Registerer: reg,
		RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond,
	})
	publish(hub, samples, 100)
	eventually.True(t, waitTimeout, "spool full", func() bool { return w.SpoolStatus().Full })
	if got := metrictest.Sum(t, reg, "switchyard_ingest_spool_level"); got != 2 {
		t.Errorf("spool level metric = %v, want 2 (full)", got)
	}
	st := w.SpoolStatus()
	if st.Bytes > st.MaxBytes || !st.High {
		t.Errorf("full spool status = %+v", st)
	}
	if sub.Len() == 0 {
		t.Error("hub queue empty with a full spool: samples should wait there")
	}
	proxy.Set(ingesttest.Up)
	eventually.True(t, waitTimeout, "everything written", func() bool { return w.Written() == n })
	eventually.True(t, waitTimeout, "alarm cleared", func() bool { return !w.SpoolStatus().High })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", n, waitTimeout)
}

// TestArchivedFlushes: Archived sends at once and returns when QuestDB has the
// samples, long before the flush interval.
func TestArchivedFlushes(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	w := startWriter(t, addr, sub, ingest.Options{Table: table, SpoolDir: t.TempDir(), FlushInterval: time.Hour})
	samples := makeSamples(100, testBase())
	hub.Publish(samples...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.Archived(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Written() != 100 {
		t.Fatalf("after Archived: %d written, want 100", w.Written())
	}
	if err := w.Archived(ctx); err != nil { // nothing pending: at once
		t.Fatal(err)
	}
}

// TestOversizeSampleGoesToDeadLetter: a sample too large for a spool frame is set
// aside with a reason; the others land.
func TestOversizeSampleGoesToDeadLetter(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	dir := t.TempDir()
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	w := startWriter(t, addr, sub, ingest.Options{Table: table, SpoolDir: dir})
	samples := makeSamples(10, testBase())
	samples[4].Value = telemetry.String(strings.Repeat("x", 2<<20))
	hub.Publish(samples...)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := w.Archived(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Written() != 9 || w.BadRows() != 1 {
		t.Fatalf("written %d, bad %d; want 9 and 1", w.Written(), w.BadRows())
	}
	b, err := os.ReadFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil || !strings.Contains(string(b), "spool's limit") {
		t.Fatalf("dead-letter file: %v, %.200s", err, b)
	}
}
