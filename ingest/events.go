package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"
)

// DefaultEventTable is the table of device events (connect, disconnect,
// restart, config change).
const DefaultEventTable = "device_events"

// Event is one row of the device events table: something that happened to a
// source at a time, such as a device connecting.
type Event struct {
	// TimeNs is when it happened, nanoseconds since the Unix epoch (stored with
	// QuestDB's microsecond precision).
	TimeNs int64 `json:"ts_ns"`
	// Source is what it happened to (a device name).
	Source string `json:"source"`
	// Kind says what happened ("connected", "disconnected", "backoff",
	// "restarted", "config_changed"...).
	Kind string `json:"kind"`
	// Seq numbers the source's events; with TimeNs, Source and Kind it is the
	// table's DEDUP key, so make it unique per source (EventWriter.Record does
	// when it is zero).
	Seq uint64 `json:"seq"`
	// Message is a short human text; Detail anything longer (an error, a state).
	Message string `json:"message,omitempty"`
	Detail  string `json:"detail,omitempty"`
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

// EventTable is the table of device events.
func EventTable() Table[Event] {
	return Table[Event]{
		Name:     DefaultEventTable,
		Create:   CreateEventTableSQL,
		Row:      encodeEvent,
		Append:   appendEvent,
		Decode:   DecodeEvent,
		Time:     func(e *Event) int64 { return e.TimeNs },
		Describe: DescribeJSON[Event],
		Columns:  []string{"ts", "source", "kind", "seq", "message", "detail"},
		Scan:     scanEvent,
	}
}

// scanEvent reads a row of EventTable's Columns.
func scanEvent(row []any) (Event, error) {
	c := Cells{Row: row}
	e := Event{TimeNs: c.Time(0), Source: c.String(1), Kind: c.String(2), Seq: uint64(c.Int(3)),
		Message: c.String(4), Detail: c.String(5)}
	return e, c.Err()
}

func encodeEvent(ctx context.Context, r Row, _ string, e *Event) error {
	if e.Source == "" || e.Kind == "" {
		return errors.New("event needs a source and a kind")
	}
	r.Symbol("source", e.Source).Symbol("kind", e.Kind).
		Int64("seq", int64(e.Seq)).String("message", e.Message)
	if e.Detail != "" {
		r.String("detail", e.Detail)
	}
	return r.At(ctx, time.Unix(0, e.TimeNs))
}

// eventRecordVersion is the first byte of a spooled Event. Version 1 was a
// sample record (Device=Source, Channel=Kind, Value=Message, Err=Detail), still
// read from spools written before events had a record of their own.
const eventRecordVersion = 2

func appendEvent(dst []byte, e *Event) []byte {
	dst = append(dst, eventRecordVersion)
	dst = binary.AppendVarint(dst, e.TimeNs)
	dst = binary.AppendUvarint(dst, e.Seq)
	dst = appendString(dst, e.Source)
	dst = appendString(dst, e.Kind)
	dst = appendString(dst, e.Message)
	return appendString(dst, e.Detail)
}

// DecodeEvent reads a spooled Event, of this layout or of the previous version
// (a sample record); every failure is an error, never a panic.
func DecodeEvent(b []byte) (Event, error) {
	if len(b) > 0 && b[0] == recordVersion {
		smp, err := decodeRecord(b)
		return Event{TimeNs: smp.TimeNs, Source: smp.Device, Kind: smp.Channel, Seq: smp.Seq,
			Message: smp.Value.S, Detail: smp.Err}, err
	}
	var e Event
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != eventRecordVersion {
		return e, fmt.Errorf("%w: event version %d, want %d", errRecord, v, eventRecordVersion)
	}
	e.TimeNs = d.varint("time")
	e.Seq = d.uvarint("seq")
	e.Source = d.string("source")
	e.Kind = d.string("kind")
	e.Message = d.string("message")
	e.Detail = d.string("detail")
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errRecord, len(d.b))
	}
	return e, d.err
}

// EventWriter archives device events into their table with the guarantees of
// every Writer: spooled (with Options.SpoolDir, which must differ from the
// sample Writer's), retried until QuestDB acknowledges, DEDUP-safe, rejected
// rows to the dead-letter file.
type EventWriter struct {
	*Recorder[Event]
	mu  sync.Mutex
	seq map[string]uint64
}

// NewEventWriter returns an EventWriter for opts.Table (default
// DefaultEventTable) through app. Run its Serve.
func NewEventWriter(app Appender, opts Options) (*EventWriter, error) {
	r, err := NewRecorder(app, EventTable(), opts)
	if err != nil {
		return nil, err
	}
	return &EventWriter{Recorder: r, seq: map[string]uint64{}}, nil
}

// Record queues an event for the archive. A zero Seq is replaced by the next
// number of the event's source (from 1 for each EventWriter); a zero TimeNs by
// now. It waits for room while the queue is at its bound (see
// Recorder.Record). It is safe for concurrent use.
func (w *EventWriter) Record(ctx context.Context, e Event) error {
	if e.Source == "" || e.Kind == "" {
		return errors.New("ingest: event needs a source and a kind")
	}
	if e.TimeNs == 0 {
		e.TimeNs = time.Now().UnixNano()
	}
	if e.Seq == 0 {
		w.mu.Lock()
		w.seq[e.Source]++
		e.Seq = w.seq[e.Source]
		w.mu.Unlock()
	}
	return w.Recorder.Record(ctx, e)
}
