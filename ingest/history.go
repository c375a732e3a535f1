package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Aggregate is how QueryHistory folds the samples of one interval into a bucket.
type Aggregate int

// Aggregates for downsampled history. AggNone asks for raw samples.
const (
	AggNone Aggregate = iota
	AggAvg
	AggMin
	AggMax
	AggFirst
	AggLast
	AggCount
)

// DefaultHistoryLimit and MaxHistoryLimit bound the rows one history query returns.
const (
	DefaultHistoryLimit = 10000
	MaxHistoryLimit     = 100000
)

// ErrBadHistoryQuery is wrapped by the errors of a malformed HistoryQuery; the
// message names the field.
var ErrBadHistoryQuery = errors.New("bad history query")

// HistoryQuery selects archived samples of one channel in [From, To).
type HistoryQuery struct {
	Device, Channel string
	// From and To bound the range (From inclusive, To exclusive). Zero To: now.
	From, To time.Time
	// Limit is the most rows returned (samples, or buckets). Default
	// DefaultHistoryLimit, at most MaxHistoryLimit.
	Limit int
	// Agg and Every ask for downsampled buckets (QuestDB SAMPLE BY): one bucket
	// per Every (at least 1 ms) of good numeric samples. AggNone: raw samples.
	Agg   Aggregate
	Every time.Duration
}

// Bucket is one interval of downsampled history.
type Bucket struct {
	// TimeNs is the start of the interval (ns since the Unix epoch).
	TimeNs int64
	// Value is the aggregate of the interval's good numeric samples.
	Value float64
	// Count is how many samples went into Value.
	Count int64
}

// History reads archived samples back out of one QuestDB table. It is safe for
// concurrent use.
type History struct {
	addr, table string
	wide        string // the wide layout's table; "" for none (see WithWide)
	writers     []interface{ Archived(context.Context) error }
}

// WithWriter returns a History whose Settle also waits for w, the Writer that
// fills the table.
func (h *History) WithWriter(w *SampleWriter) *History {
	c := *h
	c.writers = append(slices.Clone(h.writers), w)
	return &c
}

// Settle returns once every sample published before the call is in the tables
// and visible to queries: the Writers (see WithWriter, WithWide) have archived
// it and QuestDB has applied it. It waits through QuestDB outages until ctx
// ends.
func (h *History) Settle(ctx context.Context) error {
	for _, w := range h.writers {
		if err := w.Archived(ctx); err != nil {
			return err
		}
	}
	return h.Visible(ctx)
}

// NewHistory returns a History over table at QuestDB's HTTP address.
func NewHistory(httpAddr, table string) (*History, error) {
	if err := validateTableName(table); err != nil {
		return nil, err
	}
	return &History{addr: httpAddr, table: table}, nil
}

func (q *HistoryQuery) check() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrBadHistoryQuery, field, fmt.Sprintf(format, args...))
	}
	switch {
	case q.Device == "":
		return bad("device", "must not be empty")
	case q.Channel == "":
		return bad("channel", "must not be empty")
	case !q.To.IsZero() && q.To.Before(q.From):
		return bad("end", "%s is before start %s", q.To.Format(time.RFC3339Nano), q.From.Format(time.RFC3339Nano))
	case q.Limit < 0 || q.Limit > MaxHistoryLimit:
		return bad("limit", "must be between 0 and %d, got %d", MaxHistoryLimit, q.Limit)
	case q.Agg < AggNone || q.Agg > AggCount:
		return bad("aggregate", "unknown aggregate %d", q.Agg)
	case q.Agg != AggNone && q.Every < time.Millisecond:
		return bad("interval", "must be at least 1ms with an aggregate, got %s", q.Every)
	}
	return nil
}

func (q *HistoryQuery) where() string {
	return fmt.Sprintf("channel = %s AND %s", quoteString(q.Channel), q.whereDevice())
}

