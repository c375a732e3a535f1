package ingest

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/switchyard/switchyard/telemetry"
)

var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

func spoolSample(i int) telemetry.Sample {
	return telemetry.Sample{Device: "d", Channel: fmt.Sprintf("c%d", i%3), TimeNs: int64(1e18 + i), Seq: uint64(i + 1), Value: telemetry.Float(float64(i))}
}

func appendN(t *testing.T, sp *spool, from, n int) {
	t.Helper()
	var buf, rec []byte
	for i := from; i < from+n; i++ {
		smp := spoolSample(i)
		rec = appendRecord(rec[:0], &smp)
		buf = appendFrame(buf, rec)
	}
	if err := sp.append(buf, n); err != nil {
		t.Fatal(err)
	}
}

type readRec struct {
	smp telemetry.Sample
	end uint64
}

func readAll(t *testing.T, sp *spool) []readRec {
	t.Helper()
	var out []readRec
	if err := sp.read(1<<30, func(p []byte, end uint64) {
		smp, err := decodeRecord(p)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, readRec{smp, end})
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func checkSeqs(t *testing.T, got []readRec, from, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("read %d records, want %d", len(got), n)
	}
	for i, r := range got {
		if want := spoolSample(from + i); r.smp != want {
			t.Fatalf("record %d = %v, want %v", i, r.smp, want)
		}
	}
}

func TestSpoolReplaysUnacknowledged(t *testing.T) {
	dir := t.TempDir()
	sp, rec, err := openSpool(dir, true, 4096, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Records != 0 {
		t.Fatalf("new spool has %d records", rec.Records)
	}
	for i := range 10 {
		appendN(t, sp, i*50, 50) // rotates segments at 4 KiB
	}
	got := readAll(t, sp)
	checkSeqs(t, got, 0, 500)
	if err := sp.ack(got[199].end, 200); err != nil {
		t.Fatal(err)
	}
	segsBefore := len(sp.segs)
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}

	sp, rec, err = openSpool(dir, true, 4096, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if rec.Records != 300 || rec.TornBytes != 0 || sp.unacked != 300 {
		t.Fatalf("reopened: %+v, unacked %d; want 300 records", rec, sp.unacked)
	}
	if len(sp.segs) > segsBefore || len(sp.segs) < 2 {
		t.Fatalf("%d segments after reopening, had %d", len(sp.segs), segsBefore)
	}
	checkSeqs(t, readAll(t, sp), 200, 300)
	appendN(t, sp, 500, 10)
	checkSeqs(t, readAll(t, sp), 500, 10)
}

func TestSpoolTruncatesTornTail(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func(t *testing.T, last string, size int64)
	}{
		{"half a frame", func(t *testing.T, last string, size int64) {
			if err := os.Truncate(last, size-5); err != nil {
				t.Fatal(err)
			}
		}},
		{"garbage after", func(t *testing.T, last string, size int64) {
			f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.Write([]byte{40, 0, 0, 0, 1, 2, 3, 4, 5, 6})
			f.Close()
		}},
		{"flipped byte", func(t *testing.T, last string, size int64) {
			f, err := os.OpenFile(last, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0xff}, size-2)
			f.Close()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sp, _, err := openSpool(dir, false, 1<<20, 1<<20, discard)
			if err != nil {
				t.Fatal(err)
			}
			appendN(t, sp, 0, 20)
			last := sp.segName(sp.segs[len(sp.segs)-1].base)
			size := sp.segs[len(sp.segs)-1].size
			sp.close()
			tc.tear(t, last, size)

			sp, rec, err := openSpool(dir, false, 1<<20, 1<<20, discard)
			if err != nil {
				t.Fatal(err)
			}
			defer sp.close()
			if rec.Records != 19 && tc.name != "garbage after" {
				t.Fatalf("records after a torn last frame = %d, want 19", rec.Records)
			}
			if rec.TornBytes == 0 {
				t.Fatal("no torn bytes reported")
			}
			n := rec.Records
			checkSeqs(t, readAll(t, sp), 0, n)
			appendN(t, sp, n, 5) // appends go after the cut
			checkSeqs(t, readAll(t, sp), n, 5)
			sp.close()
			sp2, rec2, err := openSpool(dir, false, 1<<20, 1<<20, discard)
			if err != nil {
				t.Fatal(err)
			}
			defer sp2.close()
			if rec2.TornBytes != 0 || rec2.Records != n+5 {
				t.Fatalf("second reopen: %+v, want %d records and no torn bytes", rec2, n+5)
			}
		})
	}
}

