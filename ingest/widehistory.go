package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/switchyard/switchyard/telemetry"
)

// Reading the wide layout back. A History with a wide table (WithWide) answers
// every query from both tables and merges the answers in time order, so a
// device's history is whole across a change of its layout.

// WithWide returns a History that also reads the wide table w fills, and
// whose Settle waits for w too.
func (h *History) WithWide(w *WideWriter) *History {
	c := h.WithWideTable(w.Table())
	c.writers = append(slices.Clone(h.writers), w)
	return c
}

// WithWideTable returns a History that also reads the wide table named
// table, filled by a writer it does not wait for (another node's).
func (h *History) WithWideTable(table string) *History {
	c := *h
	c.wide = table
	return &c
}

// isMissing reports whether err is QuestDB's answer about a table, or a
// column, that does not exist (yet): nothing of that kind was archived.
func isMissing(err error) bool {
	var qe *QueryError
	return errors.As(err, &qe) && (strings.Contains(qe.Message, "does not exist") || strings.HasPrefix(qe.Message, "Invalid column"))
}

// wideColumn returns the type of the wide table's column of a channel, ""
// when it has none (no good value of that channel archived yet).
func (h *History) wideColumn(ctx context.Context, channel string) (string, error) {
	_, rows, err := Query(ctx, h.addr, fmt.Sprintf(`SELECT "column", type FROM table_columns(%s)`, quoteString(h.wide)))
	if isMissing(err) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	for _, r := range rows {
		if len(r) == 2 {
			if name, _ := r[0].(string); strings.EqualFold(name, channel) {
				t, _ := r[1].(string)
				return t, nil
			}
		}
	}
	return "", nil
}

