package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard/switchyard/backoff"
)

// spoolWarnFraction is the fill level of the spool at which the Writer warns
// (log and the switchyard_ingest_spool_level gauge) before it is full.
const spoolWarnFraction = 0.8

// Spool fill levels, the value of the switchyard_ingest_spool_level gauge.
const (
	spoolLevelOK   = 0
	spoolLevelHigh = 1 // at or above spoolWarnFraction of SpoolMaxBytes
	spoolLevelFull = 2 // a batch did not fit: the source is not drained
)

// SpoolStatus is a snapshot of the Writer's durable spool.
type SpoolStatus struct {
	// Enabled is false when the Writer has no spool (Options.SpoolDir empty).
	Enabled bool
	// Bytes is the disk space the spool's segments take; MaxBytes its bound.
	Bytes, MaxBytes int64
	// Rows is the number of spooled records QuestDB has not acknowledged yet.
	Rows int
	// High is true at or above 80% of MaxBytes; Full when the last batch did not
	// fit and the source is left undrained (its records wait in its queue).
	High, Full bool
	// Damaged counts the damage found in the spool since the Writer started:
	// damaged ranges skipped inside segments and stray files moved aside, each
	// logged at error with a copy under SpoolDir/quarantine.
	Damaged int
	// Stopped is set while archiving is stopped because the spool cannot be
	// used (StopReason says why): records taken from the source meanwhile are
	// not archived (NotArchived counts them), and the Writer tries the spool
	// again with a backoff.
	Stopped     bool
	StopReason  string
	NotArchived uint64
}

// SpoolStatus returns the state of the spool. It is safe to call from any
// goroutine at any time.
func (w *Writer[T]) SpoolStatus() SpoolStatus {
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	return w.status
}

func (w *Writer[T]) updateStatus(f func(*SpoolStatus)) {
	w.statusMu.Lock()
	f(&w.status)
	w.statusMu.Unlock()
}

// openSpool opens the spool and the dead-letter file, if configured.
func (w *Writer[T]) openSpool() error {
	if w.opts.SpoolDir != "" {
		sp, rec, err := openSpool(w.opts.SpoolDir, !w.opts.SpoolNoFsync, w.opts.SpoolSegmentBytes, w.opts.SpoolMaxBytes, w.log)
		if err != nil {
			return err
		}
		w.sp = sp
		// The window is re-read from the spool's acknowledged position.
		w.pending, w.pendEnd, w.pendCnt = nil, nil, nil
		w.m.spoolTorn.Add(float64(rec.TornBytes))
		w.noteDamage()
		// Replayed records count as taken: the settled count follows the spool.
		w.taken, w.settled = uint64(rec.Records), 0
		for i := range w.waiting {
			w.waiting[i].target = w.taken
		}
		if rec.Records > 0 {
			w.log.Info("ingest: replaying records left in the spool", "rows", rec.Records, "dir", w.opts.SpoolDir)
		}
	}
	if w.opts.DeadLetterPath != "" {
		if err := os.MkdirAll(filepath.Dir(w.opts.DeadLetterPath), 0o755); err != nil {
			w.closeSpool()
			return fmt.Errorf("ingest: dead-letter directory: %w", err)
		}
		d, err := openDeadLetter(w.opts.DeadLetterPath, !w.opts.SpoolNoFsync)
		if err != nil {
			w.closeSpool()
			return err
		}
		w.dead = d
	}
	if w.sp != nil {
		w.refill()
		w.setPending()
	}
	return nil
}

// noteDamage brings the damage counters up to what the spool found.
func (w *Writer[T]) noteDamage() {
	d := w.sp.damage
	if n := d.Regions - w.damage.Regions; n > 0 {
		w.m.spoolDamaged.Add(float64(n))
		w.m.spoolCorrupt.Add(float64(d.Bytes - w.damage.Bytes))
	}
	if n := d.StrayFiles - w.damage.StrayFiles; n > 0 {
		w.m.spoolDamaged.Add(float64(n))
	}
	w.damage = d
}

func (w *Writer[T]) closeSpool() {
	if w.sp != nil {
		if err := w.sp.close(); err != nil {
			w.log.Error("ingest: closing spool", "err", err)
		}
		// A later open counts its damage afresh.
		w.damage.Regions, w.damage.Bytes, w.damage.StrayFiles = 0, 0, 0
		w.sp = nil
	}
	if w.dead != nil {
		if err := w.dead.close(); err != nil {
			w.log.Error("ingest: closing dead-letter file", "err", err)
		}
		w.dead = nil
	}
}

