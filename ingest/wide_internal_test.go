package ingest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// rowRecorder is a Row that keeps the columns written, with their QuestDB
// types, as QuestDB would store them.
type rowRecorder struct {
	cols  map[string]any
	types map[string]string
	ts    time.Time
}

func newRowRecorder() *rowRecorder {
	return &rowRecorder{cols: map[string]any{}, types: map[string]string{}}
}

func (r *rowRecorder) set(name, typ string, v any) Row {
	r.cols[name], r.types[name] = v, typ
	return r
}
func (r *rowRecorder) Symbol(name, v string) Row      { return r.set(name, "SYMBOL", v) }
func (r *rowRecorder) Int64(name string, v int64) Row { return r.set(name, "LONG", v) }
func (r *rowRecorder) Float64(name string, v float64) Row {
	return r.set(name, "DOUBLE", v)
}
func (r *rowRecorder) String(name, v string) Row { return r.set(name, "VARCHAR", v) }
func (r *rowRecorder) Bool(name string, v bool) Row {
	return r.set(name, "BOOLEAN", v)
}
func (r *rowRecorder) At(_ context.Context, ts time.Time) error { r.ts = ts; return nil }

// execRows turns recorded rows into what QuestDB's /exec answers for SELECT *
// of the table they were written to: every column any row has (the fixed ones
// first), numbers as json.Number, timestamps in microseconds, null where a row
// wrote nothing, except BOOLEAN, which reads false.
func execRows(t *testing.T, recs []*rowRecorder) ([]column, [][]any) {
	t.Helper()
	cols := []column{{"ts", "TIMESTAMP"}, {colDevice, "SYMBOL"}, {colChannel, "SYMBOL"}, {colSeq, "LONG"},
		{colQuality, "SYMBOL"}, {colError, "VARCHAR"}, {colChannels, "VARCHAR"}, {colDetail, "VARCHAR"}}
	seen := map[string]bool{}
	for _, c := range cols {
		seen[c.Name] = true
	}
	for _, r := range recs {
		names := make([]string, 0, len(r.cols))
		for n := range r.cols {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				cols = append(cols, column{n, r.types[n]})
			} else {
				for _, c := range cols {
					if c.Name == n && c.Type != r.types[n] {
						t.Fatalf("column %s written as %s and as %s", n, c.Type, r.types[n])
					}
				}
			}
		}
	}
	var rows [][]any
	for _, r := range recs {
		row := make([]any, len(cols))
		for i, c := range cols {
			if c.Name == "ts" {
				row[i] = r.ts.UTC().Truncate(time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
				continue
			}
			v, ok := r.cols[c.Name]
			switch {
			case !ok && c.Type == "BOOLEAN":
				row[i] = false
			case !ok:
				row[i] = nil
			default:
				switch x := v.(type) {
				case int64:
					row[i] = json.Number(strconv.FormatInt(x, 10))
				case float64:
					if math.IsNaN(x) || math.IsInf(x, 0) {
						row[i] = nil // QuestDB keeps no NaN or infinity: null
					} else {
						row[i] = json.Number(strconv.FormatFloat(x, 'g', -1, 64))
					}
				default:
					row[i] = x
				}
			}
		}
		rows = append(rows, row)
	}
	return cols, rows
}

// wideCase is a row to write and read back.
type wideCase struct {
	name string
	row  []telemetry.Sample
}

func wideCases() []wideCase {
	ts := time.Date(2026, 12, 7, 10, 0, 0, 123456789, time.UTC).UnixNano()
	s := func(ch string, seq uint64, v telemetry.Value) telemetry.Sample {
		return telemetry.Sample{Device: "psu-01", Channel: ch, TimeNs: ts, Seq: seq, Value: v}
	}
	bad := func(ch string, seq uint64, q telemetry.Quality, msg string) telemetry.Sample {
		return telemetry.Sample{Device: "psu-01", Channel: ch, TimeNs: ts, Seq: seq, Quality: q, Err: msg}
	}
	return []wideCase{
		{"good numbers", []telemetry.Sample{s("voltage", 7, telemetry.Float(12.0034)), s("current", 7, telemetry.Float(-1.5)), s("count", 7, telemetry.Int(-3))}},
		{"strings and booleans", []telemetry.Sample{s("mode", 2, telemetry.String("")), s("output", 2, telemetry.Bool(false)), s("ok", 2, telemetry.Bool(true)), s("label", 2, telemetry.String("a,b \"c\""))}},
		{"all bad", []telemetry.Sample{bad("voltage", 9, telemetry.CommError, "connection refused"), bad("current", 9, telemetry.CommError, "connection refused")}},
		{"one channel bad", []telemetry.Sample{s("voltage", 4, telemetry.Float(1)), bad("count", 4, telemetry.ParseError, "key count: not an int"), s("current", 4, telemetry.Float(2))}},
		{"first channel bad", []telemetry.Sample{bad("voltage", 4, telemetry.Timeout, "no reply"), s("current", 4, telemetry.Float(2))}},
		{"seqs differ", []telemetry.Sample{s("voltage", 10, telemetry.Float(1)), s("current", 3, telemetry.Float(2)), s("count", 10, telemetry.Int(5))}},
		{"not finite", []telemetry.Sample{s("voltage", 1, telemetry.Float(math.NaN())), s("current", 1, telemetry.Float(math.Inf(1))), s("spare", 1, telemetry.Float(math.Inf(-1))), s("count", 1, telemetry.Int(0))}},
		{"one sample", []telemetry.Sample{s("voltage", 1, telemetry.Float(0))}},
		{"good without a value", []telemetry.Sample{s("voltage", 5, telemetry.Value{}), s("current", 5, telemetry.Float(3))}},
	}
}

