package ingest_test

// The archive's durability properties checked without QuestDB: a FakeDB
// stands behind the Appender (with DEDUP keys, outages, refused rows and lost
// answers), the spool is the real one on disk, and the Writer runs in a
// synctest bubble, so its timers and backoffs pass instantly and every step is
// decided by synctest.Wait, never by sleeping. The tests against a real QuestDB
// (writer_test.go, spool_writer_test.go, outage_test.go) remain the end-to-end
// proof of the same properties.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/telemetry"
)

var errDown = errors.New("connection refused")

// fakeEnv is a sample Writer into a FakeDB, fed by a hub, in a synctest bubble.
type fakeEnv struct {
	db  *ingesttest.FakeDB
	hub *telemetry.Hub
	sub *telemetry.Subscription
	w   *running
}

func newFakeEnv(t *testing.T, opts ingest.Options, capacity int) *fakeEnv {
	t.Helper()
	e := &fakeEnv{db: ingesttest.NewFakeDB(), hub: telemetry.NewHub(nil)}
	e.sub = e.hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless, Capacity: capacity})
	t.Cleanup(e.sub.Close)
	if opts.RetryBackoffMax == 0 {
		opts.RetryBackoffMin, opts.RetryBackoffMax = 100*time.Millisecond, time.Second
	}
	e.w = startWriterTo(t, e.db, e.sub, opts)
	return e
}

// spoolBacklog runs a Writer on a spool in dir while the database is down,
// publishes n samples, and stops it with them all in the spool.
func spoolBacklog(t *testing.T, n int, opts ingest.Options) (*ingesttest.FakeDB, []telemetry.Sample) {
	t.Helper()
	e := newFakeEnv(t, opts, 0)
	samples := makeSamples(n, testBase())
	e.db.SetDown(errDown)
	publish(e.hub, samples, 100)
	settle(5 * time.Second)
	if err := e.w.stop(t); err != nil {
		t.Fatalf("stop with a spooled backlog = %v, want nil", err)
	}
	e.db.SetDown(nil)
	return e.db, samples
}

// restart runs a new Writer into db on the same options (the same spool), fed
// by a hub of its own.
func restart(t *testing.T, db *ingesttest.FakeDB, opts ingest.Options) *running {
	t.Helper()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	t.Cleanup(sub.Close)
	return startWriterTo(t, db, sub, opts)
}

// settle lets the bubble's time pass d, then waits until every goroutine in it
// is blocked.
func settle(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// checkArchived fails unless the fake table holds exactly want (each sample
// once, by its DEDUP key).
func checkArchived(t *testing.T, db *ingesttest.FakeDB, want []telemetry.Sample) {
	t.Helper()
	rows := db.Stored(ingest.DefaultTable)
	got := map[string]int{}
	for _, r := range rows {
		got[fmt.Sprintf("%s/%s#%d@%d", r.Str("device"), r.Str("channel"), r.Int("seq"), r.TS.UnixMicro())]++
	}
	missing := 0
	for _, s := range want {
		k := fmt.Sprintf("%s#%d@%d", s.Key(), s.Seq, s.TimeNs/1000)
		if got[k] == 0 {
			missing++
		}
		delete(got, k)
	}
	if missing > 0 || len(got) > 0 || len(rows) != len(want) {
		t.Fatalf("archive holds %d rows: %d of the %d samples missing, %d rows not among them", len(rows), missing, len(want), len(got))
	}
}

// TestDurabilityOutage: samples published while the database is down wait in
// the spool and land, each exactly once, when it is back, even when answers are
// lost after the rows were stored (the Writer re-sends; DEDUP keeps one).
func TestDurabilityOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newFakeEnv(t, ingest.Options{SpoolDir: t.TempDir(), BatchRows: 500}, 0)
		samples := makeSamples(5000, testBase())
		e.db.SetDown(errDown)
		publish(e.hub, samples[:3000], 100)
		settle(10 * time.Second)
		if n, _ := e.db.Count(ingest.DefaultTable); n != 0 {
			t.Fatalf("%d rows stored while the database is down", n)
		}
		if st := e.w.SpoolStatus(); st.Rows != 3000 || e.sub.Len() != 0 {
			t.Fatalf("during the outage: spool %+v, %d in the hub queue; want 3000 spooled", st, e.sub.Len())
		}
		e.db.LoseAcks(3)
		e.db.SetDown(nil)
		publish(e.hub, samples[3000:], 100)
		settle(10 * time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples)
		if _, received := e.db.Count(ingest.DefaultTable); received <= len(samples) {
			t.Fatalf("%d rows received for %d samples: the lost answers were not re-sent", received, len(samples))
		}
		if e.w.Written() != uint64(len(samples)) || e.w.SpoolStatus().Rows != 0 {
			t.Fatalf("written %d, spool %+v after the outage", e.w.Written(), e.w.SpoolStatus())
		}
	})
}

