package ingest

import "context"

// barrier is a caller of Writer.Archived waiting until the Writer has settled
// every sample it had taken from its source when the call arrived.
type barrier struct {
	target uint64
	done   chan struct{}
}

// Archived is the Writer's explicit flush: it sends what is pending at once
// (without waiting for FlushInterval) and returns once every sample published to
// the Writer's source before the call is settled: acknowledged by QuestDB (or set
// aside as a dead letter). It
// waits as long as that takes (through QuestDB outages) or until ctx ends. WAL
// tables make acknowledged rows visible to queries a moment later; see
// History.Visible. The Writer's Serve must be running for Archived to return nil;
// while archiving is stopped (SpoolStatus.Stopped) it returns ErrArchiveStopped.
func (w *Writer[T]) Archived(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case w.barriers <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		if w.stopped.Load() {
			return ErrArchiveStopped
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// addBarrier takes what the source holds now and registers the waiter. Called by
// Serve's goroutine.
func (w *Writer[T]) addBarrier(done chan struct{}) {
	w.drain()
	if w.settled >= w.taken {
		close(done)
		return
	}
	w.waiting = append(w.waiting, barrier{target: w.taken, done: done})
}

// settle counts n more settled samples and releases the barriers they satisfy.
func (w *Writer[T]) settle(n int) {
	w.settled += uint64(n)
	keep := w.waiting[:0]
	for _, b := range w.waiting {
		if w.settled >= b.target {
			close(b.done)
		} else {
			keep = append(keep, b)
		}
	}
	clear(w.waiting[len(keep):])
	w.waiting = keep
}
