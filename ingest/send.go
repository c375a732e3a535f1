package ingest

import (
	"context"
	"errors"
	"fmt"
)

// maxLoggedBadRows bounds the log lines per delivered batch; the rest are counted.
const maxLoggedBadRows = 10

// send encodes rows and sends them in one request. It returns how many rows the
// request carried: fewer than len(rows) when At refused row number sent (it is
// then sent without it and the rest), and 0 with an *encodeError when it refused
// the first row.
func (w *Writer[T]) send(ctx context.Context, rows []T) (sent int, err error) {
	sent, err = w.encode(ctx, w.req, rows)
	if err != nil {
		return 0, err
	}
	if err := w.req.Send(ctx); err != nil {
		// The request is empty; rows[:sent] stay in w.pending. A fresh request
		// encodes into fresh memory (the transport may still read the old one).
		if rerr := w.replaceRequest(); rerr != nil {
			return sent, errors.Join(err, rerr)
		}
		return sent, err
	}
	return sent, nil
}

// encode appends rows to req and returns how many went in: fewer than len(rows)
// when At refused row number sent (the rows before it are in the request), and
// 0 with an *encodeError when it refused the first.
func (w *Writer[T]) encode(ctx context.Context, req Request, rows []T) (sent int, err error) {
	for i := range rows {
		if err := w.table.Row(ctx, req.Row(w.table.Name), w.table.Name, &rows[i]); err != nil {
			if i == 0 {
				return 0, &encodeError{err}
			}
			break
		}
		sent++
	}
	return sent, nil
}

// replaceRequest closes the idle request and takes a new one.
func (w *Writer[T]) replaceRequest() error {
	r, err := w.app.NewRequest()
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	old := w.req
	w.req = r
	old.Close()
	return nil
}

// reason is a failure's metric label.
func reason(err error) string {
	var ee *encodeError
	if errors.As(err, &ee) {
		return reasonEncode
	}
	return sendFailure(err).Reason
}

// deliver sends the first n pending rows, in requests of at most n rows, and
// removes from w.pending every row that QuestDB acknowledged or rejected as
// malformed. A row is declared bad only when a request carrying it alone is
// rejected with 400. It returns the first error that splitting cannot cure
// (transport, 5xx, 421...), leaving the undelivered rows at the head of w.pending.
func (w *Writer[T]) deliver(ctx context.Context, n int) error {
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
			r := reason(err)
			w.m.flushFailures.WithLabelValues(r).Inc()
			if r != ReasonBadRequest && r != ReasonTooLarge && r != reasonEncode {
				return fmt.Errorf("ingest: sending %d rows to table %q: %w", m, w.table.Name, err)
			}
			if m == 1 || (r == reasonEncode && sent == 0) {
				w.reject(&w.pending[0], err, &logged)
				w.consume(1)
				n--
				break
			}
			// Shrink to the rows before the one QuestDB blamed (line is 1-based
			// within the request), or halve when it did not say.
			line := 0
			if r == ReasonBadRequest {
				line = sendFailure(err).Line
			}
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

// describe is the dead-letter line of v (and what its log line says).
func (w *Writer[T]) describe(v *T) DeadLetter {
	dl := DeadLetter{Table: w.table.Name}
	if w.table.Describe != nil {
		w.table.Describe(v, &dl)
	} else {
		dl.Raw = fmt.Sprintf("%x", w.table.Append(nil, v))
	}
	return dl
}

// reject counts a row QuestDB will never accept, keeps it in the dead-letter
// file, and logs it while under the per-batch limit.
func (w *Writer[T]) reject(v *T, err error, logged *int) {
	w.m.badRows.Inc()
	w.badRows.Add(1)
	dl := w.describe(v)
	w.deadLetter(&dl, err)
	*logged++
	if *logged <= maxLoggedBadRows {
		w.log.Error("ingest: QuestDB rejected a row; it is not archived", "row", dl.summary(), "err", err)
	}
}

// deadLetter writes dl, with cause, to the dead-letter file if there is one.
func (w *Writer[T]) deadLetter(dl *DeadLetter, cause error) {
	if w.dead == nil {
		return
	}
	dl.Error = cause.Error()
	if err := w.dead.write(dl); err != nil {
		w.log.Error("ingest: writing the dead-letter file; the rejected row is only in this log",
			"err", err, "row", dl.summary(), "cause", cause)
		return
	}
	w.m.deadLetters.Inc()
}
