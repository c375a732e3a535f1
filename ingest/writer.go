package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/backoff"
)

// Source is where a Writer takes its records from. A *telemetry.Subscription
// (subscribed Lossless, so the archive sees every sample) is a
// Source[telemetry.Sample]; a *feed.Queue[T] is a Source[T].
type Source[T any] interface {
	// Ready receives a value whenever records may be waiting (coalesced).
	Ready() <-chan struct{}
	// Drain appends up to max waiting records (all when max <= 0) to dst in order.
	Drain(dst []T, max int) []T
}

// Options configures a Writer. The zero value is usable; every field documents its
// default.
type Options struct {
	// Table is the table's name. Default the Table's own (for samples
	// DefaultTable, "samples").
	Table string
	// BatchRows is the most rows sent in one request, and the pending count that
	// triggers a flush before FlushInterval. Default DefaultBatchRows.
	BatchRows int
	// FlushInterval bounds how long a record waits in memory before a flush is
	// attempted. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// DrainInterval is the least time between two takes from the source: the
	// Writer wakes for new records at most this often, so that one wake-up
	// (and, with a spool, one spool write and fsync: a group commit) serves
	// every record published meanwhile. Records wait in the source's queue, in
	// memory, until then. Default 20ms.
	DrainInterval time.Duration
	// RetryBackoffMin and RetryBackoffMax bound the jittered exponential delay
	// between failed attempts. Defaults 100ms and 10s.
	RetryBackoffMin time.Duration
	RetryBackoffMax time.Duration
	// ShutdownTimeout is how long Serve keeps trying to flush pending rows after its
	// context ends. Default 15s.
	ShutdownTimeout time.Duration
	// SpoolDir is the directory of the durable spool. Empty: no spool, and the
	// unacknowledged records live in memory only (lost on a crash).
	SpoolDir string
	// SpoolNoFsync skips the fsync after each spooled batch. Default false: every
	// batch is on disk before it counts as spooled. (The acknowledged position is
	// never fsynced: losing it only re-sends rows, harmless with DEDUP.)
	SpoolNoFsync bool
	// SpoolMaxBytes bounds the spool on disk. Default 1 GiB. At the bound the
	// Writer stops taking records from its source until QuestDB makes room.
	SpoolMaxBytes int64
	// SpoolSegmentBytes is the size at which a new segment file starts (whole
	// acknowledged segments are deleted). Default 64 MiB, at most SpoolMaxBytes/4.
	SpoolSegmentBytes int64
	// MaxPendingRows bounds the records held in memory without a spool: at the
	// bound the Writer stops taking records from its source until QuestDB
	// acknowledges some. Default 1,000,000.
	MaxPendingRows int
	// IntakeCapacity bounds a Recorder's queue of records waiting for Serve
	// (Record waits for room past it). Default DefaultIntakeCapacity.
	IntakeCapacity int
	// DeadLetterPath is the JSON-lines file that receives every row QuestDB
	// rejects, with QuestDB's message. Default SpoolDir/deadletter.jsonl; without
	// a spool and without a path, rejected rows are only logged and counted.
	DeadLetterPath string
	// Filter is the archive filter of a sample Writer (deadbands and heartbeats
	// per channel). Default nil: every sample is archived. Samples it holds back
	// are counted in switchyard_ingest_filtered_total.
	Filter *Filter
	// Logger receives failures and rejected rows. Default slog.Default().
	Logger *slog.Logger
	// Registerer receives the Writer's metrics, labelled with the table. Default:
	// none registered.
	Registerer prometheus.Registerer
}

// The Writer's default batching: a request (one QuestDB transaction) every
// second, or every DefaultBatchRows rows when they come faster. QuestDB's CPU
// goes mostly to each transaction, not to each row: at 40,000 samples/s it
// used about half as much CPU per sample with these as with the 5,000 rows
// and 250 ms before (README, Performance). Writer.Archived flushes at once
// whenever a reader needs what is pending.
const (
	DefaultBatchRows     = 20000
	DefaultFlushInterval = time.Second
)