// stopArchiving is the Writer's answer to a spool it cannot use (cause, or
// the error that stopped it already when cause is nil): rather than fail, and
// take the server down with it, it stops archiving. It drains the source and
// counts what it could not archive, keeps Archived's waiters from waiting
// forever, and tries the spool again with a backoff (1s to 30s). It returns true
// once the spool opened again, false when ctx ended.
func (w *Writer[T]) stopArchiving(ctx context.Context, cause error) bool {
	if cause != nil {
		w.log.Error("ingest: the spool cannot be used; archiving is STOPPED until it can (records are not archived meanwhile)",
			"dir", w.opts.SpoolDir, "err", cause)
		w.stopped.Store(true)
		w.updateStatus(func(st *SpoolStatus) { st.Enabled, st.Stopped, st.StopReason = true, true, cause.Error() })
	}
	w.closeSpool()
	w.pending, w.pendEnd, w.pendCnt, w.unspooled = nil, nil, nil, nil
	bo := backoff.New(backoff.Policy{Min: time.Second, Max: 30 * time.Second})
	retry := time.NewTimer(bo.Next())
	defer retry.Stop()
	var buf []T
	for {
		// Nothing taken now will be settled: release the waiters (Archived
		// reports ErrArchiveStopped) and count what is thrown away.
		buf = w.src.Drain(buf[:0], 0)
		if n := len(buf); n > 0 {
			clear(buf)
			w.m.notArchived.Add(float64(n))
			w.updateStatus(func(st *SpoolStatus) { st.NotArchived += uint64(n) })
		}
		for _, b := range w.waiting {
			close(b.done)
		}
		w.waiting = w.waiting[:0]
		select {
		case <-ctx.Done():
			return false
		case <-w.src.Ready():
		case b := <-w.barriers:
			close(b)
		case <-retry.C:
			err := w.openSpool()
			if err == nil {
				w.stopped.Store(false)
				w.updateStatus(func(st *SpoolStatus) { st.Stopped, st.StopReason = false, "" })
				w.log.Info("ingest: the spool can be used again; archiving resumes", "dir", w.opts.SpoolDir)
				return true
			}
			w.updateStatus(func(st *SpoolStatus) { st.StopReason = err.Error() })
			retry.Reset(bo.Next())
		}
	}
}

// drainToSpool moves the source's records into the spool, batch by batch, and
// refills the in-memory window of pending rows: straight from the batch just
// spooled when the window has read everything before it (the usual case, so
// a record is not read back and decoded), else from the spool. When the spool
// is full the batch in hand stays in memory and the source is left alone until
// the spool is back under spoolWarnFraction of its bound.
func (w *Writer[T]) drainToSpool() {
	more := true // the source may hold more: the last take was a full batch
	for {
		if len(w.unspooled) > 0 {
			if w.fullLevel == spoolLevelFull {
				break
			}
			start := w.sp.end()
			if !w.spoolRecords(w.unspooled) {
				break
			}
			w.takeSpooled(start)
			clear(w.unspooled)
			w.unspooled = w.unspooled[:0]
		}
		if !more || w.final || w.stopped.Load() {
			break
		}
		// What the source holds now goes in one write (a group commit);
		// what arrives meanwhile waits for the next take.
		w.unspooled = w.src.Drain(w.unspooled, w.opts.BatchRows)
		if len(w.unspooled) == 0 {
			break
		}
		more = len(w.unspooled) == w.opts.BatchRows
		w.unspooled = w.filter(w.unspooled)
		w.taken += uint64(len(w.unspooled))
	}
	if w.stopped.Load() {
		return
	}
	w.refill()
	w.setPending()
}

// takeSpooled puts the records of w.unspooled that spoolRecords just wrote
// from start on (w.spoolEnds: where each one's frame ends) into the pending
// window, if the window has read the spool up to start and has room, and moves
// the spool's reader past them; what does not fit is read back later.
func (w *Writer[T]) takeSpooled(start uint64) {
	if !w.sp.readerAt(start) {
		return
	}
	room := 2*w.opts.BatchRows - len(w.pending)
	if room <= 0 || len(w.spoolKept) == 0 {
		return
	}
	n := min(room, len(w.spoolKept))
	before := len(w.pending)
	for i, k := range w.spoolKept[:n] {
		w.pending = append(w.pending, w.unspooled[k])
		w.pendEnd = append(w.pendEnd, start+w.spoolEnds[i])
		w.pendCnt = append(w.pendCnt, 1)
	}
	w.sp.skipTo(w.pendEnd[len(w.pendEnd)-1])
	if before == 0 {
		w.pendingAt = time.Now()
	}
}

