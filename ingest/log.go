package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

// DefaultReplayPage is how many rows a Log reads per query when
// ReplayOptions.Page is zero.
const DefaultReplayPage = 10000

// Log reads the records of one Table back out of QuestDB in time order: the
// replay of what was archived from some time on (WatchAlarms and WatchDevices
// with since_ns). The Table needs Columns, Scan and Time. It is safe for
// concurrent use.
type Log[T any] struct {
	addr, name string
	table      Table[T]
	w          interface{ Archived(context.Context) error }
}

// NewLog returns a Log of w's table (w's own name for it) at QuestDB's HTTP
// address. Settle waits for w.
func NewLog[T any](httpAddr string, w *Writer[T]) (*Log[T], error) {
	t := w.table
	if t.Columns == nil || t.Scan == nil || t.Time == nil {
		return nil, fmt.Errorf("ingest: table %s cannot be read back (it needs Columns, Scan and Time)", t.Name)
	}
	return &Log[T]{addr: httpAddr, name: w.Table(), table: t, w: w}, nil
}

// Settle returns once every record handed to the Writer before the call is in
// the table and visible to queries: the Writer has archived it (through
// QuestDB outages) and QuestDB has applied it. It waits until ctx ends.
func (l *Log[T]) Settle(ctx context.Context) error {
	if err := l.w.Archived(ctx); err != nil {
		return err
	}
	return visible(ctx, l.addr, l.name)
}

// Page returns up to limit records at or after fromNs, in time order
// (QuestDB's microsecond precision): one query, not retried. A table that does
// not exist yet holds nothing.
func (l *Log[T]) Page(ctx context.Context, fromNs int64, limit int) ([]T, error) {
	return l.read(ctx, fmt.Sprintf("ts >= %d", fromNs/1000), fmt.Sprintf(" LIMIT %d", limit))
}

func (l *Log[T]) read(ctx context.Context, where, limit string) ([]T, error) {
	sql := fmt.Sprintf("SELECT %s FROM %s WHERE %s ORDER BY ts%s", strings.Join(l.table.Columns, ", "), quoteIdent(l.name), where, limit)
	_, rows, err := Query(ctx, l.addr, sql)
	var qe *QueryError
	if errors.As(err, &qe) && strings.Contains(qe.Message, "does not exist") {
		return nil, nil // nothing archived yet
	}
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(rows))
	for i, r := range rows {
		if len(r) != len(l.table.Columns) {
			return nil, fmt.Errorf("ingest: table %q row %d: %d columns, want %d", l.name, i, len(r), len(l.table.Columns))
		}
		v, err := l.table.Scan(r)
		if err != nil {
			return nil, fmt.Errorf("ingest: table %q row %d: %w", l.name, i, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// ReplayOptions tunes Log.Replay; the zero value reads pages of
// DefaultReplayPage rows and retries with the system clock.
type ReplayOptions struct {
	// Page is the most rows one query reads. Default DefaultReplayPage.
	Page int
	// Clock times the waits between retries. Default backoff.System.
	Clock backoff.Clock
}

// Replay hands every record from fromNs on (at QuestDB's microsecond
// precision) to each, in time order, a page at a time, until the end of the
// table as it is while it reads. No record is handed over twice and none is
// skipped at the boundary of two pages: a page ends before the microsecond its
// last row is in, which the next page starts with (a page all of one
// microsecond is read whole). A query that fails in a way that passes (QuestDB
// down or restarting, see backoff.IsRecoverable) is retried with a backoff of
// 100 ms to 5 s; any other error, or one from each, ends the replay.
func (l *Log[T]) Replay(ctx context.Context, fromNs int64, opts ReplayOptions, each func([]T) error) error {
	page := opts.Page
	if page <= 0 {
		page = DefaultReplayPage
	}
	b := &backoff.Backoff{Policy: backoff.Policy{Min: 100 * time.Millisecond, Max: 5 * time.Second}, Clock: opts.Clock}
	query := func(where, limit string) (rows []T, err error) {
		err = backoff.Retry(ctx, b, func() error {
			rows, err = l.read(ctx, where, limit)
			return err
		}, nil)
		return rows, err
	}
	fromUs := fromNs / 1000
	for {
		rows, err := query(fmt.Sprintf("ts >= %d", fromUs), fmt.Sprintf(" LIMIT %d", page))
		if err != nil {
			return err
		}
		if len(rows) < page {
			if len(rows) == 0 {
				return nil
			}
			return each(rows)
		}
		lastUs := l.table.Time(&rows[len(rows)-1]) / 1000
		cut := len(rows)
		for cut > 0 && l.table.Time(&rows[cut-1])/1000 == lastUs {
			cut--
		}
		if cut == 0 { // a whole page in one microsecond: read all of it
			if rows, err = query(fmt.Sprintf("ts >= %d AND ts < %d", lastUs, lastUs+1), ""); err != nil {
				return err
			}
			cut, lastUs = len(rows), lastUs+1
		}
		if err := each(rows[:cut]); err != nil {
			return err
		}
		fromUs = lastUs
	}
}

// Cells reads the cells of one row of a Query result, as a Table's Scan does.
// It remembers the first cell of the wrong type; see Err.
type Cells struct {
	Row []any
	err error
}

func (c *Cells) fail(i int, want string) {
	if c.err == nil {
		c.err = fmt.Errorf("column %d is %T %v, want %s", i, c.Row[i], c.Row[i], want)
	}
}

// Time returns a timestamp cell in nanoseconds since the Unix epoch.
func (c *Cells) Time(i int) int64 {
	ns, err := parseTS(c.Row[i])
	if err != nil && c.err == nil {
		c.err = fmt.Errorf("column %d: %w", i, err)
	}
	return ns
}

// String returns a SYMBOL or VARCHAR cell; null is "".
func (c *Cells) String(i int) string {
	switch v := c.Row[i].(type) {
	case nil:
		return ""
	case string:
		return v
	}
	c.fail(i, "a string")
	return ""
}

// Bool returns a BOOLEAN cell.
func (c *Cells) Bool(i int) bool {
	v, ok := c.Row[i].(bool)
	if !ok {
		c.fail(i, "a boolean")
	}
	return v
}

// Float returns a DOUBLE cell and false for null.
func (c *Cells) Float(i int) (float64, bool) {
	if c.Row[i] == nil {
		return 0, false
	}
	n, ok := c.Row[i].(json.Number)
	if !ok {
		c.fail(i, "a number")
		return 0, false
	}
	f, err := n.Float64()
	if err != nil {
		c.fail(i, "a number")
	}
	return f, err == nil
}

// Int returns a LONG cell; null is 0.
func (c *Cells) Int(i int) int64 {
	if c.Row[i] == nil {
		return 0
	}
	n, ok := c.Row[i].(json.Number)
	if !ok {
		c.fail(i, "an integer")
		return 0
	}
	v, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		c.fail(i, "an integer")
	}
	return v
}

// Err returns the first cell that had the wrong type, or nil.
func (c *Cells) Err() error { return c.err }