func (o *Options) setDefaults() {
	if o.BatchRows <= 0 {
		o.BatchRows = DefaultBatchRows
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.DrainInterval <= 0 {
		o.DrainInterval = 20 * time.Millisecond
	}
	if o.RetryBackoffMin <= 0 {
		o.RetryBackoffMin = 100 * time.Millisecond
	}
	if o.RetryBackoffMax <= 0 {
		o.RetryBackoffMax = 10 * time.Second
	}
	if o.RetryBackoffMax < o.RetryBackoffMin {
		o.RetryBackoffMax = o.RetryBackoffMin
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.SpoolMaxBytes <= 0 {
		o.SpoolMaxBytes = 1 << 30
	}
	if o.SpoolSegmentBytes <= 0 {
		o.SpoolSegmentBytes = 64 << 20
	}
	o.SpoolSegmentBytes = max(4096, min(o.SpoolSegmentBytes, o.SpoolMaxBytes/4))
	if o.MaxPendingRows <= 0 {
		o.MaxPendingRows = 1_000_000
	}
	o.MaxPendingRows = max(o.MaxPendingRows, o.BatchRows)
	if o.DeadLetterPath == "" && o.SpoolDir != "" {
		o.DeadLetterPath = filepath.Join(o.SpoolDir, "deadletter.jsonl")
	}
}

// Errors of a Writer.
var (
	// ErrNotArchived is wrapped by Serve's error when it stops with records
	// that never reached QuestDB.
	ErrNotArchived = errors.New("samples not archived")
	// ErrArchiveStopped is returned by Archived while archiving is stopped
	// because the spool cannot be used (see SpoolStatus.Stopped).
	ErrArchiveStopped = errors.New("archiving stopped: the spool cannot be used")
)

// Writer archives the records of one Source into one table through an
// Appender, with a durable spool, retries and dead letters; see the package
// doc. Build it with NewWriter (or NewSampleWriter, NewEventWriter) and run
// Serve.
type Writer[T any] struct {
	app   Appender
	src   Source[T]
	table Table[T]
	opts  Options
	keep  func([]T) ([]T, int) // the archive filter; nil keeps everything
	log   *slog.Logger
	m     *metrics

	running atomic.Bool
	written atomic.Uint64
	npend   atomic.Int64
	badRows atomic.Uint64
	// oldestNs is the timestamp of the oldest unacknowledged record, 0 if none.
	oldestNs atomic.Int64

	// Owned by Serve's goroutine.
	req        Request   // idle between requests (see flush)
	spare      Request   // the other request of flush's pipeline; nil until needed
	pending    []T       // drained, not yet acknowledged, in source order
	pendingAt  time.Time // when the oldest pending row was drained
	tableReady bool
	final      bool // shutting down: the source has been drained for the last time

	// With a spool (nil without): pending is a window read from it, and pendEnd[i]
	// is the spool position after pending[i].
	sp        *spool
	pendEnd   []uint64
	unspooled []T // drained from the source, not yet spooled (spool full)
	fullLevel int // 0 below the warning level, 1 above it, 2 full
	spoolBuf  []byte
	recBuf    []byte   // one record's spool encoding
	spoolKept []int    // see spoolRecords
	spoolEnds []uint64 // see spoolRecords
	pendCnt   []int    // spool records settled with pending[i] (1, more after an undecodable one)
	dead      *deadLetter
	damage    spoolDamage // found in the spool so far (also in status)

	statusMu sync.Mutex
	status   SpoolStatus

	// Archived's waiters; taken and settled count records in source order.
	barriers chan chan struct{}
	waiting  []barrier
	taken    uint64 // taken from the source (and replayed from the spool)
	settled  uint64 // acknowledged or dead-lettered
	stopped  atomic.Bool
}

// NewWriter returns a Writer that archives the records of src into table
// through app. opts.Table, if set, overrides table.Name. It does no I/O; Serve
// does.
func NewWriter[T any](app Appender, src Source[T], table Table[T], opts Options) (*Writer[T], error) {
	if app == nil {
		return nil, errors.New("ingest: appender is nil")
	}
	if src == nil {
		return nil, errors.New("ingest: source is nil")
	}
	if opts.Table != "" {
		table.Name = opts.Table
	}
	opts.Table = table.Name
	if err := table.check(); err != nil {
		return nil, err
	}
	opts.setDefaults()
	w := &Writer[T]{
		app:   app,
		src:   src,
		table: table,
		opts:  opts,
		log:   opts.Logger.With("component", "ingest", "table", table.Name),

		barriers: make(chan chan struct{}),
	}
	w.m = newMetrics(opts.Registerer, table.Name, func() float64 {
		ns := w.oldestNs.Load()
		if ns == 0 {
			return 0
		}
		return max(0, time.Since(time.Unix(0, ns)).Seconds())
	})
	w.status.MaxBytes = opts.SpoolMaxBytes
	return w, nil
}

// Table returns the name of the Writer's table.
func (w *Writer[T]) Table() string { return w.table.Name }

// Written returns how many rows QuestDB has acknowledged.
func (w *Writer[T]) Written() uint64 { return w.written.Load() }

// Pending returns how many drained records wait for QuestDB: in the spool (and
// the one batch that did not fit a full spool) with a spool, in memory without.
func (w *Writer[T]) Pending() int { return int(w.npend.Load()) }

// BadRows returns how many records QuestDB rejected as malformed.
func (w *Writer[T]) BadRows() uint64 { return w.badRows.Load() }

// Serve creates the table if needed and archives the source's records until ctx
// ends, then flushes what is pending (see Options.ShutdownTimeout). It returns nil
// after a clean final flush, and an error wrapping ErrNotArchived if records were
// left unsent. A spool it cannot use does not end it: archiving stops (see
// SpoolStatus.Stopped) until the spool can be opened again. Serve may be called
// again after it returns (a supervisor's restart): it carries on with what is
// pending; it must not run twice at once.
func (w *Writer[T]) Serve(ctx context.Context) error {
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("ingest: Writer.Serve called while it runs")
	}
	defer w.running.Store(false)
	w.final = false
	req, err := w.app.NewRequest()
	if err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	w.req = req
	// Close drops what is encoded; unsent rows are still in w.pending.
	defer func() { w.req.Close() }()
	defer w.discardSpare()
	defer w.closeSpool()
	if err := w.openSpool(); err != nil {
		if !w.stopArchiving(ctx, err) {
			return nil
		}
	}

	bo := w.retry()
	var retryAt time.Time // no attempt before this; zero when not backing off
	failures := 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	drainTimer := time.NewTimer(time.Hour)
	defer drainTimer.Stop()
	var lastDrain time.Time
	for {
		if now := time.Now(); now.Sub(lastDrain) >= w.opts.DrainInterval {
			w.drain()
			lastDrain = now
		}
		if w.stopped.Load() && !w.stopArchiving(ctx, nil) {
			return nil
		}
		if ctx.Err() != nil {
			return w.shutdown(ctx)
		}
		now := time.Now()
		if !now.Before(retryAt) {
			err := w.step(ctx, now)
			if err == nil {
				if failures > 0 {
					w.log.Info("ingest: QuestDB writes succeed again", "failed_attempts", failures)
				}
				failures = 0
				bo.Reset()
				retryAt = time.Time{}
			} else if ctx.Err() == nil {
				failures++
				w.m.retries.Inc()
				delay := bo.Next()
				retryAt = time.Now().Add(delay)
				w.log.Warn("ingest: QuestDB write failed; retrying", "err", err,
					"attempt", failures, "retry_in", delay, "pending", len(w.pending))
			}
			if err != nil || w.due(time.Now()) {
				continue // re-check ctx, drain, maybe flush again
			}
		}
		w.waitWork(ctx, timer, drainTimer, retryAt, lastDrain)
	}
}

// waitWork waits for the next thing to do: a retry, a flush falling due, a
// barrier, ctx ending, or records in the source, taken no sooner than
// DrainInterval after the last take (lastDrain).
func (w *Writer[T]) waitWork(ctx context.Context, timer, drainTimer *time.Timer, retryAt, lastDrain time.Time) {
	var tc <-chan time.Time
	switch {
	case !retryAt.IsZero():
		timer.Reset(max(0, time.Until(retryAt)))
		tc = timer.C
	case len(w.pending) > 0:
		timer.Reset(max(0, time.Until(w.pendingAt.Add(w.opts.FlushInterval))))
		tc = timer.C
	}
	defer timer.Stop()
	var ready <-chan struct{}
	if !w.holding() {
		ready = w.src.Ready()
	}
	var drainC <-chan time.Time // armed once records wait, until DrainInterval after lastDrain
	for {
		select {
		case <-ctx.Done():
		case <-ready:
			if wait := time.Until(lastDrain.Add(w.opts.DrainInterval)); wait > 0 {
				// Group commit: take these with whatever comes meanwhile.
				drainTimer.Reset(wait)
				drainC, ready = drainTimer.C, nil
				continue
			}
		case <-drainC:
		case <-tc:
		case b := <-w.barriers:
			w.addBarrier(b)
		}
		if drainC != nil {
			drainTimer.Stop()
		}
		return
	}
}

// holding reports whether the Writer leaves its source alone for now (a full
// spool, or the memory bound without one): the source then holds its records,
// and a Lossless one applies back-pressure at its own bound.
func (w *Writer[T]) holding() bool {
	if w.sp != nil {
		return w.fullLevel == spoolLevelFull
	}
	return len(w.pending) >= w.opts.MaxPendingRows
}

// step makes sure the table exists and flushes when a flush is due.
func (w *Writer[T]) step(ctx context.Context, now time.Time) error {
	if !w.tableReady {
		if err := w.app.CreateTable(ctx, w.table.Create(w.table.Name)); err != nil {
			w.m.flushFailures.WithLabelValues(reasonCreateTable).Inc()
			return fmt.Errorf("ingest: creating table %q: %w", w.table.Name, err)
		}
		w.tableReady = true
	}
	if !w.due(now) {
		return nil
	}
	return w.flush(ctx, false)
}

// due reports whether pending rows should be sent now.
func (w *Writer[T]) due(now time.Time) bool {
	n := len(w.pending)
	return n > 0 && (len(w.waiting) > 0 || n >= w.opts.BatchRows || now.Sub(w.pendingAt) >= w.opts.FlushInterval)
}

// filter applies the archive filter to a batch just taken from the source.
func (w *Writer[T]) filter(batch []T) []T {
	if w.keep == nil {
		return batch
	}
	kept, dropped := w.keep(batch)
	w.m.filtered.Add(float64(dropped))
	return kept
}

// drain moves what the source holds into w.pending (through the spool when
// there is one), up to the memory bound without a spool.
func (w *Writer[T]) drain() {
	if w.stopped.Load() {
		return
	}
	if w.sp != nil {
		w.drainToSpool()
		return
	}
	if w.final {
		return
	}
	before := len(w.pending)
	if room := w.opts.MaxPendingRows - before; room > 0 {
		w.pending = w.src.Drain(w.pending, room)
	}
	kept := w.filter(w.pending[before:])
	w.pending = w.pending[:before+len(kept)]
	w.taken += uint64(len(kept))
	if before == 0 && len(w.pending) > 0 {
		w.pendingAt = time.Now()
	}
	w.setPending()
}

// acked consumes the first n pending rows, which one request QuestDB
// acknowledged carried, counting them first: consume releases Archived's
// waiters, who may read the counters.
func (w *Writer[T]) acked(n int) {
	w.m.flushes.Inc()
	w.m.written.Add(float64(n))
	w.written.Add(uint64(n))
	w.consume(n)
}

// consume drops the first n pending rows (acknowledged or rejected).
func (w *Writer[T]) consume(n int) {
	if w.sp != nil {
		w.ackSpool(n)
	} else {
		w.settle(n)
	}
	clear(w.pending[:n]) // let the strings go
	w.pending = w.pending[n:]
	if len(w.pending) == 0 {
		w.pending = w.pending[:0:0] // start a fresh backing array next drain
	} else {
		w.pendingAt = time.Now()
	}
	w.setPending()
}

func (w *Writer[T]) setPending() {
	n := len(w.pending)
	if w.sp != nil {
		n = w.sp.unacked + len(w.unspooled)
		w.setSpoolMetrics()
	}
	if len(w.pending) > 0 && w.table.Time != nil {
		w.oldestNs.Store(w.table.Time(&w.pending[0]))
	} else {
		w.oldestNs.Store(0)
	}
	w.npend.Store(int64(n))
	w.m.pending.Set(float64(n))
}

// shutdown drains the source a last time and keeps flushing for ShutdownTimeout.
func (w *Writer[T]) shutdown(parent context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), w.opts.ShutdownTimeout)
	defer cancel()
	bo := w.retry()
	var lastErr error
	// One last drain: what the source receives after this is not ours to archive
	// (stop producers before the archive).
	w.drain()
	w.final = true
	for {
		if len(w.pending) == 0 && len(w.unspooled) == 0 {
			return nil
		}
		err := w.step(ctx, time.Now())
		if err == nil {
			err = w.flush(ctx, true)
		}
		if err == nil {
			continue
		}
		if ctx.Err() == nil || lastErr == nil {
			lastErr = err
		}
		if _, err := bo.Wait(ctx); err == nil {
			continue
		}
		if w.sp != nil && len(w.unspooled) == 0 {
			w.log.Warn("ingest: stopping with records in the spool; they are archived at the next start",
				"spooled", w.sp.unacked, "dir", w.opts.SpoolDir, "last_err", lastErr)
			return nil
		}
		n := len(w.pending)
		if w.sp != nil {
			n = len(w.unspooled)
		}
		w.log.Error("ingest: stopping with records NOT archived in QuestDB",
			"not_archived", n, "shutdown_timeout", w.opts.ShutdownTimeout, "last_err", lastErr)
		return fmt.Errorf("ingest: %d %w in table %q after retrying for %s: %w",
			n, ErrNotArchived, w.table.Name, w.opts.ShutdownTimeout, lastErr)
	}
}

// retry returns the retry delays of one run of the writer: exponential from
// RetryBackoffMin to RetryBackoffMax, up to half of each delay taken off at
// random so that writers do not retry in lockstep.
func (w *Writer[T]) retry() *backoff.Backoff {
	return backoff.New(backoff.Policy{Min: w.opts.RetryBackoffMin, Max: w.opts.RetryBackoffMax, Jitter: 0.5})
}
