// Package questdb is the archive's Appender for QuestDB: rows go over ILP/HTTP
// with go-questdb-client, tables are created through the HTTP /exec endpoint.
// It is the only package of Switchyard that imports the QuestDB client; the
// durable Writer (package ingest) speaks to it through ingest.Appender.
//
// A request is one client sender with auto-flush off, so a request is exactly
// the rows the Writer encoded into it. The client's own retry loop sleeps
// without watching the context, so it is kept short; the Writer's backoff does
// the long-term retrying. Failures are classified as *ingest.SendError: 400 and
// 413 (the rows themselves; the Writer splits the batch), 5xx and 421 (the
// server), other statuses, and transport errors.
//
// An Appender is safe for concurrent use; each Request belongs to one goroutine
// at a time.
package questdb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/ingest"
)

// Sender settings.
const (
	clientRetryTimeout  = 2 * time.Second
	clientRequestTimout = 10 * time.Second
	// clientMinThroughput stretches the request timeout for big batches: 100 KiB/s
	// gives a 1 MiB batch (about 5,000 samples) 10 s more. Never 0: the client
	// divides by it.
	clientMinThroughput = 100 << 10
)

func senderConf(httpAddr string) string {
	return fmt.Sprintf("http::addr=%s;auto_flush=off;request_min_throughput=%d;request_timeout=%d;retry_timeout=%d;",
		httpAddr, clientMinThroughput, clientRequestTimout.Milliseconds(), clientRetryTimeout.Milliseconds())
}

// Appender writes to the QuestDB whose HTTP endpoint is its address.
type Appender struct{ addr string }

var _ ingest.Appender = (*Appender)(nil)

// New returns an Appender for the QuestDB HTTP endpoint httpAddr
// ("host:port"). It does no I/O.
func New(httpAddr string) (*Appender, error) {
	if httpAddr == "" {
		return nil, errors.New("questdb: HTTP address is empty")
	}
	return &Appender{addr: httpAddr}, nil
}

// Addr returns the QuestDB HTTP address.
func (a *Appender) Addr() string { return a.addr }

// CreateTable runs stmt through /exec.
func (a *Appender) CreateTable(ctx context.Context, stmt string) error {
	_, _, err := ingest.Query(ctx, a.addr, stmt)
	return err
}

// NewRequest returns an empty request: a fresh sender.
func (a *Appender) NewRequest() (ingest.Request, error) {
	s, err := qdb.LineSenderFromConf(context.Background(), senderConf(a.addr))
	if err != nil {
		return nil, fmt.Errorf("questdb sender for %s: %w", a.addr, err)
	}
	r := &request{}
	r.row.s = s
	return r, nil
}

type request struct{ row row }

func (r *request) Row(table string) ingest.Row {
	r.row.s.Table(table)
	return &r.row
}

func (r *request) Send(ctx context.Context) error {
	if err := r.row.s.Flush(ctx); err != nil {
		reason, line := classify(err)
		return &ingest.SendError{Reason: reason, Line: line, Err: err}
	}
	return nil
}

// Close closes the sender: auto_flush is off, so it sends nothing.
func (r *request) Close() { _ = r.row.s.Close(context.Background()) }

type row struct{ s qdb.LineSender }

func (w *row) Symbol(name, v string) ingest.Row      { w.s.Symbol(name, v); return w }
func (w *row) Int64(name string, v int64) ingest.Row { w.s.Int64Column(name, v); return w }
func (w *row) Float64(name string, v float64) ingest.Row {
	w.s.Float64Column(name, v)
	return w
}
func (w *row) String(name, v string) ingest.Row    { w.s.StringColumn(name, v); return w }
func (w *row) Bool(name string, v bool) ingest.Row { w.s.BoolColumn(name, v); return w }
func (w *row) At(ctx context.Context, ts time.Time) error {
	return w.s.At(ctx, ts)
}

// classify returns the failure's reason and, for a 400 from QuestDB, the
// 1-based line of the request it blamed (0 if none).
func classify(err error) (reason string, line int) {
	var he *qdb.HttpError
	if errors.As(err, &he) {
		return reasonForStatus(he.HttpStatus()), he.Line
	}
	// The client reports retryable statuses, and bodies that are not QuestDB JSON,
	// as plain "NNN: ..." errors, possibly inside a RetryTimeoutError.
	var rt *qdb.RetryTimeoutError
	if errors.As(err, &rt) && rt.LastErr != nil {
		err = rt.LastErr
		if errors.As(err, &he) {
			return reasonForStatus(he.HttpStatus()), he.Line
		}
	}
	if code := statusPrefix(err); code != 0 {
		return reasonForStatus(code), 0
	}
	return ingest.ReasonTransport, 0
}

// statusPrefix finds an error in err's tree whose message starts with "NNN:", an
// HTTP status as the client reports it, and returns the status (0 if none).
func statusPrefix(err error) int {
	if err == nil {
		return 0
	}
	if msg := err.Error(); len(msg) > 4 && msg[3] == ':' {
		if code, perr := strconv.Atoi(msg[:3]); perr == nil && code >= 100 && code <= 599 {
			return code
		}
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return statusPrefix(u.Unwrap())
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if code := statusPrefix(e); code != 0 {
				return code
			}
		}
	}
	return 0
}

func reasonForStatus(code int) string {
	switch {
	case code == 400:
		return ingest.ReasonBadRequest
	case code == 413:
		return ingest.ReasonTooLarge
	case code == 421 || code >= 500:
		return ingest.ReasonServer
	default:
		return ingest.ReasonOtherStatus
	}
}
