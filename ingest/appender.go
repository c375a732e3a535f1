package ingest

import (
	"context"
	"errors"
	"time"
)

// Appender is the seam between the durable Writer and the database: everything
// the Writer needs from QuestDB, and nothing it can do without it. The QuestDB
// implementation (ILP over HTTP) is package ingest/questdb; tests put a fake in
// its place (ingesttest.FakeDB) to check every durability property without a
// database.
type Appender interface {
	// CreateTable runs a statement that creates a table if it is missing.
	CreateTable(ctx context.Context, stmt string) error
	// NewRequest returns an empty request to encode rows into.
	NewRequest() (Request, error)
}

// Request collects rows and sends them in one request. It is used by one
// goroutine at a time (the Writer hands a request in flight to another
// goroutine, and takes it back only when Send returned).
type Request interface {
	// Row starts a row of table.
	Row(table string) Row
	// Send sends the rows encoded since the last Send as one request. The
	// request is empty afterwards, whatever the outcome: the Writer keeps its
	// own copy of the rows until Send returns nil. A failure is a *SendError.
	Send(ctx context.Context) error
	// Close drops what the request holds and releases it. After a failed Send
	// the Writer closes the request and takes a new one (the failed one's
	// buffer may still be read by the transport).
	Close()
}

// Row is one row being encoded. The column methods return the Row so that they
// chain; At ends the row. A row the database cannot take (a bad name, a value
// it cannot encode) is refused by At, and is then not in the request.
type Row interface {
	Symbol(name, value string) Row
	Int64(name string, v int64) Row
	Float64(name string, v float64) Row
	String(name, value string) Row
	Bool(name string, v bool) Row
	// At ends the row with its designated timestamp.
	At(ctx context.Context, ts time.Time) error
}

// Reasons a request (or a table creation) failed: SendError.Reason, and the
// "reason" label of switchyard_ingest_flush_failures_total.
const (
	ReasonTransport   = "transport"    // no answer: refused, reset, timeout; retried
	ReasonServer      = "server_error" // 5xx or 421: retried
	ReasonBadRequest  = "bad_request"  // 400: a row is malformed; the batch is split
	ReasonTooLarge    = "too_large"    // 413: the batch is split
	ReasonOtherStatus = "other_status" // any other status (401, 403, 404...): retried, it needs an operator
	reasonEncode      = "encode"       // At refused a row
	reasonCreateTable = "create_table" // CREATE TABLE did not succeed: retried
)

// SendError is a failed Request.Send, classified.
type SendError struct {
	// Reason is one of the Reason constants.
	Reason string
	// Line is, for ReasonBadRequest, the 1-based line of the request (the row)
	// the database blamed; 0 when it did not say.
	Line int
	Err  error
}

func (e *SendError) Error() string { return e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// Recoverable reports whether sending the same rows again may succeed: every
// failure but a refusal of the rows themselves (400, 413), which the Writer
// cures by splitting the batch.
func (e *SendError) Recoverable() bool {
	return e.Reason != ReasonBadRequest && e.Reason != ReasonTooLarge
}

// sendFailure classifies any Send error: a *SendError as it says, anything else
// as a transport failure.
func sendFailure(err error) *SendError {
	var se *SendError
	if errors.As(err, &se) {
		return se
	}
	return &SendError{Reason: ReasonTransport, Err: err}
}

// encodeError is a row At refused.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return "encoding row: " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }
