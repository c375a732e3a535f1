package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/telemetry"
)

// Sender settings. The client's own retry loop sleeps without watching the context
// and blocks the writer's goroutine (and so the draining of the hub), so it is kept
// short; the Writer's backoff does the long-term retrying.
const (
	clientRetryTimeout  = 2 * time.Second
	clientRequestTimout = 10 * time.Second
	// clientMinThroughput stretches the request timeout for big batches: 100 KiB/s
	// gives a 1 MiB batch (about 5,000 samples) 10 s more. Never 0: the client
	// divides by it.
	clientMinThroughput = 100 << 10
	// maxLoggedBadRows bounds the log lines per delivered batch; the rest are counted.
	maxLoggedBadRows = 10
)

func senderConf(httpAddr string) string {
	return fmt.Sprintf("http::addr=%s;auto_flush=off;request_min_throughput=%d;request_timeout=%d;retry_timeout=%d;",
		httpAddr, clientMinThroughput, clientRequestTimout.Milliseconds(), clientRetryTimeout.Milliseconds())
}

// rowSchema is what a Writer's table looks like: the statement that creates it
// and how a spooled row (a telemetry.Sample) is encoded into it.
type rowSchema struct {
	create func(table string) string
	encode func(ctx context.Context, s qdb.LineSender, table string, smp *telemetry.Sample) error
}

// sampleSchema is the archive table of samples.
var sampleSchema = rowSchema{create: CreateTableSQL, encode: encodeRow}

// encodeRow appends one sample to the sender's buffer as a row of table.
func encodeRow(ctx context.Context, s qdb.LineSender, table string, smp *telemetry.Sample) error {
	s.Table(table).
		Symbol(colDevice, smp.Device).
		Symbol(colChannel, smp.Channel).
		Symbol(colQuality, smp.Quality.String()).
		Int64Column(colSeq, int64(smp.Seq))
	if smp.Quality == telemetry.Good {
		switch smp.Value.Kind {
		case telemetry.KindFloat:
			s.Float64Column(colValueDouble, smp.Value.F)
		case telemetry.KindInt:
			s.Int64Column(colValueLong, smp.Value.I)
		case telemetry.KindString:
			s.StringColumn(colValueString, smp.Value.S)
		case telemetry.KindBool:
			s.BoolColumn(colValueBool, smp.Value.B)
		}
	}
	if smp.Err != "" {
		s.StringColumn(colError, smp.Err)
	}
	return s.At(ctx, time.Unix(0, smp.TimeNs))
}

// encodeError is a row the client refused to encode.
type encodeError struct{ err error }

func (e *encodeError) Error() string { return "encoding row: " + e.err.Error() }
func (e *encodeError) Unwrap() error { return e.err }

// send encodes rows and flushes them in one request. It returns how many rows the
// request carried: fewer than len(rows) when the client refused to encode row
// number sent (it is then sent without it and the rest), and 0 with an
// *encodeError when the first row cannot be encoded.
func (w *Writer) send(ctx context.Context, rows []telemetry.Sample) (sent int, err error) {
	sent, err = w.encode(ctx, w.sender, rows)
	if err != nil {
		return 0, err
	}
	if err := w.sender.Flush(ctx); err != nil {
		// The client has emptied its buffer; rows[:sent] stay in w.pending.
		//
		// After a failed request net/http may still be copying the request body
		// (the client's buffer) to a dying connection from another goroutine, and
		// the client would reuse that buffer for our next encode: a data race. A
		// fresh sender encodes into fresh memory; the old buffer is left to that
		// goroutine and the garbage collector.
		if rerr := w.replaceSender(); rerr != nil {
			return sent, errors.Join(err, rerr)
		}
		return sent, err
	}
	return sent, nil
}