// whereDevice selects the device's rows in the time range (every channel).
func (q *HistoryQuery) whereDevice() string {
	to := q.To
	if to.IsZero() {
		to = time.Now().Add(time.Hour) // samples stamped slightly ahead of our clock
	}
	return fmt.Sprintf("device = %s AND ts >= %d AND ts < %d", quoteString(q.Device), q.From.UnixMicro(), to.UnixMicro())
}

func (q *HistoryQuery) limit() int {
	if q.Limit == 0 {
		return DefaultHistoryLimit
	}
	return q.Limit
}

// Samples returns the raw samples of q in time order, and whether there were
// more than the limit.
func (h *History) Samples(ctx context.Context, q HistoryQuery) (out []telemetry.Sample, truncated bool, err error) {
	if err := q.check(); err != nil {
		return nil, false, err
	}
	if q.Agg != AggNone {
		return nil, false, fmt.Errorf("%w: aggregate: Samples returns raw samples; use Buckets", ErrBadHistoryQuery)
	}
	lim := q.limit()
	sql := fmt.Sprintf(`SELECT ts, device, channel, seq, value_double, value_long, value_string, value_bool, quality, error FROM %s WHERE %s ORDER BY ts LIMIT %d`,
		quoteIdent(h.table), q.where(), lim+1)
	_, rows, err := Query(ctx, h.addr, sql)
	if err != nil && !(h.wide != "" && isMissing(err)) {
		return nil, false, err
	}
	out = make([]telemetry.Sample, 0, len(rows))
	for i, r := range rows {
		smp, err := sampleFromRow(r)
		if err != nil {
			return nil, false, fmt.Errorf("ingest: history row %d of table %q: %w", i, h.table, err)
		}
		out = append(out, smp)
	}
	if h.wide != "" {
		wide, err := h.wideSamples(ctx, q, lim)
		if err != nil {
			return nil, false, err
		}
		out = mergeByTime(out, wide)
	}
	if len(out) > lim {
		out, truncated = out[:lim], true
	}
	return out, truncated, nil
}

// Buckets returns q downsampled (q.Agg over q.Every) in time order, and whether
// there were more than the limit.
func (h *History) Buckets(ctx context.Context, q HistoryQuery) (out []Bucket, truncated bool, err error) {
	if err := q.check(); err != nil {
		return nil, false, err
	}
	fn := map[Aggregate]string{AggAvg: "avg", AggMin: "min", AggMax: "max", AggFirst: "first", AggLast: "last", AggCount: "count"}[q.Agg]
	if fn == "" {
		return nil, false, fmt.Errorf("%w: aggregate: Buckets needs one", ErrBadHistoryQuery)
	}
	lim := q.limit()
	narrow, err := h.bucketStats(ctx, h.table, "coalesce(value_double, value_long::double)",
		q.where()+" AND quality = 'GOOD' AND (value_double IS NOT NULL OR value_long IS NOT NULL)", q, fn, lim)
	if err != nil && !(h.wide != "" && isMissing(err)) {
		return nil, false, err
	}
	stats := narrow
	if h.wide != "" {
		wide, err := h.wideBuckets(ctx, q, fn, lim)
		if err != nil {
			return nil, false, err
		}
		stats = mergeBuckets(narrow, wide, q.Agg)
	}
	if len(stats) > lim {
		stats, truncated = stats[:lim], true
	}
	out = make([]Bucket, len(stats))
	for i := range stats {
		out[i] = stats[i].Bucket
	}
	return out, truncated, nil
}