// sameArchived compares samples as the archive keeps them: microseconds, NaN
// equal to NaN.
func sameArchived(a, b telemetry.Sample) bool {
	a.Detach()
	b.Detach()
	a.TimeNs, b.TimeNs = a.TimeNs/1000, b.TimeNs/1000
	if a.Value.Kind == telemetry.KindFloat && b.Value.Kind == telemetry.KindFloat && math.IsNaN(a.Value.F) && math.IsNaN(b.Value.F) {
		a.Value.F, b.Value.F = 0, 0
	}
	return a == b
}

// TestWideRowsReadBackAsWritten writes each case as a wide row, turns the rows
// into what QuestDB answers for them (one table: every column any row has),
// and reads every channel back: each sample as it was published, whatever
// its value, quality, error or seq; one channel alone too.
func TestWideRowsReadBackAsWritten(t *testing.T) {
	cases := wideCases()
	var recs []*rowRecorder
	for _, c := range cases {
		r := newRowRecorder()
		if err := EncodeWideRow(context.Background(), r, "t", &WideRow{Samples: c.row}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		recs = append(recs, r)
	}
	// A uniform row of numbers is its values alone.
	if _, ok := recs[0].cols[colChannels]; ok {
		t.Errorf("good numbers: a channel list was written: %v", recs[0].cols)
	}
	if _, ok := recs[0].cols[colDetail]; ok {
		t.Errorf("good numbers: a detail was written: %v", recs[0].cols)
	}
	cols, rows := execRows(t, recs)
	for i, c := range cases {
		got, err := samplesOfWideRow(cols, rows[i], "", nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		// A row read back has its channels in the table's column order.
		byChannel(got)
		want := slices.Clone(c.row)
		byChannel(want)
		c.row = want
		if len(got) != len(c.row) {
			t.Fatalf("%s: read back %d samples, want %d: %v", c.name, len(got), len(c.row), got)
		}
		for j := range got {
			if !sameArchived(got[j], c.row[j]) {
				t.Errorf("%s: sample %d read back as %v (%+v), want %v (%+v)", c.name, j, got[j], got[j].Value, c.row[j], c.row[j].Value)
			}
		}
		for _, want := range c.row {
			one, err := samplesOfWideRow(cols, rows[i], want.Channel, nil)
			if err != nil || len(one) != 1 || !sameArchived(one[0], want) {
				t.Errorf("%s: channel %s alone read back as %v, %v", c.name, want.Channel, one, err)
			}
		}
		// A channel of another row is not in this one.
		if got, _ := samplesOfWideRow(cols, rows[i], "nosuch", nil); len(got) != 0 {
			t.Errorf("%s: channel nosuch read back as %v", c.name, got)
		}
	}
}

// TestWideRowsRandom writes random rows (random channels of fixed types,
// qualities, errors, seqs and values) and reads them back.
func TestWideRowsRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kinds := map[string]telemetry.Kind{"a": telemetry.KindFloat, "b": telemetry.KindFloat, "n": telemetry.KindInt,
		"s": telemetry.KindString, "f": telemetry.KindBool, "c_2": telemetry.KindFloat}
	names := []string{"a", "b", "n", "s", "f", "c_2"}
	value := func(k telemetry.Kind) telemetry.Value {
		switch k {
		case telemetry.KindInt:
			return telemetry.Int(rng.Int64N(1000) - 500)
		case telemetry.KindString:
			return telemetry.String([]string{"", "on", "x,y"}[rng.IntN(3)])
		case telemetry.KindBool:
			return telemetry.Bool(rng.IntN(2) == 0)
		}
		return telemetry.Float([]float64{0, 1.5, -2e10, math.NaN(), math.Inf(1), rng.NormFloat64()}[rng.IntN(6)])
	}
	var rows [][]telemetry.Sample
	var recs []*rowRecorder
	for i := range 2000 {
		ts := time.Unix(1_800_000_000, int64(i)*1_000_000).UnixNano()
		baseSeq := uint64(rng.IntN(100) + 1)
		var row []telemetry.Sample
		for _, n := range names {
			if rng.IntN(3) == 0 {
				continue
			}
			s := telemetry.Sample{Device: "dev", Channel: n, TimeNs: ts, Seq: baseSeq}
			if rng.IntN(5) == 0 {
				s.Seq += uint64(rng.IntN(3))
			}
			if rng.IntN(4) == 0 {
				s.Quality = telemetry.Quality(1 + rng.IntN(4))
				s.Err = []string{"", "timeout", "refused"}[rng.IntN(3)]
			} else {
				s.Value = value(kinds[n])
			}
			row = append(row, s)
		}
		if len(row) == 0 {
			continue
		}
		r := newRowRecorder()
		if err := EncodeWideRow(context.Background(), r, "t", &WideRow{Samples: row}); err != nil {
			t.Fatal(err)
		}
		rows, recs = append(rows, row), append(recs, r)
	}
	cols, exec := execRows(t, recs)
	for i, row := range rows {
		got, err := samplesOfWideRow(cols, exec[i], "", nil)
		if err != nil {
			t.Fatalf("row %d: %v", i, err)
		}
		byChannel(got)
		byChannel(row)
		if len(got) != len(row) {
			t.Fatalf("row %d: %d samples back, want %d: %v vs %v", i, len(got), len(row), got, row)
		}
		for j := range row {
			if !sameArchived(got[j], row[j]) {
				t.Fatalf("row %d sample %d: got %v %+v, want %v %+v", i, j, got[j], got[j].Value, row[j], row[j].Value)
			}
		}
	}
}

// byChannel sorts samples by channel.
func byChannel(s []telemetry.Sample) {
	slices.SortFunc(s, func(a, b telemetry.Sample) int { return strings.Compare(a.Channel, b.Channel) })
}

func TestAppendWideRows(t *testing.T) {
	ts := int64(1_800_000_000_000_000_000)
	s := func(dev, ch string, ns int64) telemetry.Sample {
		return telemetry.Sample{Device: dev, Channel: ch, TimeNs: ts + ns}
	}
	in := []telemetry.Sample{
		s("a", "v", 0), s("a", "i", 999), // one microsecond: one row
		s("a", "v", 1000),                    // the next microsecond
		s("b", "v", 1000),                    // another device
		s("b", "v", 1000), s("b", "i", 1000), // a channel again: a new row
		s("a", "x", 1000), // a again, after b: a row of its own
	}
	var got []string
	for _, r := range AppendWideRows(nil, in) {
		var chans []string
		for _, smp := range r.Samples {
			chans = append(chans, smp.Channel)
		}
		got = append(got, fmt.Sprintf("%s@%d:%s", r.Device(), (r.TimeNs()-ts)/1000, strings.Join(chans, ",")))
	}
	want := []string{"a@0:v,i", "a@1:v", "b@1:v", "b@1:v,i", "a@1:x"}
	if !slices.Equal(got, want) {
		t.Errorf("rows %q, want %q", got, want)
	}
}

// TestWideRecordGolden pins the spool encoding of a wide row
// (testdata/wide_record.hex): a spool written by this version must stay
// readable. Update with -update after a deliberate change of format (and a new
// wideRecordVersion).
func TestWideRecordGolden(t *testing.T) {
	row := WideRow{Samples: wideCases()[3].row}
	got := hex.EncodeToString(appendWideRecord(nil, &row))
	path := filepath.Join("testdata", "wide_record.hex")
	if *update {
		if err := os.WriteFile(path, []byte(got+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Errorf("encoding changed:\n got %s\nwant %s", got, want)
	}
	b, _ := hex.DecodeString(strings.TrimSpace(string(want)))
	back, err := DecodeWideRow(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back.Samples) != len(row.Samples) {
		t.Fatalf("decoded %d samples, want %d", len(back.Samples), len(row.Samples))
	}
	for i := range back.Samples {
		if back.Samples[i] != row.Samples[i] {
			t.Errorf("sample %d decoded as %+v, want %+v", i, back.Samples[i], row.Samples[i])
		}
	}
	if _, err := DecodeSample(b); err == nil {
		t.Error("a wide row decoded as a sample")
	}
	if _, err := DecodeWideRow(appendRecord(nil, &row.Samples[0])); err == nil {
		t.Error("a sample decoded as a wide row")
	}
}

// FuzzDecodeWideRow: any bytes decode to an error or to a row that encodes
// and decodes to the same row again; never a panic.
func FuzzDecodeWideRow(f *testing.F) {
	for _, c := range wideCases() {
		f.Add(appendWideRecord(nil, &WideRow{Samples: c.row}))
	}
	f.Add([]byte{wideRecordVersion, 0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		row, err := DecodeWideRow(b)
		if err != nil {
			return
		}
		again, err := DecodeWideRow(appendWideRecord(nil, &row))
		if err != nil {
			t.Fatalf("decoded %x to %+v, whose encoding does not decode: %v", b, row, err)
		}
		if !slices.EqualFunc(again.Samples, row.Samples, func(a, b telemetry.Sample) bool {
			return a == b || math.IsNaN(a.Value.F) && math.IsNaN(b.Value.F) && a.Channel == b.Channel
		}) {
			t.Errorf("decoded %x to %+v, which encodes and decodes to %+v", b, row, again)
		}
	})
}