// encode appends rows to sender's buffer and returns how many went in: fewer than
// len(rows) when the client refused to encode row number sent (the rows before it
// are in the buffer), and 0 with an *encodeError when it refused the first.
func (w *Writer) encode(ctx context.Context, sender qdb.LineSender, rows []telemetry.Sample) (sent int, err error) {
	for i := range rows {
		if err := w.schema.encode(ctx, sender, w.opts.Table, &rows[i]); err != nil {
			if i == 0 {
				return 0, &encodeError{err}
			}
			break
		}
		sent++
	}
	return sent, nil
}

// newSender returns an ILP/HTTP sender for the Writer's QuestDB.
func (w *Writer) newSender() (qdb.LineSender, error) {
	s, err := qdb.LineSenderFromConf(context.Background(), senderConf(w.addr))
	if err != nil {
		return nil, fmt.Errorf("ingest: QuestDB sender for %s: %w", w.addr, err)
	}
	return s, nil
}

// replaceSender closes the sender and opens another. auto_flush is off, so Close
// sends nothing.
func (w *Writer) replaceSender() error {
	s, err := w.newSender()
	if err != nil {
		return err
	}
	old := w.sender
	w.sender = s
	_ = old.Close(context.Background())
	return nil
}

// deliver sends the first n pending rows, in requests of at most n rows, and
// removes from w.pending every row that QuestDB acknowledged or rejected as
// malformed. A row is declared bad only when a request carrying it alone is
// rejected with 400. It returns the first error that splitting cannot cure
// (transport, 5xx, 421...), leaving the undelivered rows at the head of w.pending.
func (w *Writer) deliver(ctx context.Context, n int) error {
	logged := 0
	for n > 0 {
		m := n
		for {
			sent, err := w.send(ctx, w.pending[:m])
			if err == nil {
				w.acked(sent)
				n -= sent
				break
			}
			reason, line := classify(err)
			w.m.flushFailures.WithLabelValues(reason).Inc()
			split := reason == reasonBadRequest || reason == reasonTooLarge || reason == reasonEncode
			if !split {
				return fmt.Errorf("ingest: sending %d rows to %s table %q: %w", m, w.addr, w.opts.Table, err)
			}
			if m == 1 || (reason == reasonEncode && sent == 0) {
				w.reject(&w.pending[0], err, &logged)
				w.consume(1)
				n--
				break
			}
			// Shrink to the rows before the one QuestDB blamed (line is 1-based
			// within the request), or halve when it did not say.
			switch {
			case line == 1:
				m = 1
			case line > 1 && line <= m:
				m = line - 1
			default:
				m /= 2
			}
		}
	}
	if logged > maxLoggedBadRows {
		w.log.Warn("ingest: more rows rejected than logged", "unlogged", logged-maxLoggedBadRows)
	}
	return nil
}

// reject counts a row QuestDB will never accept, and logs it while under the
// per-batch limit.
func (w *Writer) reject(smp *telemetry.Sample, err error, logged *int) {
	w.m.badRows.Inc()
	w.badRows.Add(1)
	if w.dead != nil {
		if derr := w.dead.writeSample(w.opts.Table, smp, err); derr != nil {
			w.log.Error("ingest: writing the dead-letter file; the rejected sample is only in this log",
				"err", derr, "sample", smp.String(), "ts_ns", smp.TimeNs, "questdb_err", err)
		} else {
			w.m.deadLetters.Inc()
		}
	}
	*logged++
	if *logged <= maxLoggedBadRows {
		w.log.Error("ingest: QuestDB rejected a sample; it is not archived",
			"sample", smp.String(), "ts_ns", smp.TimeNs, "err", err)
	}
}

// classify returns the failure's metric reason and, for a 400 from QuestDB, the
// 1-based line of the request it blamed (0 if none).
func classify(err error) (reason string, line int) {
	var ee *encodeError
	if errors.As(err, &ee) {
		return reasonEncode, 0
	}
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
	return reasonTransport, 0
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
		return reasonBadRequest
	case code == 413:
		return reasonTooLarge
	case code == 421 || code >= 500:
		return reasonServer
	default:
		return reasonOtherStatus
	}
}
