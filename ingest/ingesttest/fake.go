package ingesttest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// FakeDB is an in-memory database behind an ingest.Appender, for checking the
// archive's durability without QuestDB. Like a QuestDB table made with DEDUP
// keys, a table keeps one row per key (the designated timestamp and the DEDUP
// columns its CREATE statement names), so a re-sent row lands once; it also
// counts every row received, so a test sees re-sends. Failures are switched on
// and off at run time: an outage, rows refused (400), answers lost after the
// rows were committed. It is safe for concurrent use.
type FakeDB struct {
	mu       sync.Mutex
	tables   map[string]*FakeTable
	down     error
	refuse   func(*FakeRow) bool
	badEnc   func(*FakeRow) bool
	lostAcks int
	sends    int
	block    chan struct{}
}

// FakeTable is one table of a FakeDB.
type FakeTable struct {
	Keys     []string           // DEDUP key columns besides the timestamp
	Rows     map[string]FakeRow // by key
	Order    []string           // keys in the order first stored
	Received int                // rows received, re-sends included
}

// FakeRow is one row as the Writer encoded it.
type FakeRow struct {
	Table string
	TS    time.Time
	Cols  map[string]any
}

// Str returns column name as a string ("" if absent); Int and Float likewise.
func (r *FakeRow) Str(name string) string { s, _ := r.Cols[name].(string); return s }

// Int returns an integer column (0 if absent).
func (r *FakeRow) Int(name string) int64 { v, _ := r.Cols[name].(int64); return v }

// NewFakeDB returns an empty FakeDB that answers every request.
func NewFakeDB() *FakeDB { return &FakeDB{tables: map[string]*FakeTable{}} }

// SetDown makes every request fail with err as a transport error until
// SetDown(nil). Table creation fails too.
func (db *FakeDB) SetDown(err error) {
	db.mu.Lock()
	db.down = err
	db.mu.Unlock()
}

// Refuse makes a request fail with 400, blaming the first row for which f
// reports true (nothing of that request is stored); nil stops refusing.
func (db *FakeDB) Refuse(f func(*FakeRow) bool) {
	db.mu.Lock()
	db.refuse = f
	db.mu.Unlock()
}

// RefuseEncode makes At refuse the rows for which f reports true.
func (db *FakeDB) RefuseEncode(f func(*FakeRow) bool) {
	db.mu.Lock()
	db.badEnc = f
	db.mu.Unlock()
}

// LoseAcks makes the next n requests store their rows and then fail with a
// 503, as when an answer is lost: the Writer sends them again.
func (db *FakeDB) LoseAcks(n int) {
	db.mu.Lock()
	db.lostAcks = n
	db.mu.Unlock()
}

// Block makes requests wait until Unblock (or their context ends).
func (db *FakeDB) Block() {
	db.mu.Lock()
	if db.block == nil {
		db.block = make(chan struct{})
	}
	db.mu.Unlock()
}

// Unblock releases the requests that Block holds.
func (db *FakeDB) Unblock() {
	db.mu.Lock()
	if db.block != nil {
		close(db.block)
		db.block = nil
	}
	db.mu.Unlock()
}

// Sends returns how many requests were sent (answered or not).
func (db *FakeDB) Sends() int {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.sends
}

// Table returns a copy of table (nil if it was never created).
func (db *FakeDB) Table(name string) *FakeTable {
	db.mu.Lock()
	defer db.mu.Unlock()
	t := db.tables[name]
	if t == nil {
		return nil
	}
	c := *t
	c.Rows = make(map[string]FakeRow, len(t.Rows))
	for k, v := range t.Rows {
		c.Rows[k] = v
	}
	c.Order = slices.Clone(t.Order)
	return &c
}

// Count returns the distinct rows of table; Received the rows it received.
func (db *FakeDB) Count(table string) (rows, received int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if t := db.tables[table]; t != nil {
		return len(t.Rows), t.Received
	}
	return 0, 0
}

// Stored returns the rows of table in the order they were first stored.
func (db *FakeDB) Stored(table string) []FakeRow {
	t := db.Table(table)
	if t == nil {
		return nil
	}
	out := make([]FakeRow, len(t.Order))
	for i, k := range t.Order {
		out[i] = t.Rows[k]
	}
	return out
}

var (
	createName = regexp.MustCompile(`(?i)CREATE TABLE IF NOT EXISTS "([^"]+)"`)
	dedupKeys  = regexp.MustCompile(`(?i)DEDUP UPSERT KEYS\(([^)]*)\)`)
)

