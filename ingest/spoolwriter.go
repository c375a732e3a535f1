package ingest

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/switchyard/switchyard/telemetry"
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
	// Rows is the number of spooled samples QuestDB has not acknowledged yet.
	Rows int
	// High is true at or above 80% of MaxBytes; Full when the last batch did not
	// fit and the source is left undrained (its samples wait in the hub, in memory).
	High, Full bool
}

// SpoolStatus returns the state of the spool. It is safe to call from any
// goroutine at any time.
func (w *Writer) SpoolStatus() SpoolStatus {
	w.statusMu.Lock()
	defer w.statusMu.Unlock()
	return w.status
}

// openSpool opens the spool and the dead-letter file, if configured.
func (w *Writer) openSpool() error {
	if w.opts.SpoolDir != "" {
		sp, rec, err := openSpool(w.opts.SpoolDir, !w.opts.SpoolNoFsync, w.opts.SpoolSegmentBytes, w.opts.SpoolMaxBytes, w.log)
		if err != nil {
			return err
		}
		w.sp = sp
		// The window is re-read from the spool's acknowledged position.
		w.pending, w.pendEnd, w.pendCnt = nil, nil, nil
		w.m.spoolTorn.Add(float64(rec.TornBytes))
		w.m.spoolCorrupt.Add(float64(rec.CorruptBytes))
		// Replayed records count as taken: the settled count follows the spool.
		w.taken, w.settled = uint64(rec.Records), 0
		for i := range w.waiting {
			w.waiting[i].target = w.taken
		}
		if rec.Records > 0 {
			w.log.Info("ingest: replaying samples left in the spool", "rows", rec.Records, "dir", w.opts.SpoolDir)
		}
	}
	if w.opts.DeadLetterPath != "" {
		if err := os.MkdirAll(filepath.Dir(w.opts.DeadLetterPath), 0o755); err != nil {
			return fmt.Errorf("ingest: dead-letter directory: %w", err)
		}
		d, err := openDeadLetter(w.opts.DeadLetterPath, !w.opts.SpoolNoFsync)
		if err != nil {
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

func (w *Writer) closeSpool() {
	if w.sp != nil {
		if err := w.sp.close(); err != nil {
			w.log.Error("ingest: closing spool", "err", err)
		}
		w.sp = nil
	}
	if w.dead != nil {
		if err := w.dead.close(); err != nil {
			w.log.Error("ingest: closing dead-letter file", "err", err)
		}
		w.dead = nil
	}
}

// drainToSpool moves the source's samples into the spool, batch by batch, and
// refills the in-memory window of pending rows from it. When the spool is full
// the batch in hand stays in memory and the source is left alone until the spool
// is back under spoolWarnFraction of its bound.
func (w *Writer) drainToSpool() {
	for {
		if len(w.unspooled) > 0 {
			if w.fullLevel == spoolLevelFull || !w.spoolSamples(w.unspooled) {
				break
			}
			clear(w.unspooled)
			w.unspooled = w.unspooled[:0]
		}
		if w.final {
			break
		}
		w.unspooled = w.src.Drain(w.unspooled, w.opts.BatchRows)
		if len(w.unspooled) == 0 {
			break
		}
		var dropped int
		w.unspooled, dropped = w.filter().filter(w.unspooled)
		w.m.filtered.Add(float64(dropped))
		w.taken += uint64(len(w.unspooled))
	}
	w.refill()
	w.setPending()
}

// spoolSamples appends batch to the spool and reports whether it is spooled.
func (w *Writer) spoolSamples(batch []telemetry.Sample) bool {
	buf := w.spoolBuf[:0]
	var rec []byte
	// batch holds the samples taken last: barriers with a target above first
	// were registered after it was taken and include all of it.
	first := w.taken - uint64(len(batch))
	for i := range batch {
		rec = appendRecord(rec[:0], &batch[i])
		if len(rec) > maxRecordBytes {
			// Too big for a spool frame (and for any sane ILP row): set aside.
			w.rejectOversize(&batch[i], len(rec), first)
			continue
		}
		buf = appendFrame(buf, rec)
	}
	w.spoolBuf = buf
	if len(buf) == 0 {
		return true // all set aside
	}
	err := w.sp.append(buf, countFrames(buf))
	if err == nil {
		w.m.spooled.Add(float64(len(batch)))
		w.setLevel(false)
		return true
	}
	if w.fullLevel != spoolLevelFull {
		if errors.Is(err, ErrSpoolFull) {
			w.log.Error("ingest: spool FULL; samples now wait in memory (hub queue) until QuestDB takes the backlog",
				"spool_bytes", w.sp.bytes(), "max_bytes", w.opts.SpoolMaxBytes, "dir", w.opts.SpoolDir)
		} else {
			w.log.Error("ingest: cannot write the spool; samples wait in memory (hub queue)", "err", err)
		}
	}
	if !errors.Is(err, ErrSpoolFull) {
		w.m.spoolErrors.Inc()
	}
	w.setLevel(true)
	return false
}

// setLevel recomputes the fill level, logging changes.
func (w *Writer) setLevel(full bool) {
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

func (w *Writer) spoolHigh() bool {
	return float64(w.sp.bytes()) >= spoolWarnFraction*float64(w.opts.SpoolMaxBytes)
}

// refill reads spooled rows into the pending window (up to two batches).
func (w *Writer) refill() {
	want := 2*w.opts.BatchRows - len(w.pending)
	if want <= 0 {
		return
	}
	before := len(w.pending)
	skipped := 0
	err := w.sp.read(want, func(payload []byte, end uint64) {
		smp, err := decodeRecord(payload)
		if err != nil {
			// It passed its checksum, so it was written like this (by another
			// version?): it can never be archived. Keep it, then move on.
			w.m.badRows.Inc()
			w.badRows.Add(1)
			w.log.Error("ingest: spooled record cannot be decoded; moved to the dead-letter file", "err", err)
			w.deadLetterRaw(payload, err)
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
		w.pending = append(w.pending, smp)
		w.pendEnd = append(w.pendEnd, end)
		w.pendCnt = append(w.pendCnt, 1+skipped)
		skipped = 0
	})
	if err != nil {
		w.log.Error("ingest: reading the spool", "err", err)
	}
	if before == 0 && len(w.pending) > 0 {
		w.pendingAt = time.Now()
	}
}

// ackSpool records that the first n pending rows are settled.
func (w *Writer) ackSpool(n int) {
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
func (w *Writer) setSpoolMetrics() {
	st := SpoolStatus{
		Enabled:  true,
		Bytes:    w.sp.bytes(),
		MaxBytes: w.opts.SpoolMaxBytes,
		Rows:     w.sp.unacked,
		High:     w.fullLevel >= spoolLevelHigh,
		Full:     w.fullLevel == spoolLevelFull,
	}
	w.m.spoolBytes.Set(float64(st.Bytes))
	w.m.spoolRows.Set(float64(st.Rows))
	w.statusMu.Lock()
	w.status = st
	w.statusMu.Unlock()
}

// deadLetterRaw keeps a spooled record that cannot be decoded.
func (w *Writer) deadLetterRaw(payload []byte, cause error) {
	if w.dead == nil {
		return
	}
	if err := w.dead.writeRaw(w.opts.Table, payload, cause); err != nil {
		w.log.Error("ingest: writing the dead-letter file", "err", err, "record", fmt.Sprintf("%x", payload))
	}
}

// ReadSpool returns the samples in the spool at dir that QuestDB has not
// acknowledged, in order, as the next Writer on that spool would send them. It
// takes the spool's lock, so it fails while a Writer uses the spool; it truncates a
// torn tail like a Writer's start would. For operators and tests.
func ReadSpool(dir string) ([]telemetry.Sample, error) {
	sp, _, err := openSpool(dir, false, 64<<20, 1<<62, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	defer sp.close()
	var out []telemetry.Sample
	var derr error
	err = sp.read(1<<62, func(p []byte, _ uint64) {
		smp, err := decodeRecord(p)
		if err != nil {
			derr = errors.Join(derr, err)
			return
		}
		out = append(out, smp)
	})
	return out, errors.Join(err, derr)
}

// rejectOversize sets aside a sample too large to spool.
func (w *Writer) rejectOversize(smp *telemetry.Sample, size int, first uint64) {
	err := fmt.Errorf("sample encodes to %d bytes, more than the spool's limit of %d", size, maxRecordBytes)
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
	w.log.Error("ingest: sample too large to archive; moved to the dead-letter file",
		"device", smp.Device, "channel", smp.Channel, "seq", smp.Seq, "bytes", size)
	if w.dead != nil {
		if derr := w.dead.writeSample(w.opts.Table, smp, err); derr != nil {
			w.log.Error("ingest: writing the dead-letter file", "err", derr)
		} else {
			w.m.deadLetters.Inc()
		}
	}
}

// countFrames counts the frames in a buffer built by appendFrame.
func countFrames(buf []byte) int {
	n := 0
	for len(buf) > 0 {
		l, ok := frameAt(buf)
		if !ok {
			break
		}
		buf = buf[l:]
		n++
	}
	return n
}
