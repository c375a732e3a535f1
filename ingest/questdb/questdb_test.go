package questdb

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		reason string
	}{
		{"transport", &url.Error{Op: "Post", URL: "http://x/write", Err: errors.New("connection refused")}, ingest.ReasonTransport},
		{"plain 503", errors.New("503: 503 Service Unavailable"), ingest.ReasonServer},
		{"503 after client retries", qdb.NewRetryTimeoutError(time.Second, errors.New("503: 503 Service Unavailable")), ingest.ReasonServer},
		{"transport after client retries", qdb.NewRetryTimeoutError(time.Second, errors.New("dial tcp: refused")), ingest.ReasonTransport},
		{"non-JSON 400", errors.New("400: 400 Bad Request -- oops"), ingest.ReasonBadRequest},
		{"non-JSON 421", errors.New("421: 421 Misdirected Request -- "), ingest.ReasonServer},
		{"non-JSON 413", errors.New("413: 413 Request Entity Too Large -- "), ingest.ReasonTooLarge},
		{"non-JSON 404", errors.New("404: 404 Not Found -- "), ingest.ReasonOtherStatus},
		{"wrapped", fmt.Errorf("ingest: %w", errors.New("500: 500 Internal Server Error")), ingest.ReasonServer},
		{"no status", errors.New("EOF"), ingest.ReasonTransport},
	} {
		if got, _ := classify(c.err); got != c.reason {
			t.Errorf("%s: classify(%v) = %q, want %q", c.name, c.err, got, c.reason)
		}
	}
}

func TestSenderConfParses(t *testing.T) {
	s, err := qdb.LineSenderFromConf(context.Background(), senderConf("127.0.0.1:9000"))
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close(context.Background())
	if !strings.Contains(senderConf("h:1"), "request_min_throughput=102400;") {
		t.Errorf("senderConf %q: want a non-zero request_min_throughput", senderConf("h:1"))
	}
}

// BenchmarkEncode5000 measures ILP encoding of a 5,000-sample batch (mixed kinds
// and bad-quality rows) into a request, without the network: the buffer
// is discarded by a flush under a cancelled context with client retries off.
func BenchmarkEncode5000(b *testing.B) {
	const n = 5000
	rows := benchSamples(n, time.Now().UnixNano())
	// A request as NewRequest makes, with the client's retries off so that the
	// failing flush returns at once.
	sender, err := qdb.LineSenderFromConf(context.Background(),
		"http::addr=127.0.0.1:1;auto_flush=off;retry_timeout=0;request_min_throughput=102400;")
	if err != nil {
		b.Fatal(err)
	}
	req := &request{row: row{s: sender}}
	defer req.Close()
	ctx := context.Background()
	dead, cancel := context.WithCancel(ctx)
	cancel()
	b.ReportAllocs()
	for b.Loop() {
		for i := range rows {
			if err := ingest.EncodeSample(ctx, req.Row(ingest.DefaultTable), ingest.DefaultTable, &rows[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := req.Send(dead); err == nil {
			b.Fatal("flush under a cancelled context succeeded")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}

// benchSamples returns n samples of mixed kinds, with bad-quality rows.
func benchSamples(n int, base int64) []telemetry.Sample {
	rows := make([]telemetry.Sample, n)
	for i := range rows {
		s := telemetry.Sample{Device: fmt.Sprintf("psu%03d", i%100), Channel: fmt.Sprintf("ch%d", i%8),
			TimeNs: base + int64(i)*1000, Seq: uint64(i + 1)}
		switch i % 5 {
		case 0, 1:
			s.Value = telemetry.Float(float64(i) * 1.5)
		case 2:
			s.Value = telemetry.Int(int64(i))
		case 3:
			s.Value = telemetry.String("OK,READY")
		case 4:
			if i%10 == 4 {
				s.Value = telemetry.Bool(true)
			} else {
				s.Quality, s.Err = telemetry.Timeout, "no reply within 500ms"
			}
		}
		rows[i] = s
	}
	return rows
}

// BenchmarkRawClient is ingest's BenchmarkWriterToQuestDB's ceiling in the same
// conditions:
// the same 50,000 rows per iteration, encoded exactly as the Writer encodes them,
// sent by one go-questdb-client sender in flushes of 5,000 rows (the Writer's
// batch) into a table made like the Writer's, with no hub, spool or bookkeeping.
func BenchmarkRawClient(b *testing.B) {
	addr := ingesttest.QuestDB(b)
	table := ingesttest.Table(b, addr)
	ctx := context.Background()
	if _, _, err := ingest.Query(ctx, addr, ingest.CreateTableSQL(table)); err != nil {
		b.Fatal(err)
	}
	s, err := qdb.LineSenderFromConf(ctx, fmt.Sprintf("http::addr=%s;auto_flush=off;", addr))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close(ctx)
	r := &row{s: s}
	const backlog, batch = 50000, 5000
	template := ingesttest.Samples(backlog, time.Now())
	rows := make([]telemetry.Sample, backlog)
	sent := uint64(0)
	for b.Loop() {
		b.StopTimer()
		copy(rows, template)
		for i := range rows {
			rows[i].Seq += sent
			rows[i].TimeNs += int64(sent) * 1000
		}
		b.StartTimer()
		for i := range rows {
			s.Table(table)
			if err := ingest.EncodeSample(ctx, r, table, &rows[i]); err != nil {
				b.Fatal(err)
			}
			if (i+1)%batch == 0 {
				if err := s.Flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
		sent += backlog
	}
	b.ReportMetric(float64(backlog)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