func TestSpoolFull(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpool(dir, false, 4096, 16384, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	var smp = spoolSample(0)
	frame := appendFrame(nil, appendRecord(nil, &smp))
	n := 0
	for {
		err := sp.append(frame, 1)
		if errors.Is(err, ErrSpoolFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if sp.bytes() > 16384 || sp.bytes()+int64(len(frame)) <= 16384 {
		t.Fatalf("full at %d bytes with bound 16384 and %d-byte frames", sp.bytes(), len(frame))
	}
	var ends []uint64
	sp.read(n, func(_ []byte, end uint64) { ends = append(ends, end) })
	if err := sp.ack(ends[len(ends)/2], len(ends)/2+1); err != nil {
		t.Fatal(err)
	}
	if err := sp.append(frame, 1); err != nil {
		t.Fatalf("after acknowledging half: %v", err)
	}
}

func TestSpoolBadAckReplaysAll(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpool(dir, false, 1<<20, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, sp, 0, 10)
	got := readAll(t, sp)
	sp.ack(got[4].end, 5)
	sp.close()
	if err := os.WriteFile(filepath.Join(dir, ackFile), []byte("nonsense"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp, rec, err := openSpool(dir, false, 1<<20, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	if rec.Records != 10 {
		t.Fatalf("with an unreadable ack file: %d records to replay, want all 10", rec.Records)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, smp := range []telemetry.Sample{
		{Device: "a", Channel: "b", TimeNs: -5, Seq: 1, Value: telemetry.Float(-1.5)},
		{Device: "a", Channel: "b", TimeNs: 5, Seq: 1 << 60, Value: telemetry.Int(-1 << 62)},
		{Device: "ä", Channel: "b\n", TimeNs: 5, Seq: 2, Value: telemetry.String("x,y=\"z\"")},
		{Device: "a", Channel: "b", Seq: 3, Value: telemetry.Bool(true)},
		{Device: "a", Channel: "b", Seq: 3, Quality: telemetry.Timeout, Err: "no reply"},
	} {
		got, err := decodeRecord(appendRecord(nil, &smp))
		if err != nil || got != smp {
			t.Errorf("round trip of %v = %v, %v", smp, got, err)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	smp := spoolSample(3)
	f.Add(appendRecord(nil, &smp))
	smp.Value = telemetry.String("s")
	f.Add(appendRecord(nil, &smp))
	f.Add([]byte{1, 9, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		smp, err := decodeRecord(b)
		if err != nil {
			if !errors.Is(err, errRecord) {
				t.Fatalf("error %v does not wrap errRecord", err)
			}
			return
		}
		again, err := decodeRecord(appendRecord(nil, &smp))
		if err != nil || !sameSample(again, smp) {
			t.Fatalf("re-encoding %v gives %v, %v", smp, again, err)
		}
	})
}

// sameSample compares samples treating NaN values as equal.
func sameSample(a, b telemetry.Sample) bool {
	if a.Value.Kind == telemetry.KindFloat && a.Value.F != a.Value.F && b.Value.F != b.Value.F {
		a.Value.F, b.Value.F = 0, 0
	}
	return a == b
}

func FuzzSpoolOpen(f *testing.F) {
	smp := spoolSample(1)
	good := appendFrame(nil, appendRecord(nil, &smp))
	f.Add(good)
	f.Add(append(append([]byte{}, good...), good[:7]...))
	f.Add([]byte{255, 255, 255, 255, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, seg []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%016x%s", 0, segSuffix)), seg, 0o644); err != nil {
			t.Fatal(err)
		}
		sp, rec, err := openSpool(dir, false, 1<<20, 1<<22, discard)
		if err != nil {
			t.Fatal(err)
		}
		defer sp.close()
		n := 0
		if err := sp.read(1<<30, func([]byte, uint64) { n++ }); err != nil {
			t.Fatal(err)
		}
		if n != rec.Records {
			t.Fatalf("read %d records, open reported %d", n, rec.Records)
		}
	})
}

func TestSpoolIsLocked(t *testing.T) {
	dir := t.TempDir()
	sp, _, err := openSpool(dir, false, 1<<20, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := openSpool(dir, false, 1<<20, 1<<20, discard); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open of a spool in use = %v, want an 'in use' error", err)
	}
	sp.close()
	sp, _, err = openSpool(dir, false, 1<<20, 1<<20, discard)
	if err != nil {
		t.Fatalf("open after close: %v", err)
	}
	sp.close()
}

func TestCheckSpoolDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := CheckSpoolDir(dir); err != nil {
		t.Fatalf("a new directory: %v", err)
	}
	sp, _, err := openSpool(dir, false, 1<<20, 1<<20, discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckSpoolDir(dir); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("a spool in use: %v, want an 'in use' error", err)
	}
	sp.close()
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := CheckSpoolDir(file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("a file where the directory should be: %v, want an error naming it", err)
	}
}
