package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/switchyard/switchyard/ingest"
)

// DefaultTable is the table of the audit trail.
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

// Archive archives records into their table with the guarantees of every
// ingest Writer (spooled, retried through outages, DEDUP-safe, damaged rows to
// the dead-letter file). It is the one adapter between the audit trail and the
// archive. Run its Serve.
type Archive struct {
	r   *ingest.Recorder[row]
	log *slog.Logger
	mu  sync.Mutex
	seq map[string]uint64 // per identity, the DEDUP key's seq
}

// NewArchive returns an archive writing to opts.Table (DefaultTable when empty)
// through app. Give it a SpoolDir of its own.
func NewArchive(app ingest.Appender, opts ingest.Options) (*Archive, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r, err := ingest.NewRecorder(app, Table(), opts)
	if err != nil {
		return nil, fmt.Errorf("audit archive: %w", err)
	}
	return &Archive{r: r, log: opts.Logger, seq: map[string]uint64{}}, nil
}

// Table is the audit trail's table, DefaultTable.
func Table() ingest.Table[row] {
	return ingest.Table[row]{
		Name:     DefaultTable,
		Create:   CreateTableSQL,
		Row:      encode,
		Append:   appendRow,
		Decode:   decodeRow,
		Time:     func(r *row) int64 { return r.TimeNs },
		Describe: ingest.DescribeJSON[row],
	}
}

// Record implements Sink. It never drops a record: while the archive's queue
// is at its bound (its spool full) it waits for room.
func (a *Archive) Record(r Record) {
	if r.Identity == "" {
		r.Identity = "anonymous"
	}
	a.mu.Lock()
	a.seq[r.Identity]++
	rw := row{TimeNs: r.Time.UnixNano(), Seq: a.seq[r.Identity], Record: r}
	a.mu.Unlock()
	if err := a.r.Record(context.Background(), rw); err != nil {
		a.log.Error("audit archive: record not archived", "rpc", r.RPC, "err", err)
	}
}

// Serve creates the table and archives records until ctx ends.
func (a *Archive) Serve(ctx context.Context) error { return a.r.Serve(ctx) }

// SpoolStatus returns the state of the archive's spool.
func (a *Archive) SpoolStatus() ingest.SpoolStatus { return a.r.SpoolStatus() }

// row is a record as archived, and what the spool holds (as JSON).
type row struct {
	TimeNs int64  `json:"ts"`
	Seq    uint64 `json:"seq"`
	Record
}

// recordVersion is the first byte of a spooled row: JSON follows. Version 1 was
// an ingest event with the record as JSON in its message.
const recordVersion = 3

func appendRow(dst []byte, r *row) []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("audit: marshalling a record: " + err.Error()) // strings and numbers only
	}
	return append(append(dst, recordVersion), b...)
}

func decodeRow(b []byte) (row, error) {
	var r row
	if len(b) == 0 {
		return r, errors.New("empty audit record")
	}
	switch b[0] {
	case recordVersion:
		if err := json.Unmarshal(b[1:], &r); err != nil {
			return r, fmt.Errorf("audit record: %w", err)
		}
	case 1: // an ingest event of the previous version
		e, err := ingest.DecodeEvent(b)
		if err != nil {
			return r, err
		}
		if err := json.Unmarshal([]byte(e.Message), &r.Record); err != nil {
			return r, fmt.Errorf("audit record of %s: %w", e.Source, err)
		}
		r.TimeNs, r.Seq, r.Identity = e.TimeNs, e.Seq, e.Source
	default:
		return r, fmt.Errorf("audit record version %d, want %d", b[0], recordVersion)
	}
	return r, nil
}

// encode writes a row; one without its keys is refused before anything is
// written (a dead letter).
func encode(ctx context.Context, s ingest.Row, _ string, r *row) error {
	if r.RPC == "" || r.Code == "" || r.Identity == "" {
		return fmt.Errorf("audit record of %q: identity, rpc and code are required", r.Identity)
	}
	s.Symbol("identity", r.Identity).Symbol("role", r.Role).Symbol("method", r.Method).
		Symbol("transport", r.Transport).Symbol("rpc", r.RPC).Symbol("code", r.Code)
	if r.Device != "" {
		s.Symbol("device", r.Device)
	}
	if r.Reason != "" {
		s.Symbol("reason", r.Reason)
	}
	s.String("peer", r.Peer)
	for _, c := range []struct{ name, v string }{
		{"target", r.Target}, {"error", r.Error}, {"user_agent", r.UserAgent}, {"client", r.Client},
	} {
		if c.v != "" {
			s.String(c.name, c.v)
		}
	}
	if len(r.Args) > 0 {
		args, _ := json.Marshal(r.Args)
		s.String("args", string(args))
	}
	s.Int64("duration_us", r.Duration.Microseconds()).Int64("seq", int64(r.Seq))
	return s.At(ctx, time.Unix(0, r.TimeNs))
}
