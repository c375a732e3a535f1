package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	qdb "github.com/questdb/go-questdb-client/v3"

	"github.com/switchyard/switchyard/ingest"
)

// DefaultTable is the QuestDB table of the audit trail.
const DefaultTable = "audit_events"

// CreateTableSQL returns the statement that creates the audit table if it is
// missing. The DEDUP keys make a re-sent batch harmless.
func CreateTableSQL(table string) string {
	return `CREATE TABLE IF NOT EXISTS "` + table + `" (
	ts TIMESTAMP,
	identity SYMBOL,
	role SYMBOL,
	method SYMBOL,
	peer VARCHAR,
	transport SYMBOL,
	rpc SYMBOL,
	device SYMBOL,
	target VARCHAR,
	args VARCHAR,
	code SYMBOL,
	reason SYMBOL,
	error VARCHAR,
	duration_us LONG,
	user_agent VARCHAR,
	client VARCHAR,
	seq LONG
) TIMESTAMP(ts) PARTITION BY MONTH WAL DEDUP UPSERT KEYS(ts, identity, seq)`
}

// QuestDBSink archives records through an ingest.EventWriter (spooled, retried
// through outages, DEDUP-safe, damaged rows to the dead-letter file). It is the
// one adapter between the audit trail and the archive. Run its Serve.
type QuestDBSink struct {
	w   *ingest.EventWriter
	log *slog.Logger
}

// NewQuestDBSink returns a sink writing to opts.Table (DefaultTable when empty)
// of the QuestDB whose HTTP port is addr. Give it a SpoolDir of its own.
func NewQuestDBSink(addr string, opts ingest.Options) (*QuestDBSink, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	w, err := ingest.NewEventWriterFor(addr, opts, ingest.EventTable{Create: CreateTableSQL, Encode: encode})
	if err != nil {
		return nil, fmt.Errorf("audit archive: %w", err)
	}
	return &QuestDBSink{w: w, log: opts.Logger}, nil
}

// Record implements Sink; it never blocks.
func (s *QuestDBSink) Record(r Record) {
	b, err := json.Marshal(r)
	if err == nil {
		err = s.w.Record(ingest.Event{TimeNs: r.Time.UnixNano(), Source: cmpOr(r.Identity, "anonymous"), Kind: "audit", Message: string(b)})
	}
	if err != nil {
		s.log.Error("audit archive: record not archived", "rpc", r.RPC, "err", err)
	}
}

// Serve creates the table and archives records until ctx ends.
func (s *QuestDBSink) Serve(ctx context.Context) error { return s.w.Serve(ctx) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// encode writes a spooled record as one row; one that does not decode is
// refused before anything is written (a dead letter).
func encode(ctx context.Context, s qdb.LineSender, table string, e *ingest.Event) error {
	var r Record
	if err := json.Unmarshal([]byte(e.Message), &r); err != nil {
		return fmt.Errorf("audit record of %s: %w", e.Source, err)
	}
	if r.RPC == "" || r.Code == "" {
		return fmt.Errorf("audit record of %s: rpc and code are required", e.Source)
	}
	args, _ := json.Marshal(r.Args)
	s.Table(table).Symbol("identity", e.Source).Symbol("role", r.Role).Symbol("method", r.Method).
		Symbol("transport", r.Transport).Symbol("rpc", r.RPC).Symbol("code", r.Code)
	if r.Device != "" {
		s.Symbol("device", r.Device)
	}
	if r.Reason != "" {
		s.Symbol("reason", r.Reason)
	}
	s.StringColumn("peer", r.Peer)
	for _, c := range []struct{ name, v string }{
		{"target", r.Target}, {"error", r.Error}, {"user_agent", r.UserAgent}, {"client", r.Client},
	} {
		if c.v != "" {
			s.StringColumn(c.name, c.v)
		}
	}
	if len(r.Args) > 0 {
		s.StringColumn("args", string(args))
	}
	s.Int64Column("duration_us", r.Duration.Microseconds()).Int64Column("seq", int64(e.Seq))
	return s.At(ctx, time.Unix(0, e.TimeNs))
}
