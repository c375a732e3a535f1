package alarm

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

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

// QuestDBSink archives transitions to QuestDB over ILP/HTTP, each row with the
// limits in force, with the archive's guarantees (it is an ingest.EventWriter):
// spooled to disk when Options.SpoolDir is set, retried through outages until
// QuestDB acknowledges, DEDUP-safe when re-sent after a crash. Record never
// blocks and never drops. Create it with NewQuestDBSink; run its Serve.
type QuestDBSink struct {
	w   *ingest.EventWriter
	log *slog.Logger
}

// NewQuestDBSink returns a sink writing to opts.Table (DefaultEventsTable when
// empty) of the QuestDB whose HTTP port is addr. Give it a SpoolDir of its own
// (not the sample archive's) to keep transitions through a crash during an
// outage.
func NewQuestDBSink(addr string, opts ingest.Options) (*QuestDBSink, error) {
	if opts.Table == "" {
		opts.Table = DefaultEventsTable
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w, err := ingest.NewEventWriterFor(addr, opts, ingest.EventTable{Create: CreateEventsTableSQL, Encode: encodeTransition})
	if err != nil {
		return nil, fmt.Errorf("alarm archive: %w", err)
	}
	return &QuestDBSink{w: w, log: opts.Logger}, nil
}

// Record implements Sink.
func (s *QuestDBSink) Record(t Transition) {
	e, err := transitionEvent(&t)
	if err == nil {
		err = s.w.Record(e)
	}
	if err != nil {
		// Only a transition without a device or channel gets here: a bug.
		s.log.Error("alarm archive: transition not archived", "alarm", t.Alarm.Device+"/"+t.Alarm.Channel, "err", err)
	}
}

// Serve creates the table and archives transitions until ctx ends, then keeps
// trying for the writer's ShutdownTimeout to deliver what is pending (what is
// spooled is delivered by the next run anyway).
func (s *QuestDBSink) Serve(ctx context.Context) error { return s.w.Serve(ctx) }

// transitionRow is one row of the transitions table. It is what the spool
// holds (as JSON in the event's Message), so its field names stay stable.
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

// transitionEvent turns a transition into the event the EventWriter spools:
// source device/channel, kind the event, the row as JSON in Message.
func transitionEvent(t *Transition) (ingest.Event, error) {
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
		row.Reading = &a.Value
	}
	limit := func(th Threshold) *float64 {
		if !th.Enabled() {
			return nil
		}
		v := th.Value
		return &v
	}
	row.HiHi, row.High, row.Low, row.LoLo = limit(l.HiHi), limit(l.High), limit(l.Low), limit(l.LoLo)
	b, err := json.Marshal(row)
	if err != nil {
		return ingest.Event{}, err
	}
	return ingest.Event{TimeNs: row.TimeNs, Source: a.Device + "/" + a.Channel, Kind: row.Event, Message: string(b)}, nil
}

// encodeTransition writes a spooled transition as one row of table. A row
// that does not decode (a damaged spool) is refused before anything is
// written, so the archive sets it aside as a dead letter.
func encodeTransition(ctx context.Context, s qdb.LineSender, table string, e *ingest.Event) error {
	var r transitionRow
	if err := json.Unmarshal([]byte(e.Message), &r); err != nil {
		return fmt.Errorf("alarm transition %s %s: %w", e.Source, e.Kind, err)
	}
	if r.Device == "" || r.Channel == "" || r.Event == "" {
		return fmt.Errorf("alarm transition %s %s: device, channel and event are required", e.Source, e.Kind)
	}
	s.Table(table).Symbol("device", r.Device).Symbol("channel", r.Channel)
	if r.Group != "" {
		s.Symbol("alarm_group", r.Group)
	}
	s.Symbol("event", r.Event).
		Symbol("cond", r.Cond).
		Symbol("severity", r.Severity).
		Symbol("latched", r.Latched).
		Symbol("quality", r.Quality).
		BoolColumn("acked", r.Acked)
	if r.Reading != nil {
		s.Float64Column("reading", *r.Reading)
	}
	for _, c := range []struct {
		name string
		v    string
	}{{"message", r.Message}, {"who", r.Who}, {"comment", r.Comment}} {
		if c.v != "" {
			s.StringColumn(c.name, c.v)
		}
	}
	for _, c := range []struct {
		name string
		v    *float64
	}{{"hihi", r.HiHi}, {"high", r.High}, {"low", r.Low}, {"lolo", r.LoLo}} {
		if c.v != nil {
			s.Float64Column(c.name, *c.v)
		}
	}
	s.Float64Column("hysteresis", r.Hysteresis).
		Int64Column("delay_ms", r.DelayMs).
		StringColumn("limits", r.Limits)
	return s.At(ctx, time.Unix(0, r.TimeNs))
}