// TestDurabilityRestart: a Writer stopped during an outage leaves its backlog
// in the spool; the next one (same directory) archives it, once.
func TestDurabilityRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		opts := ingest.Options{SpoolDir: t.TempDir(), ShutdownTimeout: time.Second}
		db, samples := spoolBacklog(t, 2000, opts)
		w2 := restart(t, db, opts)
		settle(time.Second)
		if err := w2.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, db, samples)
	})
}

// TestDurabilityTornTail: a crash in the middle of a spool write leaves an
// incomplete last frame; the next start cuts it and archives every whole
// record before it.
func TestDurabilityTornTail(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		opts := ingest.Options{SpoolDir: dir, ShutdownTimeout: time.Second}
		db, samples := spoolBacklog(t, 300, opts)
		// The crash: half a frame more at the end of the last segment.
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		last := segs[len(segs)-1]
		f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte{60, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7}); err != nil {
			t.Fatal(err)
		}
		f.Close()

		w2 := restart(t, db, opts)
		settle(time.Second)
		if err := w2.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, db, samples)
		if st := w2.SpoolStatus(); st.Damaged != 0 {
			t.Fatalf("a torn tail counted as damage: %+v", st)
		}
		if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*")); len(q) != 0 {
			t.Fatalf("a torn tail was quarantined: %v", q)
		}
	})
}

// TestDurabilityDeadLetter: rows the database refuses (400) and rows it cannot
// encode go to the dead-letter file with the reason; the rest of their batch
// lands, once.
func TestDurabilityDeadLetter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		e := newFakeEnv(t, ingest.Options{SpoolDir: dir, BatchRows: 200}, 0)
		samples := makeSamples(1000, testBase())
		poison := map[uint64]bool{17: true, 402: true, 403: true, 999: true}
		encode := map[uint64]bool{555: true}
		e.db.Refuse(func(r *ingesttest.FakeRow) bool { return poison[uint64(r.Int("seq"))] })
		e.db.RefuseEncode(func(r *ingesttest.FakeRow) bool { return encode[uint64(r.Int("seq"))] })
		publish(e.hub, samples, 100)
		settle(10 * time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		var good []telemetry.Sample
		for _, s := range samples {
			if !poison[s.Seq] && !encode[s.Seq] {
				good = append(good, s)
			}
		}
		checkArchived(t, e.db, good)
		f, err := os.Open(filepath.Join(dir, "deadletter.jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		var dead []uint64
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var dl ingest.DeadLetter
			if err := json.Unmarshal(sc.Bytes(), &dl); err != nil {
				t.Fatal(err)
			}
			if dl.Device == "" || dl.Error == "" || dl.Table != ingest.DefaultTable {
				t.Errorf("dead letter %+v: want the sample and the reason", dl)
			}
			dead = append(dead, dl.Seq)
		}
		slices.Sort(dead)
		if fmt.Sprint(dead) != "[17 402 403 555 999]" || e.w.BadRows() != 5 {
			t.Fatalf("dead letters %v, bad rows %d; want [17 402 403 555 999], 5", dead, e.w.BadRows())
		}
	})
}

