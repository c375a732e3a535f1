package ingest

import (
	"context"

	"github.com/switchyard/switchyard/feed"
)

// DefaultIntakeCapacity bounds a Recorder's queue when Options.IntakeCapacity
// is zero.
const DefaultIntakeCapacity = 100_000

// Recorder is a Writer fed one record at a time by Record: the archive of
// records that are not a telemetry stream (device events, alarm transitions,
// audit records). Records wait in a bounded, lossless queue (a feed.Queue)
// until Serve spools them.
type Recorder[T any] struct {
	*Writer[T]
	q *feed.Queue[T]
}

// NewRecorder returns a Recorder for table through app. Run its Serve.
func NewRecorder[T any](app Appender, table Table[T], opts Options) (*Recorder[T], error) {
	capacity := opts.IntakeCapacity
	if capacity <= 0 {
		capacity = DefaultIntakeCapacity
	}
	q := feed.New(feed.Options[T]{Policy: feed.Lossless, Capacity: capacity})
	w, err := NewWriter(app, Source[T](q), table, opts)
	if err != nil {
		return nil, err
	}
	return &Recorder[T]{Writer: w, q: q}, nil
}

// Record queues v for the archive. It never drops: when the queue is at its
// bound (Serve not running, or its spool full) it waits for room
// (back-pressure on the caller), until ctx ends (context.Cause(ctx), v not
// queued). It is safe for concurrent use.
func (r *Recorder[T]) Record(ctx context.Context, v T) error { return r.q.Push(ctx, v) }

// Queued returns how many records wait for Serve.
func (r *Recorder[T]) Queued() int { return r.q.Len() }
