package alarm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/switchyard/switchyard/ingest"
)

// DefaultEventsTable is the QuestDB table of alarm transitions.
const DefaultEventsTable = "alarm_events"

// CreateEventsTableSQL returns the statement that creates the transitions table if
// it is missing. The DEDUP keys make a re-sent batch harmless.
func CreateEventsTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS "` + table + `" (
	ts TIMESTAMP,
	device SYMBOL,
	channel SYMBOL,
	alarm_group SYMBOL,
	event SYMBOL,
	cond SYMBOL,
	severity SYMBOL,
	latched SYMBOL,
	acked BOOLEAN,
	reading DOUBLE,
	quality SYMBOL,
	message VARCHAR,
	who VARCHAR,
	comment VARCHAR,
	hihi DOUBLE,
	high DOUBLE,
	low DOUBLE,
	lolo DOUBLE,
	hysteresis DOUBLE,
	delay_ms LONG,
	limits VARCHAR
) TIMESTAMP(ts) PARTITION BY DAY WAL DEDUP UPSERT KEYS(ts, device, channel, event)`
}

// Archive archives transitions into their table, each row with the limits in
// force, with the guarantees of every ingest Writer: spooled to disk when
// Options.SpoolDir is set, retried through outages until the database
// acknowledges, DEDUP-safe when re-sent after a crash, rejected rows to the
// dead-letter file. Record never drops; it waits while the archive's queue is
// at its bound (back-pressure on the engine). Create it with NewArchive; run
// its Serve.
type Archive struct {
	r   *ingest.Recorder[transitionRow]
	log *slog.Logger
}

// NewArchive returns an Archive writing to opts.Table (DefaultEventsTable when
// empty) through app. Give it a SpoolDir of its own (not the sample archive's)
// to keep transitions through a crash during an outage.
func NewArchive(app ingest.Appender, opts ingest.Options) (*Archive, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r, err := ingest.NewRecorder(app, TransitionTable(), opts)
	if err != nil {
		return nil, fmt.Errorf("alarm archive: %w", err)
	}
	return &Archive{r: r, log: opts.Logger}, nil
}

// TransitionTable is the table of alarm transitions, DefaultEventsTable.
func TransitionTable() ingest.Table[transitionRow] {
	return ingest.Table[transitionRow]{
		Name:     DefaultEventsTable,
		Create:   CreateEventsTableSQL,
		Row:      encodeTransition,
		Append:   appendTransition,
		Decode:   decodeTransition,
		Time:     func(r *transitionRow) int64 { return r.TimeNs },
		Describe: ingest.DescribeJSON[transitionRow],
		Columns:  transitionColumns,
		Scan:     scanTransition,
	}
}

// Record implements Sink: it queues the transition, waiting while the queue is
// full until ctx ends (then the transition is not archived, and logged).
func (a *Archive) Record(ctx context.Context, t Transition) {
	row := transitionRowOf(&t)
	if err := a.r.Record(ctx, row); err != nil {
		a.log.Error("alarm archive: transition not archived", "alarm", row.Device+"/"+row.Channel, "event", row.Event, "err", err)
	}
}

// Serve creates the table and archives transitions until ctx ends, then keeps
// trying for the writer's ShutdownTimeout to deliver what is pending (what is
// spooled is delivered by the next run anyway).
func (a *Archive) Serve(ctx context.Context) error { return a.r.Serve(ctx) }

// Pending returns how many transitions wait for the database (spooled, or in
// memory without a spool); Queued how many wait for Serve to take them.
func (a *Archive) Pending() int { return a.r.Pending() }

// SpoolStatus returns the state of the archive's spool (for an
// ingest.SpoolMonitor).
func (a *Archive) SpoolStatus() ingest.SpoolStatus { return a.r.SpoolStatus() }

// Written returns how many transitions the database acknowledged.
func (a *Archive) Written() uint64 { return a.r.Written() }

// transitionRow is one row of the transitions table, and what the spool holds
// (as JSON), so its field names stay stable.
type transitionRow struct {
	TimeNs     int64    `json:"ts"`
	Device     string   `json:"device"`
	Channel    string   `json:"channel"`
	Group      string   `json:"alarm_group,omitempty"`
	Event      string   `json:"event"`
	Cond       string   `json:"cond"`
	Severity   string   `json:"severity"`
	Latched    string   `json:"latched"`
	Acked      bool     `json:"acked"`
	Reading    *float64 `json:"reading,omitempty"`
	Quality    string   `json:"quality"`
	Message    string   `json:"message,omitempty"`
	Who        string   `json:"who,omitempty"`
	Comment    string   `json:"comment,omitempty"`
	HiHi       *float64 `json:"hihi,omitempty"`
	High       *float64 `json:"high,omitempty"`
	Low        *float64 `json:"low,omitempty"`
	LoLo       *float64 `json:"lolo,omitempty"`
	Hysteresis float64  `json:"hysteresis"`
	DelayMs    int64    `json:"delay_ms"`
	Limits     string   `json:"limits"`
}

// transitionRowOf is the row of a transition.
func transitionRowOf(t *Transition) transitionRow {
	a := &t.Alarm
	l := &a.Limits
	row := transitionRow{
		TimeNs: t.Time.UnixNano(), Device: a.Device, Channel: a.Channel, Group: a.Group,
		Event: t.Event.String(), Cond: a.Condition.String(), Severity: a.Severity.String(),
		Latched: a.Latched.String(), Acked: a.Acked, Quality: a.Quality.String(),
		Message: a.Message, Who: t.Who, Comment: t.Comment,
		Hysteresis: l.Hysteresis, DelayMs: l.Delay.Milliseconds(), Limits: l.String(),
	}
	if a.HasValue {
		v := a.Value
		row.Reading = &v
	}
	limit := func(th Threshold) *float64 {
		if !th.Enabled() {
			return nil
		}
		v := th.Value
		return &v
	}
	row.HiHi, row.High, row.Low, row.LoLo = limit(l.HiHi), limit(l.High), limit(l.Low), limit(l.LoLo)
	return row
}

// transitionRecordVersion is the first byte of a spooled transition: the row
// as JSON follows. Spools written before transitions had a record of their own
// hold ingest events (version 1) with the JSON in their message; those are
// still read.
const transitionRecordVersion = 3

func appendTransition(dst []byte, r *transitionRow) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Only a NaN or infinite reading gets here; keep the row, without it.
		c := *r
		c.Reading = nil
		b, _ = json.Marshal(&c)
	}
	return append(append(dst, transitionRecordVersion), b...)
}

func decodeTransition(b []byte) (transitionRow, error) {
	var r transitionRow
	if len(b) == 0 {
		return r, errors.New("empty transition record")
	}
	payload := b[1:]
	switch b[0] {
	case transitionRecordVersion:
	case 1: // an ingest event of the previous version
		e, err := ingest.DecodeEvent(b)
		if err != nil {
			return r, err
		}
		payload = []byte(e.Message)
	default:
		return r, fmt.Errorf("transition record version %d, want %d", b[0], transitionRecordVersion)
	}
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("transition record: %w", err)
	}
	return r, nil
}

// encodeTransition writes a transition as one row of table. A row that lacks
// its keys (a damaged spool) is refused before anything is written, so the
// archive sets it aside as a dead letter.
func encodeTransition(ctx context.Context, s ingest.Row, _ string, r *transitionRow) error {
	if r.Device == "" || r.Channel == "" || r.Event == "" {
		return fmt.Errorf("alarm transition %s/%s %s: device, channel and event are required", r.Device, r.Channel, r.Event)
	}
	s.Symbol("device", r.Device).Symbol("channel", r.Channel)
	if r.Group != "" {
		s.Symbol("alarm_group", r.Group)
	}
	s.Symbol("event", r.Event).
		Symbol("cond", r.Cond).
		Symbol("severity", r.Severity).
		Symbol("latched", r.Latched).
		Symbol("quality", r.Quality).
		Bool("acked", r.Acked)
	if r.Reading != nil {
		s.Float64("reading", *r.Reading)
	}
	for _, c := range []struct {
		name string
		v    string
	}{{"message", r.Message}, {"who", r.Who}, {"comment", r.Comment}} {
		if c.v != "" {
			s.String(c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    *float64
	}{{"hihi", r.HiHi}, {"high", r.High}, {"low", r.Low}, {"lolo", r.LoLo}} {
		if c.v != nil {
			s.Float64(c.name, *c.v)
		}
	}
	s.Float64("hysteresis", r.Hysteresis).
		Int64("delay_ms", r.DelayMs).
		String("limits", r.Limits)
	return s.At(ctx, time.Unix(0, r.TimeNs))
}
