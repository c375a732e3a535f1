package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/telemetry"
)

// waitTimeout bounds every poll; WAL tables and retries make results eventual.
const waitTimeout = 60 * time.Second

// makeSamples: see ingesttest.Samples.
var makeSamples = ingesttest.Samples

func testBase() time.Time { return time.Now().Truncate(time.Microsecond) }

func quietLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(&testLogWriter{t}, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type testLogWriter struct{ t *testing.T }

func (w *testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// running is a Writer whose Serve runs in a goroutine until stop.
type running struct {
	*ingest.SampleWriter
	cancel context.CancelFunc
	done   chan error
}

func startWriter(t *testing.T, addr string, src ingest.Source[telemetry.Sample], opts ingest.Options) *running {
	t.Helper()
	return startWriterTo(t, questDB(t, addr), src, opts)
}

// startWriterTo runs a sample Writer into app (QuestDB or a fake).
func startWriterTo(t *testing.T, app ingest.Appender, src ingest.Source[telemetry.Sample], opts ingest.Options) *running {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quietLogger(t)
	}
	w, err := ingest.NewSampleWriter(app, src, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{SampleWriter: w, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- w.Serve(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop cancels Serve and returns its result; later calls return nil.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	if r.done == nil {
		return nil
	}
	r.cancel()
	select {
	case err := <-r.done:
		r.done = nil
		return err
	case <-time.After(waitTimeout):
		t.Fatal("Serve did not return after its context ended")
		return nil
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

func publish(hub *telemetry.Hub, samples []telemetry.Sample, batch int) {
	for len(samples) > 0 {
		k := min(batch, len(samples))
		hub.Publish(samples[:k]...)
		samples = samples[k:]
	}
}

func countWhere(t *testing.T, addr, table, where string) int64 {
	t.Helper()
	n, err := ingest.CountRows(context.Background(), addr, table, where)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func archiveSub(hub *telemetry.Hub) *telemetry.Subscription {
	return hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
}

func TestArchivesEverySampleOnce(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	const n = 20000
	samples := makeSamples(n, testBase())

	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()
	w := startWriter(t, addr, sub, ingest.Options{Table: table, Registerer: reg})
	publish(hub, samples, 100)

	eventually.True(t, waitTimeout, "every sample written", func() bool { return w.Written() == n })
	if err := w.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if w.Pending() != 0 || sub.Len() != 0 || w.BadRows() != 0 {
		t.Errorf("after stop: pending %d, hub queue %d, bad rows %d; want 0, 0, 0", w.Pending(), sub.Len(), w.BadRows())
	}
	ingesttest.WaitCount(t, addr, table, "", n, waitTimeout)

	distinct, err := ingest.QueryInt(context.Background(), addr,
		fmt.Sprintf(`SELECT count() FROM (SELECT DISTINCT device, channel, seq FROM "%s")`, table))
	if err != nil {
		t.Fatal(err)
	}
	if distinct != n {
		t.Errorf("distinct (device, channel, seq) = %d, want %d", distinct, n)
	}

	var floats, ints, strs, trues, bad int64
	for i := range samples {
		s := &samples[i]
		switch {
		case s.Quality != telemetry.Good:
			bad++
		case s.Value.Kind == telemetry.KindFloat:
			floats++
		case s.Value.Kind == telemetry.KindInt:
			ints++
		case s.Value.Kind == telemetry.KindString:
			strs++
		case s.Value.Kind == telemetry.KindBool && s.Value.B:
			trues++
		}
	}
	for _, c := range []struct {
		where string
		want  int64
	}{
		{"value_double IS NOT NULL", floats},
		{"value_long IS NOT NULL", ints},
		{"value_string IS NOT NULL", strs},
		{"value_bool", trues},
		{"quality = 'TIMEOUT' AND error = 'no reply within 500ms' AND value_double IS NULL AND value_long IS NULL AND value_string IS NULL", bad},
		{"quality = 'GOOD' AND error IS NULL", n - bad},
	} {
		if got := countWhere(t, addr, table, c.where); got != c.want {
			t.Errorf("rows where %s: %d, want %d", c.where, got, c.want)
		}
	}

	// Values survive the trip, escapes included.
	for _, i := range []int{0, 3, 5, 7} {
		s := samples[i]
		cols, rows, err := ingest.Query(context.Background(), addr, fmt.Sprintf(
			`SELECT value_double, value_long, value_string, value_bool, cast(ts AS LONG) FROM "%s" WHERE seq = %d`, table, s.Seq))
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 1 || len(cols) != 5 {
			t.Fatalf("seq %d: %d rows, want 1", s.Seq, len(rows))
		}
		r := rows[0]
		var got string
		switch s.Value.Kind {
		case telemetry.KindFloat:
			got = fmt.Sprint(r[0])
		case telemetry.KindInt:
			got = fmt.Sprint(r[1])
		case telemetry.KindString:
			got = fmt.Sprintf("%q", r[2])
		case telemetry.KindBool:
			got = fmt.Sprint(r[3])
		}
		if got != s.Value.String() {
			t.Errorf("seq %d: archived value %s, want %s", s.Seq, got, s.Value)
		}
		if ts := fmt.Sprint(r[4]); ts != fmt.Sprint(s.TimeNs/1000) {
			t.Errorf("seq %d: archived ts %s µs, want %d", s.Seq, ts, s.TimeNs/1000)
		}
	}
	if got := metrictest.Sum(t, reg, "switchyard_ingest_rows_written_total"); got != n {
		t.Errorf("rows written metric = %v, want %d", got, n)
	}
}

func TestResendCreatesNoDuplicates(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	const n = 1000
	samples := makeSamples(n+1, testBase())
	first, marker := samples[:n], samples[n]

	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	w := startWriter(t, addr, sub, ingest.Options{Table: table})
	hub.Publish(first...)
	eventually.True(t, waitTimeout, "first send", func() bool { return w.Written() == n })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", n, waitTimeout)

	// The same samples again, plus one new one, in one request (one WAL
	// transaction): when the new row is visible, so is the effect of the re-send.
	hub2 := telemetry.NewHub(nil)
	sub2 := archiveSub(hub2)
	defer sub2.Close()
	w2 := startWriter(t, addr, sub2, ingest.Options{Table: table})
	hub2.Publish(append(append([]telemetry.Sample(nil), first...), marker)...)
	eventually.True(t, waitTimeout, "re-send", func() bool { return w2.Written() == n+1 })
	if err := w2.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", n+1, waitTimeout)
}

func TestSurvivesOutages(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	proxy := ingesttest.NewProxy(t, addr)
	const per = 3000
	samples := makeSamples(4*per, testBase())

	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()

	// Down before the start: the table cannot be created yet; samples wait in memory.
	proxy.Set(ingesttest.Drop)
	w := startWriter(t, proxy.Addr(), sub, ingest.Options{
		Table: table, Registerer: reg,
		RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond,
	})
	publish(hub, samples[:per], 100)
	eventually.True(t, waitTimeout, "phase 0 drained into memory", func() bool { return w.Pending() == per && sub.Len() == 0 })
	eventually.True(t, waitTimeout, "a failed table creation", func() bool {
		return metrictest.Sum(t, reg, "switchyard_ingest_flush_failures_total", "reason", "create_table") > 0
	})

	proxy.Set(ingesttest.Up)
	eventually.True(t, waitTimeout, "phase 0 written", func() bool { return w.Written() == per })

	for _, phase := range []struct {
		mode   ingesttest.Mode
		reason string
	}{
		{ingesttest.Unavailable, "server_error"},
		{ingesttest.Drop, "transport"},
	} {
		proxy.Set(phase.mode)
		written := w.Written()
		pending := w.Pending()
		publish(hub, samples[written+uint64(pending):written+uint64(pending)+per], 100)
		eventually.True(t, waitTimeout, phase.reason+" failure counted", func() bool {
			return metrictest.Sum(t, reg, "switchyard_ingest_flush_failures_total", "reason", phase.reason) > 0
		})
		eventually.True(t, waitTimeout, "samples drained into memory during "+phase.reason, func() bool {
			return w.Pending() == pending+per && sub.Len() == 0
		})
		if w.Written() != written {
			t.Fatalf("written moved from %d to %d while QuestDB was unreachable", written, w.Written())
		}
	}

	proxy.Set(ingesttest.Up)
	publish(hub, samples[3*per:], 100)
	eventually.True(t, waitTimeout, "everything written after the outage", func() bool { return w.Written() == 4*per })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", 4*per, waitTimeout)
}

func TestIsolatesBadRows(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	// value_string typed LONG: QuestDB answers 400 to any request carrying a string.
	ddl := strings.Replace(ingest.CreateTableSQL(table), "value_string VARCHAR", "value_string LONG", 1)
	if _, _, err := ingest.Query(context.Background(), addr, ddl); err != nil {
		t.Fatal(err)
	}
	const n = 2000
	base := testBase()
	samples := make([]telemetry.Sample, n)
	badAt := map[int]bool{0: true, 777: true, 778: true, 1500: true, n - 1: true}
	for i := range samples {
		samples[i] = telemetry.Sample{Device: "dmm", Channel: "v", TimeNs: base.UnixNano() + int64(i)*1000,
			Seq: uint64(i + 1), Value: telemetry.Float(float64(i))}
		if badAt[i] {
			samples[i].Value = telemetry.String("not a number")
		}
	}
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()
	w := startWriter(t, addr, sub, ingest.Options{Table: table, Registerer: reg, BatchRows: 1000})
	hub.Publish(samples...)

	good := uint64(n - len(badAt))
	eventually.True(t, waitTimeout, "good rows written, bad ones rejected", func() bool {
		return w.Written() == good && w.BadRows() == uint64(len(badAt))
	})
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "", int64(good), waitTimeout)
	ingesttest.WaitCount(t, addr, table, "seq IN (1, 778, 779, 1501, 2000)", 0, waitTimeout)
	if got := metrictest.Sum(t, reg, "switchyard_ingest_bad_rows_total"); got != float64(len(badAt)) {
		t.Errorf("bad rows metric = %v, want %d", got, len(badAt))
	}
	if got := metrictest.Sum(t, reg, "switchyard_ingest_flush_failures_total", "reason", "bad_request"); got == 0 {
		t.Error("no bad_request failure counted")
	}
}

func TestShutdownFlushesPending(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	const n = 3000
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	// Nothing would flush for an hour: only shutdown sends these rows.
	w := startWriter(t, addr, sub, ingest.Options{Table: table, BatchRows: 1 << 20, FlushInterval: time.Hour})
	publish(hub, makeSamples(n, testBase()), 500)
	eventually.True(t, waitTimeout, "samples pending", func() bool { return w.Pending() == n })
	if w.Written() != 0 {
		t.Fatalf("written %d before shutdown, want 0", w.Written())
	}
	if err := w.stop(t); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if w.Written() != n || w.Pending() != 0 {
		t.Fatalf("after shutdown: written %d, pending %d; want %d, 0", w.Written(), w.Pending(), n)
	}
	ingesttest.WaitCount(t, addr, table, "", n, waitTimeout)
}

func TestShutdownReportsUnarchived(t *testing.T) {
	// A loopback port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()

	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	w := startWriter(t, dead, sub, ingest.Options{
		ShutdownTimeout: 300 * time.Millisecond,
		RetryBackoffMin: 5 * time.Millisecond, RetryBackoffMax: 50 * time.Millisecond,
	})
	hub.Publish(makeSamples(10, testBase())...)
	eventually.True(t, waitTimeout, "samples pending", func() bool { return w.Pending() == 10 })
	err = w.stop(t)
	if !errors.Is(err, ingest.ErrNotArchived) {
		t.Fatalf("Serve = %v, want an error wrapping ErrNotArchived", err)
	}
	if !strings.Contains(err.Error(), "10 samples not archived") {
		t.Errorf("Serve error %q does not say how many samples were lost", err)
	}
}

func TestNewWriterRejectsBadConfig(t *testing.T) {
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	if _, err := questdb.New(""); err == nil {
		t.Error("questdb.New with no address succeeded, want an error")
	}
	db := ingesttest.NewFakeDB()
	for _, c := range []struct {
		name string
		app  ingest.Appender
		src  ingest.Source[telemetry.Sample]
		opts ingest.Options
	}{
		{"no appender", nil, sub, ingest.Options{}},
		{"no source", db, nil, ingest.Options{}},
		{"bad table", db, sub, ingest.Options{Table: "a/b"}},
		{"dot table", db, sub, ingest.Options{Table: ".x"}},
	} {
		if _, err := ingest.NewSampleWriter(c.app, c.src, c.opts); err == nil {
			t.Errorf("%s: NewSampleWriter succeeded, want an error", c.name)
		}
	}
}

func TestQueryReportsQuestDBError(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	_, _, err := ingest.Query(context.Background(), addr, "SELECT * FROM switchyard_no_such_table")
	var qe *ingest.QueryError
	if !errors.As(err, &qe) {
		t.Fatalf("Query = %v, want a *QueryError", err)
	}
	if !strings.Contains(qe.Message, "does not exist") || qe.Position < 0 {
		t.Errorf("QueryError = %+v, want QuestDB's message and position", qe)
	}
}