// wideSamples returns the samples of q's channel in the wide table, in time
// order, at most lim+1.
func (h *History) wideSamples(ctx context.Context, q HistoryQuery, lim int) ([]telemetry.Sample, error) {
	if CheckWideColumn(q.Channel) != "" {
		return nil, nil // a channel the wide layout cannot hold
	}
	typ, err := h.wideColumn(ctx, q.Channel)
	if err != nil {
		return nil, err
	}
	// A row holds the channel when its column has a value or its channel list
	// names it ('_' matches any character in LIKE: the list is checked again
	// below).
	val, has := "NULL", ""
	if typ != "" {
		val = quoteIdent(q.Channel)
		has = val + " IS NOT NULL OR "
	}
	sql := fmt.Sprintf(`SELECT ts, device, channel, seq, quality, error, channels, detail, %s %s FROM %s WHERE %s AND (%s(',' || channels || ',') LIKE %s) ORDER BY ts LIMIT %d`,
		val, quoteIdent(q.Channel), quoteIdent(h.wide), q.whereDevice(), has, quoteString("%,"+q.Channel+",%"), lim+1)
	cols, rows, err := queryTyped(ctx, h.addr, sql)
	if isMissing(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []telemetry.Sample
	for i, r := range rows {
		got, err := samplesOfWideRow(cols, r, q.Channel, nil)
		if err != nil {
			return nil, fmt.Errorf("ingest: history row %d of table %q: %w", i, h.wide, err)
		}
		out = append(out, got...)
	}
	return out, nil
}

// wideSince returns the samples of up to limit rows of the wide table from
// fromNs on, in time order, and whether there were limit rows (maybe more).
func (h *History) wideSince(ctx context.Context, fromNs int64, limit int) ([]telemetry.Sample, bool, error) {
	sql := fmt.Sprintf(`SELECT * FROM %s WHERE ts >= %d ORDER BY ts LIMIT %d`, quoteIdent(h.wide), fromNs/1000, limit)
	cols, rows, err := queryTyped(ctx, h.addr, sql)
	if isMissing(err) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	var out []telemetry.Sample
	for i, r := range rows {
		out, err = samplesOfWideRow(cols, r, "", out)
		if err != nil {
			return nil, false, fmt.Errorf("ingest: history row %d of table %q: %w", i, h.wide, err)
		}
	}
	return out, len(rows) == limit, nil
}

// wideFixed are the wide table's own columns, by name.
var wideFixed = map[string]bool{"ts": true, colDevice: true, colChannel: true, colSeq: true, colQuality: true, colError: true, colChannels: true, colDetail: true}

// samplesOfWideRow rebuilds the samples of one row of the wide table (every
// channel, or only the one named only) and appends them to out. cols are the
// result's columns: the table's own (any order) and the channels'.
func samplesOfWideRow(cols []column, r []any, only string, out []telemetry.Sample) ([]telemetry.Sample, error) {
	if len(r) != len(cols) {
		return out, fmt.Errorf("%d values for %d columns", len(r), len(cols))
	}
	at := map[string]int{}
	for i, c := range cols {
		if wideFixed[c.Name] {
			at[c.Name] = i
		}
	}
	get := func(name string) any {
		if i, ok := at[name]; ok {
			return r[i]
		}
		return nil
	}
	ts, err := parseTS(get("ts"))
	if err != nil {
		return out, err
	}
	base := telemetry.Sample{TimeNs: ts}
	base.Device, _ = get(colDevice).(string)
	if n, ok := get(colSeq).(json.Number); ok {
		v, err := strconv.ParseUint(n.String(), 10, 64)
		if err != nil {
			return out, fmt.Errorf("seq %v: %w", n, err)
		}
		base.Seq = v
	}
	q, _ := get(colQuality).(string)
	qual, ok := parseQuality(q)
	if !ok {
		return out, fmt.Errorf("quality %q is not one Switchyard writes", q)
	}
	base.Quality = qual
	base.Err, _ = get(colError).(string)
	detail := map[string]wideDetail{}
	if d, ok := get(colDetail).(string); ok && d != "" {
		if err := json.Unmarshal([]byte(d), &detail); err != nil {
			return out, fmt.Errorf("detail %.100q: %w", d, err)
		}
	}
	// The row's channels: its list, else the channel columns with a value
	// (numbers: a row with a boolean or string channel lists its channels, as
	// a BOOLEAN column reads false where nothing was written).
	var names []string
	if list, ok := get(colChannels).(string); ok && list != "" {
		names = strings.Split(list, ",")
	} else {
		for i, c := range cols {
			if !wideFixed[c.Name] && r[i] != nil && c.Type != "BOOLEAN" {
				names = append(names, c.Name)
			}
		}
	}
	for _, name := range names {
		if only != "" && !strings.EqualFold(name, only) {
			continue
		}
		s := base
		s.Channel = name
		if only != "" {
			s.Channel = only
		}
		d, hasDetail := detail[name]
		if hasDetail {
			if d.Seq != nil {
				s.Seq = *d.Seq
			}
			if d.Quality != "" {
				if s.Quality, ok = parseQuality(d.Quality); !ok {
					return out, fmt.Errorf("channel %s: quality %q is not one Switchyard writes", name, d.Quality)
				}
			}
			if d.Error != nil {
				s.Err = *d.Error
			}
		}
		if s.Quality == telemetry.Good {
			if hasDetail && d.Value != "" {
				f, err := strconv.ParseFloat(d.Value, 64)
				if err != nil {
					return out, fmt.Errorf("channel %s: value %q: %w", name, d.Value, err)
				}
				s.Value = telemetry.Float(f)
			} else if s.Value, err = wideValue(cols, r, name); err != nil {
				return out, fmt.Errorf("channel %s: %w", name, err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// wideValue returns the value in a row's column of a channel, by the column's
// type; KindNone when the row has none.
func wideValue(cols []column, r []any, channel string) (telemetry.Value, error) {
	for i, c := range cols {
		if wideFixed[c.Name] || !strings.EqualFold(c.Name, channel) {
			continue
		}
		v := r[i]
		if v == nil {
			return telemetry.Value{}, nil
		}
		switch c.Type {
		case "DOUBLE", "FLOAT":
			n, _ := v.(json.Number)
			f, err := n.Float64()
			if err != nil {
				return telemetry.Value{}, fmt.Errorf("%v is not a number", v)
			}
			return telemetry.Float(f), nil
		case "LONG", "INT", "SHORT", "BYTE":
			n, _ := v.(json.Number)
			i, err := n.Int64()
			if err != nil {
				return telemetry.Value{}, fmt.Errorf("%v is not an integer", v)
			}
			return telemetry.Int(i), nil
		case "BOOLEAN":
			b, _ := v.(bool)
			return telemetry.Bool(b), nil
		case "VARCHAR", "STRING", "SYMBOL":
			s, _ := v.(string)
			return telemetry.String(s), nil
		}
		return telemetry.Value{}, fmt.Errorf("column of type %s", c.Type)
	}
	return telemetry.Value{}, nil
}

// mergeByTime merges two lists of samples in time order (a's first at equal
// times).
func mergeByTime(a, b []telemetry.Sample) []telemetry.Sample {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]telemetry.Sample, 0, len(a)+len(b))
	for len(a) > 0 && len(b) > 0 {
		if b[0].TimeNs < a[0].TimeNs {
			out, b = append(out, b[0]), b[1:]
		} else {
			out, a = append(out, a[0]), a[1:]
		}
	}
	return append(append(out, a...), b...)
}

// mergePages merges a page of the narrow table (full: it had limit rows) and
// one of the wide table in time order, cut at the last microsecond both have
// read completely, so that the next page (from the last time returned) misses
// nothing. Whenever a table had more, the result has at least limit samples.
func mergePages(narrow []telemetry.Sample, narrowFull bool, wide []telemetry.Sample, wideFull bool) []telemetry.Sample {
	cut := int64(math.MaxInt64)
	if narrowFull && len(narrow) > 0 {
		cut = min(cut, narrow[len(narrow)-1].TimeNs/1000)
	}
	if wideFull && len(wide) > 0 {
		cut = min(cut, wide[len(wide)-1].TimeNs/1000)
	}
	keep := func(s []telemetry.Sample) []telemetry.Sample {
		i := len(s)
		for i > 0 && s[i-1].TimeNs/1000 > cut {
			i--
		}
		return s[:i]
	}
	return mergeByTime(keep(narrow), keep(wide))
}

// bucketStat is one interval of one table, with what merging it with the same
// interval of another table needs.
type bucketStat struct {
	Bucket
	first, last int64 // times of the interval's first and last sample, ns
}

// wideBuckets returns q downsampled from the wide table.
func (h *History) wideBuckets(ctx context.Context, q HistoryQuery, fn string, lim int) ([]bucketStat, error) {
	if CheckWideColumn(q.Channel) != "" {
		return nil, nil
	}
	typ, err := h.wideColumn(ctx, q.Channel)
	if err != nil || typ == "" {
		return nil, err
	}
	switch typ {
	case "DOUBLE", "FLOAT", "LONG", "INT", "SHORT", "BYTE":
	default:
		return nil, nil // not a number: no buckets, as in the narrow table
	}
	col := quoteIdent(q.Channel)
	out, err := h.bucketStats(ctx, h.wide, col+"::double", q.whereDevice()+" AND "+col+" IS NOT NULL", q, fn, lim)
	if isMissing(err) {
		return nil, nil
	}
	return out, err
}

// bucketStats runs a SAMPLE BY query of expr over the rows of table that
// where selects.
func (h *History) bucketStats(ctx context.Context, table, expr, where string, q HistoryQuery, fn string, lim int) ([]bucketStat, error) {
	agg := fn + "(" + expr + ")"
	if q.Agg == AggCount {
		agg = "count()::double"
	}
	sql := fmt.Sprintf(`SELECT ts, %s v, count() n, min(ts) t0, max(ts) t1 FROM %s WHERE %s SAMPLE BY %dT ALIGN TO CALENDAR LIMIT %d`,
		agg, quoteIdent(table), where, q.Every.Milliseconds(), lim+1)
	_, rows, err := Query(ctx, h.addr, sql)
	if err != nil {
		return nil, err
	}
	out := make([]bucketStat, 0, len(rows))
	for i, r := range rows {
		if len(r) != 5 {
			return nil, fmt.Errorf("ingest: history bucket %d: %d columns, want 5", i, len(r))
		}
		var b bucketStat
		if b.TimeNs, err = parseTS(r[0]); err != nil {
			return nil, fmt.Errorf("ingest: history bucket %d: %w", i, err)
		}
		if n, ok := r[1].(json.Number); ok {
			b.Value, _ = n.Float64()
		}
		if n, ok := r[2].(json.Number); ok {
			b.Count, _ = n.Int64()
		}
		b.first, _ = parseTS(r[3])
		b.last, _ = parseTS(r[4])
		out = append(out, b)
	}
	return out, nil
}

// mergeBuckets merges the buckets of two tables for the same query: an
// interval both have is combined as agg says.
func mergeBuckets(a, b []bucketStat, agg Aggregate) []bucketStat {
	out := make([]bucketStat, 0, len(a)+len(b))
	for len(a) > 0 || len(b) > 0 {
		switch {
		case len(b) == 0 || len(a) > 0 && a[0].TimeNs < b[0].TimeNs:
			out, a = append(out, a[0]), a[1:]
		case len(a) == 0 || b[0].TimeNs < a[0].TimeNs:
			out, b = append(out, b[0]), b[1:]
		default:
			out = append(out, combineBuckets(a[0], b[0], agg))
			a, b = a[1:], b[1:]
		}
	}
	return out
}

func combineBuckets(x, y bucketStat, agg Aggregate) bucketStat {
	c := x
	c.Count = x.Count + y.Count
	c.first, c.last = min(x.first, y.first), max(x.last, y.last)
	switch agg {
	case AggAvg:
		if c.Count > 0 {
			c.Value = (x.Value*float64(x.Count) + y.Value*float64(y.Count)) / float64(c.Count)
		}
	case AggMin:
		c.Value = min(x.Value, y.Value)
	case AggMax:
		c.Value = max(x.Value, y.Value)
	case AggFirst:
		if y.first < x.first {
			c.Value = y.Value
		}
	case AggLast:
		if y.last > x.last {
			c.Value = y.Value
		}
	case AggCount:
		c.Value = float64(c.Count)
	}
	return c
}