// spoolRecords appends batch to the spool and reports whether it is spooled. A
// write error other than a full spool stops archiving (see stopArchiving). It
// leaves in w.spoolKept the indexes in batch of the records it spooled (one
// too large to spool is set aside) and in w.spoolEnds the offset after each
// one's frame from the start of the write.
func (w *Writer[T]) spoolRecords(batch []T) bool {
	buf := w.spoolBuf[:0]
	w.spoolKept, w.spoolEnds = w.spoolKept[:0], w.spoolEnds[:0]
	// batch holds the records taken last: barriers with a target above first
	// were registered after it was taken and include all of it.
	first := w.taken - uint64(len(batch))
	for i := range batch {
		rec := w.table.Append(w.recBuf[:0], &batch[i])
		w.recBuf = rec
		if len(rec) > maxRecordBytes {
			// Too big for a spool frame (and for any sane ILP row): set aside.
			w.rejectOversize(&batch[i], len(rec), first)
			continue
		}
		buf = appendFrame(buf, rec)
		w.spoolKept = append(w.spoolKept, i)
		w.spoolEnds = append(w.spoolEnds, uint64(len(buf)))
	}
	w.spoolBuf = buf
	if len(buf) == 0 {
		return true // all set aside
	}
	err := w.sp.append(buf, len(w.spoolKept))
	if err == nil {
		w.m.spoolWrites.Inc()
		w.m.spooled.Add(float64(len(batch)))
		w.setLevel(false)
		return true
	}
	if !errors.Is(err, ErrSpoolFull) {
		w.m.spoolErrors.Inc()
		// The disk refuses the spool: archiving stops rather than hold the
		// source (and, through it, the devices) back. The batch in hand is
		// not archived; what is spooled already stays for later.
		w.m.notArchived.Add(float64(len(batch)))
		w.updateStatus(func(st *SpoolStatus) { st.NotArchived += uint64(len(batch)) })
		w.stopped.Store(true)
		w.log.Error("ingest: cannot write the spool; archiving is STOPPED until it can (records are not archived meanwhile)",
			"dir", w.opts.SpoolDir, "err", err, "not_archived", len(batch))
		w.updateStatus(func(st *SpoolStatus) { st.Stopped, st.StopReason = true, err.Error() })
		return false
	}
	if w.fullLevel != spoolLevelFull {
		w.log.Error("ingest: spool FULL; records now wait in the source's queue until QuestDB takes the backlog",
			"spool_bytes", w.sp.bytes(), "max_bytes", w.opts.SpoolMaxBytes, "dir", w.opts.SpoolDir)
	}
	w.setLevel(true)
	return false
}

// setLevel recomputes the fill level, logging changes.
func (w *Writer[T]) setLevel(full bool) {
	lvl := spoolLevelOK
	switch {
	case full:
		lvl = spoolLevelFull
	case w.spoolHigh() && w.fullLevel == spoolLevelFull:
		lvl = spoolLevelFull // hysteresis: full until back under the warning level
	case w.spoolHigh():
		lvl = spoolLevelHigh
	}
	if lvl == w.fullLevel {
		return
	}
	switch {
	case lvl == spoolLevelHigh && w.fullLevel == spoolLevelOK:
		w.log.Warn("ingest: spool above 80% of its bound; QuestDB is not keeping up",
			"spool_bytes", w.sp.bytes(), "max_bytes", w.opts.SpoolMaxBytes)
	case lvl == spoolLevelOK || w.fullLevel == spoolLevelFull:
		w.log.Info("ingest: spool has room again", "spool_bytes", w.sp.bytes(), "max_bytes", w.opts.SpoolMaxBytes)
	}
	w.fullLevel = lvl
	w.m.spoolLevel.Set(float64(lvl))
}

func (w *Writer[T]) spoolHigh() bool {
	return float64(w.sp.bytes()) >= spoolWarnFraction*float64(w.opts.SpoolMaxBytes)
}