// TestDurabilityFullSpool: the archive is a lossless consumer past its bounds.
// With the database down, the spool fills to its disk bound, then the hub's
// queue to its own; past both the publisher waits (back-pressure), nothing is
// dropped, and once the database is back every sample lands once and the
// publisher goes on.
func TestDurabilityFullSpool(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const queue = 1000
		e := newFakeEnv(t, ingest.Options{SpoolDir: t.TempDir(), SpoolMaxBytes: 64 << 10, BatchRows: 100}, queue)
		samples := makeSamples(5000, testBase())
		e.db.SetDown(errDown)
		published := make(chan struct{})
		go func() {
			publish(e.hub, samples, 50)
			close(published)
		}()
		settle(10 * time.Second)
		select {
		case <-published:
			t.Fatal("5000 samples published into a full spool and a queue of 1000 without waiting")
		default:
		}
		st, qs := e.w.SpoolStatus(), e.sub.Stats()
		if !st.Full || st.Bytes > 64<<10 || qs.Len > queue || qs.Dropped != 0 || qs.Waits == 0 {
			t.Fatalf("spool %+v, hub queue %+v: want the spool full within its bound, the queue at most %d, a publisher waiting, nothing dropped", st, qs, queue)
		}
		e.db.SetDown(nil)
		settle(10 * time.Second)
		<-published
		settle(10 * time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples)
	})
}

// TestDurabilityMemoryBound: without a spool the Writer holds at most
// MaxPendingRows in memory; past it, too, the hub queue and then the
// publisher wait.
func TestDurabilityMemoryBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newFakeEnv(t, ingest.Options{MaxPendingRows: 1000, BatchRows: 100}, 500)
		samples := makeSamples(3000, testBase())
		e.db.SetDown(errDown)
		published := make(chan struct{})
		go func() {
			publish(e.hub, samples, 50)
			close(published)
		}()
		settle(10 * time.Second)
		if p, qs := e.w.Pending(), e.sub.Stats(); p > 1000 || qs.Len > 500 || qs.Waits == 0 {
			t.Fatalf("%d pending in memory, hub queue %+v: want at most 1000 and 500, a publisher waiting", p, qs)
		}
		e.db.SetDown(nil)
		settle(10 * time.Second)
		<-published
		settle(time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples)
	})
}

// TestRecorderBound: the intake of events and transitions is a lossless
// queue with a bound: Record waits past it and goes on when Serve takes.
func TestRecorderBound(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		db := ingesttest.NewFakeDB()
		w, err := ingest.NewEventWriter(db, ingest.Options{IntakeCapacity: 10, Logger: quietLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		recorded := make(chan error, 1)
		go func() {
			for i := range 25 {
				if err := w.Record(t.Context(), ingest.Event{Source: "psu-01", Kind: "connected", TimeNs: int64(i + 1)}); err != nil {
					recorded <- err
					return
				}
			}
			recorded <- nil
		}()
		synctest.Wait()
		if q := w.Queued(); q != 10 {
			t.Fatalf("%d events queued before Serve, want the bound, 10", q)
		}
		select {
		case err := <-recorded:
			t.Fatalf("25 events recorded into a queue of 10 without waiting: %v", err)
		default:
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- w.Serve(ctx) }()
		if err := <-recorded; err != nil {
			t.Fatal(err)
		}
		settle(time.Second)
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if n, _ := db.Count(ingest.DefaultEventTable); n != 25 {
			t.Fatalf("%d events archived, want 25", n)
		}
	})
}

