package ingest

import (
	"context"
	"errors"
	"sync"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/telemetry"
)

// DefaultEventTable is the table of device events (connect, disconnect,
// restart, config change).
const DefaultEventTable = "device_events"

// Event is one row of an event table: something that happened to a source at a
// time, such as a device connecting or an alarm changing state.
type Event struct {
	// TimeNs is when it happened, nanoseconds since the Unix epoch (stored with
	// QuestDB's microsecond precision).
	TimeNs int64
	// Source is what it happened to (a device name, an alarm name).
	Source string
	// Kind says what happened ("connected", "disconnected", "backoff",
	// "restarted", "config_changed", "alarm_raised"...).
	Kind string
	// Seq numbers the source's events; with TimeNs, Source and Kind it is the
	// table's DEDUP key, so make it unique per source (EventWriter.Record does
	// when it is zero).
	Seq uint64
	// Message is a short human text; Detail anything longer (an error, a state).
	Message, Detail string
}

// CreateEventTableSQL returns the statement that creates an event table if it is
// missing, with DEDUP keys that make a re-sent batch harmless.
func CreateEventTableSQL(table string) string {
	return "CREATE TABLE IF NOT EXISTS " + quoteIdent(table) + ` (
	ts TIMESTAMP,
	source SYMBOL,
	kind SYMBOL,
	seq LONG,
	message VARCHAR,
	detail VARCHAR
) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, source, kind, seq)`
}

// Events travel through the Writer's spool as samples: Device=Source,
// Channel=Kind, Value=String(Message), Err=Detail.
func eventToSample(e *Event) telemetry.Sample {
	return telemetry.Sample{Device: e.Source, Channel: e.Kind, TimeNs: e.TimeNs, Seq: e.Seq,
		Value: telemetry.String(e.Message), Err: e.Detail}
}

func sampleToEvent(smp *telemetry.Sample) Event {
	return Event{TimeNs: smp.TimeNs, Source: smp.Device, Kind: smp.Channel, Seq: smp.Seq,
		Message: smp.Value.S, Detail: smp.Err}
}

// EventTable is the table of an EventWriter made with NewEventWriterFor: a table
// of its own columns, filled from Events that carry them (in Message, as JSON
// for example), with the EventWriter's guarantees.
type EventTable struct {
	// Create returns the statement that creates the table if it is missing. Its
	// DEDUP keys must make a re-sent batch harmless.
	Create func(table string) string
	// Encode appends e to s as one row of table, ending it with At. It must
	// check e before writing anything to s: an error then sets the event aside
	// in the dead-letter file (with the reason) instead of archiving it.
	Encode func(ctx context.Context, s qdb.LineSender, table string, e *Event) error
}

var eventSchema = rowSchema{
	create: CreateEventTableSQL,
	encode: func(ctx context.Context, s qdb.LineSender, table string, smp *telemetry.Sample) error {
		s.Table(table).Symbol("source", smp.Device).Symbol("kind", smp.Channel).
			Int64Column("seq", int64(smp.Seq)).StringColumn("message", smp.Value.S)
		if smp.Err != "" {
			s.StringColumn("detail", smp.Err)
		}
		return s.At(ctx, time.Unix(0, smp.TimeNs))
	},
}

// EventWriter archives events into an event table with the same guarantee as
// the sample Writer: spooled (with Options.SpoolDir, which must differ from the
// sample Writer's), retried until QuestDB acknowledges, DEDUP-safe, rejected rows
// to the dead-letter file. Record never blocks and never drops: events queue in
// memory until Serve spools them. Issue 7's alarm engine records alarm
// transitions with one of these (its own table and spool directory).
type EventWriter struct {
	*Writer
	q *eventQueue
}

// NewEventWriter returns an EventWriter for opts.Table (default
// DefaultEventTable) at QuestDB's HTTP address. Run its Serve.
func NewEventWriter(httpAddr string, opts Options) (*EventWriter, error) {
	if opts.Table == "" {
		opts.Table = DefaultEventTable
	}
	return newEventWriter(httpAddr, opts, eventSchema)
}

// NewEventWriterFor returns an EventWriter for a table of its own (opts.Table,
// required), described by t: the alarm engine archives its transitions, with
// every limit in force, this way.
func NewEventWriterFor(httpAddr string, opts Options, t EventTable) (*EventWriter, error) {
	if opts.Table == "" {
		return nil, errors.New("ingest: an event table of its own needs Options.Table")
	}
	if t.Create == nil || t.Encode == nil {
		return nil, errors.New("ingest: EventTable needs Create and Encode")
	}
	return newEventWriter(httpAddr, opts, rowSchema{
		create: t.Create,
		encode: func(ctx context.Context, s qdb.LineSender, table string, smp *telemetry.Sample) error {
			e := sampleToEvent(smp)
			return t.Encode(ctx, s, table, &e)
		},
	})
}

func newEventWriter(httpAddr string, opts Options, schema rowSchema) (*EventWriter, error) {
	q := &eventQueue{ready: make(chan struct{}, 1), seq: map[string]uint64{}}
	w, err := NewWriter(httpAddr, q, opts)
	if err != nil {
		return nil, err
	}
	w.schema = schema
	return &EventWriter{Writer: w, q: q}, nil
}

// Record queues an event for the archive. A zero Seq is replaced by the next
// number of the event's source (from 1 for each EventWriter); a zero TimeNs by
// now. It is safe for concurrent use and never blocks.
func (w *EventWriter) Record(e Event) error {
	if e.Source == "" || e.Kind == "" {
		return errors.New("ingest: event needs a source and a kind")
	}
	w.q.push(e)
	return nil
}

// eventQueue is an unbounded FIFO of events; it is the EventWriter's Source.
type eventQueue struct {
	mu    sync.Mutex
	q     []telemetry.Sample
	seq   map[string]uint64
	ready chan struct{}
}

func (q *eventQueue) push(e Event) {
	if e.TimeNs == 0 {
		e.TimeNs = time.Now().UnixNano()
	}
	q.mu.Lock()
	if e.Seq == 0 {
		q.seq[e.Source]++
		e.Seq = q.seq[e.Source]
	}
	q.q = append(q.q, eventToSample(&e))
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *eventQueue) Ready() <-chan struct{} { return q.ready }

func (q *eventQueue) Drain(dst []telemetry.Sample, max int) []telemetry.Sample {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.q)
	if max > 0 {
		n = min(n, max)
	}
	dst = append(dst, q.q[:n]...)
	clear(q.q[:n])
	q.q = q.q[n:]
	if len(q.q) == 0 {
		q.q = nil
	}
	return dst
}
