package ingest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/telemetry"
)

func TestClassify(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		reason string
	}{
		{"transport", &url.Error{Op: "Post", URL: "http://x/write", Err: errors.New("connection refused")}, reasonTransport},
		{"plain 503", errors.New("503: 503 Service Unavailable"), reasonServer},
		{"503 after client retries", qdb.NewRetryTimeoutError(time.Second, errors.New("503: 503 Service Unavailable")), reasonServer},
		{"transport after client retries", qdb.NewRetryTimeoutError(time.Second, errors.New("dial tcp: refused")), reasonTransport},
		{"non-JSON 400", errors.New("400: 400 Bad Request -- oops"), reasonBadRequest},
		{"non-JSON 421", errors.New("421: 421 Misdirected Request -- "), reasonServer},
		{"non-JSON 413", errors.New("413: 413 Request Entity Too Large -- "), reasonTooLarge},
		{"non-JSON 404", errors.New("404: 404 Not Found -- "), reasonOtherStatus},
		{"encode", &encodeError{errors.New("buffer size exceeded")}, reasonEncode},
		{"wrapped", fmt.Errorf("ingest: %w", errors.New("500: 500 Internal Server Error")), reasonServer},
		{"no status", errors.New("EOF"), reasonTransport},
	} {
		if got, _ := classify(c.err); got != c.reason {
			t.Errorf("%s: classify(%v) = %q, want %q", c.name, c.err, got, c.reason)
		}
	}
}

func TestValidateTableName(t *testing.T) {
	for name, ok := range map[string]bool{
		"samples": true, "test_a_1": true, "with space": true, "a.b": true,
		"": false, ".a": false, "a.": false, "a/b": false, `a"b`: false, "a\nb": false,
		strings.Repeat("x", 128): false,
	} {
		if err := validateTableName(name); (err == nil) != ok {
			t.Errorf("validateTableName(%q) = %v, want ok=%v", name, err, ok)
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
// and bad-quality rows) into the sender's buffer, without the network: the buffer
// is discarded by a flush under a cancelled context with client retries off.
func BenchmarkEncode5000(b *testing.B) {
	const n = 5000
	rows := make([]telemetry.Sample, n)
	base := time.Now().UnixNano()
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
	sender, err := qdb.LineSenderFromConf(context.Background(),
		"http::addr=127.0.0.1:1;auto_flush=off;retry_timeout=0;request_min_throughput=102400;")
	if err != nil {
		b.Fatal(err)
	}
	defer sender.Close(context.Background())
	ctx := context.Background()
	dead, cancel := context.WithCancel(ctx)
	cancel()
	b.ReportAllocs()
	for b.Loop() {
		for i := range rows {
			if err := encodeRow(ctx, sender, DefaultTable, &rows[i]); err != nil {
				b.Fatal(err)
			}
		}
		if err := sender.Flush(dead); err == nil {
			b.Fatal("flush under a cancelled context succeeded")
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