// refill reads spooled rows into the pending window (up to two batches).
func (w *Writer[T]) refill() {
	want := 2*w.opts.BatchRows - len(w.pending)
	if want <= 0 {
		return
	}
	before := len(w.pending)
	skipped := 0
	err := w.sp.read(want, func(payload []byte, end uint64) {
		v, err := w.table.Decode(payload)
		if err != nil {
			// It passed its checksum, so it was written like this (by another
			// version?): it can never be archived. Keep it, then move on.
			w.m.badRows.Inc()
			w.badRows.Add(1)
			w.log.Error("ingest: spooled record cannot be decoded; moved to the dead-letter file", "err", err)
			w.deadLetter(&DeadLetter{Table: w.table.Name, Raw: fmt.Sprintf("%x", payload)}, err)
			skipped++
			if len(w.pending) == 0 {
				if aerr := w.sp.ack(end, skipped); aerr != nil {
					w.log.Error("ingest: acknowledging spool position", "err", aerr)
				}
				w.settle(skipped)
				skipped = 0
			}
			return
		}
		w.pending = append(w.pending, v)
		w.pendEnd = append(w.pendEnd, end)
		w.pendCnt = append(w.pendCnt, 1+skipped)
		skipped = 0
	})
	if err != nil {
		w.log.Error("ingest: reading the spool", "err", err)
	}
	w.noteDamage()
	if before == 0 && len(w.pending) > 0 {
		w.pendingAt = time.Now()
	}
}

// ackSpool records that the first n pending rows are settled.
func (w *Writer[T]) ackSpool(n int) {
	cnt := 0
	for _, c := range w.pendCnt[:n] {
		cnt += c
	}
	if err := w.sp.ack(w.pendEnd[n-1], cnt); err != nil {
		// The rows are in QuestDB; at worst they are re-sent after a restart,
		// which DEDUP makes harmless.
		w.log.Error("ingest: acknowledging spool position", "err", err)
	}
	w.settle(cnt)
	w.pendEnd = w.pendEnd[n:]
	w.pendCnt = w.pendCnt[n:]
	if len(w.pendEnd) == 0 {
		w.pendEnd, w.pendCnt = nil, nil
	}
	if w.fullLevel != spoolLevelOK {
		w.setLevel(false)
	}
}

// setSpoolMetrics publishes the spool's gauges and status.
func (w *Writer[T]) setSpoolMetrics() {
	bytes, rows := w.sp.bytes(), w.sp.unacked
	w.m.spoolBytes.Set(float64(bytes))
	w.m.spoolRows.Set(float64(rows))
	damaged := w.damage.events()
	w.updateStatus(func(st *SpoolStatus) {
		st.Enabled = true
		st.Bytes, st.MaxBytes, st.Rows = bytes, w.opts.SpoolMaxBytes, rows
		st.High, st.Full = w.fullLevel >= spoolLevelHigh, w.fullLevel == spoolLevelFull
		st.Damaged = max(st.Damaged, damaged)
	})
}

// ReadSpool returns the records in the spool at dir that QuestDB has not
// acknowledged, in order, as the next Writer on that spool would send them,
// decoded with decode (DecodeSample for a sample spool). It takes the spool's
// lock, so it fails while a Writer uses the spool; it truncates a torn tail
// (and quarantines damage) like a Writer's start would. For operators and tests.
func ReadSpool[T any](dir string, decode func([]byte) (T, error)) ([]T, error) {
	sp, _, err := openSpool(dir, false, 64<<20, 1<<62, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer sp.close()
	var out []T
	var derr error
	err = sp.read(1<<62, func(p []byte, _ uint64) {
		v, err := decode(p)
		if err != nil {
			derr = errors.Join(derr, err)
			return
		}
		out = append(out, v)
	})
	return out, errors.Join(err, derr)
}

// rejectOversize sets aside a record too large to spool.
func (w *Writer[T]) rejectOversize(v *T, size int, first uint64) {
	err := fmt.Errorf("record encodes to %d bytes, more than the spool's limit of %d", size, maxRecordBytes)
	w.m.badRows.Inc()
	w.badRows.Add(1)
	// It will never be settled: take it out of the count, and out of the
	// barriers that wait for it.
	for i := range w.waiting {
		if w.waiting[i].target > first {
			w.waiting[i].target--
		}
	}
	w.taken--
	w.settle(0)
	dl := w.describe(v)
	dl.Raw = "" // the point is that it is too large
	w.log.Error("ingest: record too large to archive; moved to the dead-letter file", "row", dl.summary(), "bytes", size)
	w.deadLetter(&dl, err)
}