// TestSpoolDamageInTheMiddle: one flipped byte in the middle of a spooled
// segment costs that one record, not the rest: every undamaged record is
// archived, a copy of the segment is quarantined, and the damage is counted
// (SpoolStatus.Damaged, which the spool monitor turns into a system alarm).
func TestSpoolDamageInTheMiddle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		opts := ingest.Options{SpoolDir: dir, ShutdownTimeout: time.Second}
		db, samples := spoolBacklog(t, 1000, opts)
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		if len(segs) != 1 {
			t.Fatalf("segments %v, want one", segs)
		}
		data, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		mid := len(data) / 2
		data[mid] ^= 0x40
		if err := os.WriteFile(segs[0], data, 0o644); err != nil {
			t.Fatal(err)
		}

		w2 := restart(t, db, opts)
		settle(time.Second)
		rows := db.Stored(ingest.DefaultTable)
		if len(rows) != len(samples)-1 {
			t.Fatalf("%d rows archived after one flipped byte, want %d (all but the damaged one)", len(rows), len(samples)-1)
		}
		archived := map[int64]bool{}
		for _, r := range rows {
			archived[r.Int("seq")] = true
		}
		var lost []uint64
		for _, s := range samples {
			if !archived[int64(s.Seq)] {
				lost = append(lost, s.Seq)
			}
		}
		if len(lost) != 1 || lost[0] < 400 || lost[0] > 600 {
			t.Fatalf("not archived: %v, want one record from the middle", lost)
		}
		st := w2.SpoolStatus()
		if st.Damaged != 1 {
			t.Fatalf("spool status %+v: want the damage counted", st)
		}
		q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*.seg.*"))
		if len(q) != 1 {
			t.Fatalf("quarantine holds %v, want the damaged segment's copy", q)
		}
		if copyData, _ := os.ReadFile(q[0]); !slices.Equal(copyData, data) {
			t.Fatal("the quarantined copy is not the damaged segment")
		}
		if err := w2.stop(t); err != nil {
			t.Fatal(err)
		}
	})
}

// TestStraySpoolFile: a file in the spool directory that is not a segment of
// it (zz.seg) is moved aside and counted; archiving goes on.
func TestStraySpoolFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "zz.seg"), []byte("not a segment"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newFakeEnv(t, ingest.Options{SpoolDir: dir}, 0)
		samples := makeSamples(100, testBase())
		publish(e.hub, samples, 10)
		settle(time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples)
		if st := e.w.SpoolStatus(); st.Damaged != 1 || st.Stopped {
			t.Fatalf("spool status %+v: want the stray file counted, archiving on", st)
		}
		if _, err := os.Stat(filepath.Join(dir, "zz.seg")); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("zz.seg still in the spool directory: %v", err)
		}
		if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "zz.seg.*")); len(q) != 1 {
			t.Fatalf("quarantine: %v, want zz.seg moved there", q)
		}
	})
}

// TestUnusableSpoolStopsArchiving: a spool directory the Writer cannot use
// does not end Serve (which would take the server down with it): archiving
// stops, what arrives is counted as not archived, Archived says so, and when
// the directory can be used again archiving resumes.
func TestUnusableSpoolStopsArchiving(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, "spool")
		if err := os.WriteFile(dir, []byte("a file where the directory should be"), 0o644); err != nil {
			t.Fatal(err)
		}
		e := newFakeEnv(t, ingest.Options{SpoolDir: dir}, 0)
		samples := makeSamples(200, testBase())
		publish(e.hub, samples[:100], 10)
		settle(time.Second)
		st := e.w.SpoolStatus()
		if !st.Stopped || st.NotArchived != 100 || !strings.Contains(st.StopReason, dir) {
			t.Fatalf("spool status %+v: want archiving stopped, 100 not archived, the reason naming %s", st, dir)
		}
		if e.sub.Len() != 0 {
			t.Fatalf("%d samples held in the hub: a stopped archive must not hold publishers back", e.sub.Len())
		}
		if err := e.w.Archived(t.Context()); !errors.Is(err, ingest.ErrArchiveStopped) {
			t.Fatalf("Archived while stopped = %v, want ErrArchiveStopped", err)
		}
		if err := os.Remove(dir); err != nil {
			t.Fatal(err)
		}
		settle(time.Minute) // the next attempt to open the spool
		if st := e.w.SpoolStatus(); st.Stopped {
			t.Fatalf("after the directory was fixed: %+v, want archiving again", st)
		}
		publish(e.hub, samples[100:], 10)
		settle(time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples[100:])
	})
}

