package ingest

import (
	"context"
	"fmt"
)

// Pipelined flushing. A request to QuestDB takes about as long as encoding its
// rows, so the Writer keeps two requests: while one is in flight (owned by a
// short-lived goroutine that only calls Send), Serve's goroutine drains the
// source and encodes the next batch into the other. Only one request is ever in
// flight, and a request's rows are acknowledged (consume: the spool position,
// Archived's waiters) only after it returned, so acknowledgements advance
// strictly in order. Any failure falls back to the one-request-at-a-time path
// in deliver, which owns retries, splitting and dead letters.

// flight is a request in flight and its answer.
type flight struct {
	req  Request
	rows int
	done chan error
}

// launch sends what req holds (rows rows) from a goroutine of its own.
func launch(ctx context.Context, req Request, rows int) *flight {
	f := &flight{req: req, rows: rows, done: make(chan error, 1)}
	go func() { f.done <- req.Send(ctx) }()
	return f
}

// discardSpare drops whatever the spare request holds.
func (w *Writer[T]) discardSpare() {
	if w.spare != nil {
		w.spare.Close()
		w.spare = nil
	}
}

// flush sends the rows pending now, in batches of BatchRows, and any full batches
// that arrive meanwhile; a smaller tail that arrived meanwhile waits for its own
// interval unless all is set. While a batch is in flight it drains the source and
// encodes the next batch (see flight).
func (w *Writer[T]) flush(ctx context.Context, all bool) error {
	target := len(w.pending)
	// wants reports whether the loop goes on to send a batch from pending[skip:].
	wants := func(skip int) bool {
		rest := len(w.pending) - skip
		return rest > 0 && (all || target-skip > 0 || rest >= w.opts.BatchRows)
	}
	ahead := 0 // rows at the head of pending already encoded into w.spare
	defer func() {
		if ahead > 0 {
			w.discardSpare()
		}
	}()
	for wants(0) {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := ahead
		if n == 0 {
			n = min(len(w.pending), w.opts.BatchRows)
			if !w.encodeAhead(ctx, 0, n) {
				// An encode error: deliver isolates the row.
				before := len(w.pending)
				err := w.deliver(ctx, n)
				target -= before - len(w.pending)
				if err != nil {
					return err
				}
				w.drain()
				continue
			}
		}
		// The encoded batch is in w.spare: it flies, w.req becomes the spare.
		f := launch(ctx, w.spare, n)
		w.spare, w.req = w.req, f.req
		ahead = 0
		w.drain()
		if wants(n) {
			if m := min(len(w.pending)-n, w.opts.BatchRows); w.encodeAhead(ctx, n, m) {
				ahead = m
			}
		}
		err := <-f.done
		if err == nil {
			w.acked(n)
			target -= n
			continue
		}
		// The failed request is empty, but the transport may still read its
		// buffer: replace it. The batch encoded ahead is dropped too; the rows
		// of both are still pending.
		if ahead > 0 {
			w.discardSpare()
			ahead = 0
		}
		if rerr := w.replaceRequest(); rerr != nil {
			return fmt.Errorf("ingest: sending %d rows to table %q: %w (and %w)", n, w.table.Name, err, rerr)
		}
		r := reason(err)
		w.m.flushFailures.WithLabelValues(r).Inc()
		if r != ReasonBadRequest && r != ReasonTooLarge {
			return fmt.Errorf("ingest: sending %d rows to table %q: %w", n, w.table.Name, err)
		}
		// A bad row: deliver sends the batch again, splitting it to isolate the row.
		before := len(w.pending)
		err = w.deliver(ctx, n)
		target -= before - len(w.pending)
		if err != nil {
			return err
		}
		w.drain()
	}
	return nil
}

// encodeAhead encodes the m pending rows after the first skip into the spare
// request and reports whether all of them went in. On an encode error the spare
// request is dropped (it may hold part of the batch) and the batch is left to
// deliver.
func (w *Writer[T]) encodeAhead(ctx context.Context, skip, m int) bool {
	if w.spare == nil {
		r, err := w.app.NewRequest()
		if err != nil {
			return false
		}
		w.spare = r
	}
	sent, err := w.encode(ctx, w.spare, w.pending[skip:skip+m])
	if err == nil && sent == m {
		return true
	}
	w.discardSpare()
	return false
}