// sampleFromRow rebuilds a sample from a row of the archive table (the column
// order of Samples' SELECT).
func sampleFromRow(r []any) (telemetry.Sample, error) {
	var smp telemetry.Sample
	if len(r) != 10 {
		return smp, fmt.Errorf("%d columns, want 10", len(r))
	}
	ts, err := parseTS(r[0])
	if err != nil {
		return smp, err
	}
	smp.TimeNs = ts
	smp.Device, _ = r[1].(string)
	smp.Channel, _ = r[2].(string)
	if n, ok := r[3].(json.Number); ok {
		v, _ := strconv.ParseUint(n.String(), 10, 64)
		smp.Seq = v
	}
	q, _ := r[8].(string)
	qual, ok := parseQuality(q)
	if !ok {
		return smp, fmt.Errorf("quality %q is not one Switchyard writes", q)
	}
	smp.Quality = qual
	smp.Err, _ = r[9].(string)
	if qual != telemetry.Good {
		return smp, nil
	}
	switch {
	case r[4] != nil:
		n, _ := r[4].(json.Number)
		f, err := n.Float64()
		if err != nil {
			return smp, fmt.Errorf("value_double %v: %w", r[4], err)
		}
		smp.Value = telemetry.Float(f)
	case r[5] != nil:
		n, _ := r[5].(json.Number)
		i, err := n.Int64()
		if err != nil {
			return smp, fmt.Errorf("value_long %v: %w", r[5], err)
		}
		smp.Value = telemetry.Int(i)
	case r[6] != nil:
		s, _ := r[6].(string)
		smp.Value = telemetry.String(s)
	default:
		b, _ := r[7].(bool)
		smp.Value = telemetry.Bool(b)
	}
	return smp, nil
}

// parseTS reads a QuestDB timestamp as /exec returns it (RFC 3339, UTC).
func parseTS(v any) (int64, error) {
	s, ok := v.(string)
	if !ok {
		return 0, fmt.Errorf("timestamp is %T, want a string", v)
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, fmt.Errorf("timestamp %q: %w", s, err)
	}
	return t.UnixNano(), nil
}

// quoteString quotes a SQL string literal.
func quoteString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// parseQuality is the inverse of telemetry.Quality.String for the names the
// archive holds.
func parseQuality(s string) (telemetry.Quality, bool) {
	for q := telemetry.Quality(0); q < 32; q++ {
		if q.String() == s {
			return q, true
		}
	}
	return 0, false
}

// Visible returns once every write QuestDB has acknowledged for the table is
// applied and visible to queries (WAL tables apply writes asynchronously), or
// when ctx ends.
func (h *History) Visible(ctx context.Context) error {
	if err := visible(ctx, h.addr, h.table); err != nil || h.wide == "" {
		return err
	}
	return visible(ctx, h.addr, h.wide)
}

// visible is History.Visible of any table (one table).
func visible(ctx context.Context, addr, table string) error {
	sql := fmt.Sprintf("SELECT writerTxn, sequencerTxn FROM wal_tables() WHERE name = %s", quoteString(table))
	for {
		_, rows, err := Query(ctx, addr, sql)
		if err == nil {
			if len(rows) == 0 {
				return nil // no table yet: nothing written
			}
			if len(rows[0]) == 2 {
				w, wok := rows[0][0].(json.Number)
				s, sok := rows[0][1].(json.Number)
				wn, _ := w.Int64()
				sn, _ := s.Int64()
				if wok && sok && wn >= sn {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
			}
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Since returns up to limit archived samples of every channel with timestamps at
// or after fromNs, in time order: a page of a replay. Timestamps come back with
// QuestDB's microsecond precision.
func (h *History) Since(ctx context.Context, fromNs int64, limit int) ([]telemetry.Sample, error) {
	sql := fmt.Sprintf(`SELECT ts, device, channel, seq, value_double, value_long, value_string, value_bool, quality, error FROM %s WHERE ts >= %d ORDER BY ts LIMIT %d`,
		quoteIdent(h.table), fromNs/1000, limit)
	_, rows, err := Query(ctx, h.addr, sql)
	if isMissing(err) {
		rows, err = nil, nil // nothing archived yet
	}
	if err != nil {
		return nil, err
	}
	out := make([]telemetry.Sample, 0, len(rows))
	for i, r := range rows {
		smp, err := sampleFromRow(r)
		if err != nil {
			return nil, fmt.Errorf("ingest: history row %d of table %q: %w", i, h.table, err)
		}
		out = append(out, smp)
	}
	if h.wide == "" {
		return out, nil
	}
	wide, wideFull, err := h.wideSince(ctx, fromNs, limit)
	if err != nil {
		return nil, err
	}
	return mergePages(out, len(rows) == limit, wide, wideFull), nil
}