// CreateTable implements ingest.Appender: it takes the name and the DEDUP keys
// from the statement.
func (db *FakeDB) CreateTable(_ context.Context, stmt string) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.down != nil {
		return db.down
	}
	m := createName.FindStringSubmatch(stmt)
	if m == nil {
		return fmt.Errorf("fake db: not a CREATE TABLE IF NOT EXISTS statement: %.60q", stmt)
	}
	if db.tables[m[1]] != nil {
		return nil
	}
	t := &FakeTable{Rows: map[string]FakeRow{}}
	if k := dedupKeys.FindStringSubmatch(stmt); k != nil {
		for _, col := range strings.Split(k[1], ",") {
			if col = strings.TrimSpace(col); col != "ts" {
				t.Keys = append(t.Keys, col)
			}
		}
	}
	db.tables[m[1]] = t
	return nil
}

// NewRequest implements ingest.Appender.
func (db *FakeDB) NewRequest() (ingest.Request, error) { return &fakeRequest{db: db}, nil }

type fakeRequest struct {
	db   *FakeDB
	rows []FakeRow
	cur  fakeRow
}

func (r *fakeRequest) Row(table string) ingest.Row {
	r.cur = fakeRow{req: r, row: FakeRow{Table: table, Cols: map[string]any{}}}
	return &r.cur
}

func (r *fakeRequest) Close() { r.rows = nil }

func (r *fakeRequest) Send(ctx context.Context) error {
	rows := r.rows
	r.rows = nil
	db := r.db
	db.mu.Lock()
	block := db.block
	db.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return &ingest.SendError{Reason: ingest.ReasonTransport, Err: ctx.Err()}
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	db.sends++
	if db.down != nil {
		return &ingest.SendError{Reason: ingest.ReasonTransport, Err: db.down}
	}
	for i := range rows {
		if db.tables[rows[i].Table] == nil {
			return &ingest.SendError{Reason: ingest.ReasonOtherStatus, Err: fmt.Errorf("404: table %q does not exist", rows[i].Table)}
		}
		if db.refuse != nil && db.refuse(&rows[i]) {
			return &ingest.SendError{Reason: ingest.ReasonBadRequest, Line: i + 1,
				Err: fmt.Errorf("400: bad row at line %d", i+1)}
		}
	}
	for _, row := range rows {
		t := db.tables[row.Table]
		t.Received++
		key := row.TS.UTC().Format(time.RFC3339Nano)
		for _, k := range t.Keys {
			key += fmt.Sprintf("|%v", row.Cols[k])
		}
		if _, ok := t.Rows[key]; !ok {
			t.Order = append(t.Order, key)
		}
		t.Rows[key] = row
	}
	if db.lostAcks > 0 {
		db.lostAcks--
		return &ingest.SendError{Reason: ingest.ReasonServer, Err: errors.New("503: the answer was lost")}
	}
	return nil
}

type fakeRow struct {
	req *fakeRequest
	row FakeRow
}

func (w *fakeRow) set(name string, v any) ingest.Row { w.row.Cols[name] = v; return w }

func (w *fakeRow) Symbol(name, v string) ingest.Row          { return w.set(name, v) }
func (w *fakeRow) Int64(name string, v int64) ingest.Row     { return w.set(name, v) }
func (w *fakeRow) Float64(name string, v float64) ingest.Row { return w.set(name, v) }
func (w *fakeRow) String(name, v string) ingest.Row          { return w.set(name, v) }
func (w *fakeRow) Bool(name string, v bool) ingest.Row       { return w.set(name, v) }

func (w *fakeRow) At(_ context.Context, ts time.Time) error {
	// QuestDB keeps microseconds.
	w.row.TS = ts.Truncate(time.Microsecond)
	db := w.req.db
	db.mu.Lock()
	bad := db.badEnc != nil && db.badEnc(&w.row)
	db.mu.Unlock()
	if bad {
		return errors.New("fake db: the row cannot be encoded")
	}
	w.req.rows = append(w.req.rows, w.row)
	return nil
}

// Samples returns n samples with distinct (device, channel, seq) keys and
// timestamps one microsecond apart: floats, ints, strings (with characters ILP must
// escape), bools, and every tenth one a bad-quality sample without a value.
func Samples(n int, base time.Time) []telemetry.Sample {
	out := make([]telemetry.Sample, n)
	for i := range out {
		s := telemetry.Sample{
			Device:  fmt.Sprintf("psu%d", i%7),
			Channel: fmt.Sprintf("ch%d", i%13),
			TimeNs:  base.UnixNano() + int64(i)*1000,
			Seq:     uint64(i + 1),
		}
		switch i % 10 {
		case 0, 1, 2:
			s.Value = telemetry.Float(float64(i) + 0.25)
		case 3, 4:
			s.Value = telemetry.Int(int64(i) * -3)
		case 5, 6:
			s.Value = telemetry.String(fmt.Sprintf("v=\"%d\", a b\\c\nnext", i))
		case 7, 8:
			s.Value = telemetry.Bool(i%20 == 7)
		case 9:
			s.Quality = telemetry.Timeout
			s.Err = "no reply within 500ms"
		}
		out[i] = s
	}
	return out
}