// TestDurabilityKill9: a Writer process killed with SIGKILL while it spools
// under load loses nothing that reached the spool: the next Writer on the
// same directory archives every record the spool held at the kill, once, and
// they are the first samples published, without a gap. The child process (this
// test binary again) archives into a database that never answers, so its whole
// backlog is in the spool when it dies.
func TestDurabilityKill9(t *testing.T) {
	if dir := os.Getenv("SWITCHYARD_KILL9_SPOOL"); dir != "" {
		kill9Child(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestDurabilityKill9$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SWITCHYARD_KILL9_SPOOL="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	// The child prints its spool depth as it goes; kill it once well under way.
	sc := bufio.NewScanner(out)
	spooled := 0
	for spooled < 20000 && sc.Scan() {
		if n, err := strconv.Atoi(strings.TrimPrefix(sc.Text(), "spooled ")); err == nil {
			spooled = n
		}
	}
	if spooled < 20000 {
		t.Fatalf("the child stopped before spooling 20000 samples (%d): %v", spooled, sc.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // the child goes on at full speed
	time.Sleep(10 * time.Millisecond)               // under load, whatever it is doing (no outcome depends on this)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	atKill, err := ingest.ReadSpool(dir, ingest.DecodeSample)
	if err != nil {
		t.Fatal(err)
	}
	if len(atKill) < spooled {
		t.Fatalf("%d samples in the spool after the kill, the child had reported %d spooled", len(atKill), spooled)
	}
	for i, s := range atKill {
		if s.Seq != uint64(i+1) {
			t.Fatalf("spool at the kill: sample %d has seq %d; want the published samples from seq 1, without a gap", i, s.Seq)
		}
	}
	db := ingesttest.NewFakeDB()
	w := restart(t, db, ingest.Options{SpoolDir: dir})
	eventually.True(t, 0, "the spool archived", func() bool { return w.Written() == uint64(len(atKill)) })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	checkArchived(t, db, atKill)
	if _, received := db.Count(ingest.DefaultTable); received != len(atKill) {
		t.Fatalf("%d rows sent for %d spooled samples", received, len(atKill))
	}
	t.Logf("killed with %d samples spooled; all archived once after the restart", len(atKill))
}

// kill9Child publishes samples of one channel, numbered from 1, into a Writer
// whose database is down, and prints the spool depth, until it is killed.
func kill9Child(dir string) {
	db := ingesttest.NewFakeDB()
	db.SetDown(errDown)
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	w, err := ingest.NewSampleWriter(db, sub, ingest.Options{SpoolDir: dir, BatchRows: 500,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	go func() { _ = w.Serve(context.Background()) }()
	base := time.Now().UnixNano()
	batch := make([]telemetry.Sample, 100)
	for seq := uint64(1); ; {
		for i := range batch {
			batch[i] = telemetry.Sample{Device: "psu", Channel: "v", TimeNs: base + int64(seq)*1000, Seq: seq, Value: telemetry.Float(float64(seq))}
			seq++
		}
		hub.Publish(batch...)
		fmt.Printf("spooled %d\n", w.SpoolStatus().Rows)
		time.Sleep(time.Millisecond)
	}
}

// TestGroupCommit: records published one at a time, a millisecond apart, are
// spooled in one write (one fsync) per DrainInterval, not one per publish,
// and every one lands once.
func TestGroupCommit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		e := newFakeEnv(t, ingest.Options{SpoolDir: t.TempDir(), Registerer: reg}, 0)
		samples := makeSamples(1000, testBase())
		for i := range samples {
			e.hub.Publish(samples[i])
			time.Sleep(time.Millisecond)
		}
		settle(5 * time.Second)
		if err := e.w.stop(t); err != nil {
			t.Fatal(err)
		}
		checkArchived(t, e.db, samples)
		writes := metrictest.Sum(t, reg, "switchyard_ingest_spool_writes_total")
		// A second of publishes, a take every 20 ms: about 50 writes.
		if writes < 40 || writes > 60 {
			t.Errorf("%v spool writes for 1000 publishes a millisecond apart, want about 50 (one per 20 ms DrainInterval)", writes)
		}
	})
}
