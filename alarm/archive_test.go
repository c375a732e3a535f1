package alarm_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/telemetry"
)

// TestArchiveKeepsTransitionsThroughAnOutage: transitions recorded while
// QuestDB answers 503 or drops connections are kept and land once it is back,
// each exactly once; what is queued at shutdown is delivered before Serve returns.
func TestArchiveKeepsTransitionsThroughAnOutage(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	proxy := ingesttest.NewProxy(t, qdb)
	failures := make(chan string, 100)
	sink, err := alarm.NewArchive(questDB(t, proxy.Addr()), ingest.Options{Table: table, Logger: slog.New(failureHandler{failures}),
		RetryBackoffMax: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	waitFailure := func() {
		t.Helper()
		select {
		case <-failures:
		case <-time.After(60 * time.Second):
			t.Fatal("the sink reported no failed delivery during the outage")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sink.Serve(ctx) })

	m := alarm.NewMachine("psu-1", "voltage", "power", lim())
	now := time.Now()
	record := func(v float64) {
		now = now.Add(time.Millisecond)
		for _, tr := range m.Sample(now, &telemetry.Sample{Value: telemetry.Float(v), TimeNs: now.UnixNano()}) {
			sink.Record(ctx, tr)
		}
	}
	record(45) // RAISED HIGH
	ingesttest.WaitCount(t, qdb, table, "", 1, 60*time.Second)

	proxy.Set(ingesttest.Unavailable)
	record(55) // RAISED HIHI
	record(20) // CLEARED
	waitFailure()
	proxy.Set(ingesttest.Drop)
	record(0) // RAISED LOLO
	waitFailure()
	proxy.Set(ingesttest.Up)
	ingesttest.WaitCount(t, qdb, table, "", 4, 60*time.Second)

	// Queued while stopping: delivered before Serve returns.
	record(20)
	cancel()
	wg.Wait()
	ingesttest.WaitCount(t, qdb, table, "", 5, 60*time.Second)
	ingesttest.WaitCount(t, qdb, table, "event = 'RAISED' AND cond = 'LOLO' AND lolo = 1 AND latched = 'MAJOR'", 1, 10*time.Second)
}

// failureHandler sends the message of every warning or error to a channel.
type failureHandler struct{ c chan<- string }

func (h failureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h failureHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.c <- r.Message:
	default:
	}
	return nil
}

func (h failureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failureHandler) WithGroup(string) slog.Handler      { return h }

// TestArchiveSpoolKeepsTransitionsThroughARestart: with a spool directory,
// transitions recorded during an outage that outlasts the process are on disk;
// the next process's sink (same directory) archives each of them exactly once,
// with its limits, once QuestDB is back.
func TestArchiveSpoolKeepsTransitionsThroughARestart(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	proxy := ingesttest.NewProxy(t, qdb)
	dir := t.TempDir()
	opts := ingest.Options{Table: table, SpoolDir: dir, Logger: slog.New(slog.DiscardHandler),
		RetryBackoffMax: 200 * time.Millisecond, ShutdownTimeout: 300 * time.Millisecond}

	first, err := alarm.NewArchive(questDB(t, proxy.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- first.Serve(ctx) }()
	m := alarm.NewMachine("psu-1", "voltage", "power", lim())
	now := time.Now()
	record := func(s *alarm.Archive, v float64) {
		now = now.Add(time.Millisecond)
		for _, tr := range m.Sample(now, &telemetry.Sample{Value: telemetry.Float(v), TimeNs: now.UnixNano()}) {
			s.Record(context.Background(), tr)
		}
	}
	record(first, 45) // RAISED HIGH
	ingesttest.WaitCount(t, qdb, table, "", 1, 60*time.Second)

	proxy.Set(ingesttest.Unavailable)
	record(first, 55) // RAISED HIHI
	record(first, 20) // CLEARED
	record(first, 0)  // RAISED LOLO
	// The outage outlasts the process: it stops with the transitions unsent,
	// spooled (the spool holds them before any attempt to send).
	eventually.True(t, 0, "three transitions spooled", func() bool { return first.Pending() == 3 })
	cancel()
	// What QuestDB has not acknowledged is in the spool, so nothing is lost.
	if err := <-done; err != nil {
		t.Fatalf("first Serve = %v, want nil: the unsent transitions are spooled", err)
	}
	// None of the three reached QuestDB: whatever lands later comes from disk,
	// since the second sink starts with nothing in memory.
	if n, err := ingest.CountRows(context.Background(), qdb, table, ""); err != nil || n != 1 {
		t.Fatalf("rows after the first process = %d, %v; want 1 (the outage kept the rest out)", n, err)
	}

	proxy.Set(ingesttest.Up)
	second, err := alarm.NewArchive(questDB(t, proxy.Addr()), opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	go func() { done <- second.Serve(ctx2) }()
	ingesttest.WaitCount(t, qdb, table, "", 4, 60*time.Second)
	ingesttest.WaitCount(t, qdb, table, "event = 'RAISED' AND cond = 'LOLO' AND lolo = 1 AND hihi = 50 AND latched = 'MAJOR'", 1, 10*time.Second)
	ingesttest.WaitCount(t, qdb, table, "event = 'CLEARED' AND reading = 20", 1, 10*time.Second)
	cancel2()
	if err := <-done; err != nil {
		t.Fatalf("second Serve = %v", err)
	}
	// Every write QuestDB acknowledged is applied: a duplicate would be counted.
	h, err := ingest.NewHistory(qdb, table)
	if err != nil {
		t.Fatal(err)
	}
	vctx, vcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer vcancel()
	if err := h.Visible(vctx); err != nil {
		t.Fatal(err)
	}
	if n, err := ingest.CountRows(vctx, qdb, table, ""); err != nil || n != 4 {
		t.Fatalf("%d rows (%v) once every write is applied, want exactly 4", n, err)
	}
}

// questDB is the QuestDB appender for addr.
func questDB(t testing.TB, addr string) ingest.Appender {
	t.Helper()
	app, err := questdb.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	return app
}
