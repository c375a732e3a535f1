package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Spool file layout. A segment is named by the spool position of its first byte
// (16 hex digits) and holds frames: a 4-byte little-endian payload length, the
// CRC-32C of the payload, then the payload (one encoded record).
const (
	segSuffix     = ".seg"
	ackFile       = "ack"
	frameHeader   = 8
	quarantineDir = "quarantine"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// ErrSpoolFull is returned by the spool's append when the batch would take it
// past its disk bound. The Writer then stops taking records from its source
// (they wait in the source's queue) until QuestDB acknowledges enough to make
// room.
var ErrSpoolFull = errors.New("spool full")

// span is a byte range [from, to) of a segment.
type span struct{ from, to int64 }

type segment struct {
	base  uint64 // spool position of the segment's first byte
	size  int64  // bytes up to the end of the last whole frame
	holes []span // damaged ranges inside [0, size), skipped by the reader
}

func (s segment) end() uint64 { return s.base + uint64(s.size) }

// spoolDamage counts the damage a spool found, since it was opened.
type spoolDamage struct {
	Regions     int      // damaged ranges skipped inside segments
	Bytes       int64    // their bytes (the records in them are not archived)
	StrayFiles  int      // *.seg files with names that are not spool positions
	Quarantined []string // copies of damaged segments and stray files, under quarantine/
}

func (d spoolDamage) events() int { return d.Regions + d.StrayFiles }

// spool is an append-only, checksummed, segmented log of records on local disk
// with a persisted acknowledged position. It is owned by one goroutine (the
// Writer's Serve) and is not safe for concurrent use.
//
// It is read like a trusted log: only an incomplete frame at the end of the
// last segment (a write cut short by a crash) is a torn tail, truncated. Damage
// anywhere else is skipped frame by frame (reading resumes at the next valid
// frame), a copy of the segment is kept under quarantine/, and it is logged at
// error and counted (damage), so every undamaged record is still archived.
type spool struct {
	dir      string
	fsync    bool
	segBytes int64
	maxBytes int64
	log      *slog.Logger

	segs    []segment // live segments, ascending; the last one takes appends
	w       *os.File  // the last segment, open for appending
	acked   uint64    // every record ending at or before this is in QuestDB
	unacked int       // records after acked
	damage  spoolDamage

	// Reader: the next record to hand to the Writer.
	rpos uint64
	rseg int // index in segs of the segment rf reads
	rf   *os.File
	rbuf []byte

	lock *os.File // holds an exclusive flock on dir/lock while open
}

// spoolRecovery says what opening a spool found.
type spoolRecovery struct {
	Records   int   // unacknowledged records to replay
	TornBytes int64 // bytes cut from the tail of the last segment (a torn write)
}

// openSpool opens (creating if needed) the spool in dir, truncates a torn tail,
// skips and quarantines damage, drops fully acknowledged segments and positions
// the reader at the first unacknowledged record.
func openSpool(dir string, fsync bool, segBytes, maxBytes int64, log *slog.Logger) (*spool, spoolRecovery, error) {
	var rec spoolRecovery
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, rec, fmt.Errorf("ingest: spool directory %s: %w", dir, err)
	}
	s := &spool{dir: dir, fsync: fsync, segBytes: segBytes, maxBytes: maxBytes, log: log}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, rec, err
	}
	s.lock = lock
	ok := false
	defer func() {
		if !ok {
			_ = s.close()
		}
	}()
	acked, err := readAck(filepath.Join(dir, ackFile))
	if err != nil {
		// Replaying from the start is harmless (DEDUP keys), losing data is not.
		log.Error("ingest: spool acknowledged position unreadable; replaying the whole spool", "err", err)
		acked = 0
	}
	s.acked = acked
	names, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		return nil, rec, err
	}
	for _, name := range names {
		hex := strings.TrimSuffix(filepath.Base(name), segSuffix)
		base, err := strconv.ParseUint(hex, 16, 64)
		if err != nil || len(hex) != 16 {
			s.setAside(name)
			continue
		}
		s.segs = append(s.segs, segment{base: base})
	}
	slices.SortFunc(s.segs, func(a, b segment) int {
		switch {
		case a.base < b.base:
			return -1
		case a.base > b.base:
			return 1
		}
		return 0
	})
	for i := range s.segs {
		records, torn, err := s.scan(&s.segs[i], acked, i == len(s.segs)-1)
		if err != nil {
			return nil, rec, err
		}
		rec.Records += records
		rec.TornBytes += torn
	}
	s.unacked = rec.Records
	if err := s.dropAcked(); err != nil {
		return nil, rec, err
	}
	if err := s.openForAppend(); err != nil {
		return nil, rec, err
	}
	s.rpos = s.acked
	s.rseg = -1
	ok = true
	return s, rec, nil
}

func (s *spool) segName(base uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%016x%s", base, segSuffix))
}

// scan reads a segment's frames: it sets the segment's size and holes, counts
// the valid records that end after acked, and truncates a torn tail of the
// last segment (returning its bytes).
func (s *spool) scan(seg *segment, acked uint64, last bool) (records int, torn int64, err error) {
	name := s.segName(seg.base)
	data, err := os.ReadFile(name)
	if err != nil {
		return 0, 0, fmt.Errorf("ingest: reading spool segment %s: %w", name, err)
	}
	off := int64(0)
	for off < int64(len(data)) {
		if n, ok := frameAt(data[off:]); ok {
			off += n
			if seg.base+uint64(off) > acked {
				records++
			}
			continue
		}
		next := resync(data, off+1)
		if next < 0 {
			break // nothing valid after off
		}
		seg.holes = append(seg.holes, span{off, next})
		s.damaged(seg, off, next, "a damaged frame in the middle of a segment")
		off = next
	}
	seg.size = off
	if bad := int64(len(data)) - off; bad > 0 {
		if last {
			// Only the end of the last segment can be a write cut short by a
			// crash: nothing valid follows it.
			log := s.log.Warn
			if bad > maxRecordBytes+frameHeader {
				log = s.log.Error // more than one frame: not a plausible torn write
			}
			log("ingest: spool tail torn (a write cut short by a crash); truncating",
				"file", name, "valid_bytes", off, "dropped_bytes", bad)
			if err := os.Truncate(name, off); err != nil {
				return 0, 0, fmt.Errorf("ingest: truncating torn spool tail %s: %w", name, err)
			}
			return records, bad, nil
		}
		s.damaged(seg, off, int64(len(data)), "damage at the end of a segment that is not the last")
	}
	return records, 0, nil
}

// damaged records, logs and quarantines the damaged range [from, to) of seg.
func (s *spool) damaged(seg *segment, from, to int64, what string) {
	name := s.segName(seg.base)
	s.damage.Regions++
	s.damage.Bytes += to - from
	copyName := s.quarantine(name)
	s.log.Error("ingest: spool damaged; the damaged bytes are skipped, the records after them archived, a copy of the segment kept",
		"what", what, "file", name, "from_offset", from, "to_offset", to, "skipped_bytes", to-from, "copy", copyName)
}

// quarantine copies a segment under quarantine/ and returns the copy's name
// (empty if the copy failed, which is logged).
func (s *spool) quarantine(name string) string {
	dst, err := s.quarantineName(filepath.Base(name))
	if err == nil {
		err = copyFile(name, dst)
	}
	if err != nil {
		s.log.Error("ingest: keeping a copy of a damaged spool segment", "file", name, "err", err)
		return ""
	}
	s.damage.Quarantined = append(s.damage.Quarantined, dst)
	return dst
}

// setAside moves a stray *.seg file (its name is not a spool position) under
// quarantine/: it is not the spool's, and must not stop it.
func (s *spool) setAside(name string) {
	s.damage.StrayFiles++
	dst, err := s.quarantineName(filepath.Base(name))
	if err == nil {
		err = os.Rename(name, dst)
	}
	if err != nil {
		s.log.Error("ingest: a file in the spool directory is not a spool segment, and it could not be moved aside; it is ignored",
			"file", name, "err", err)
		return
	}
	s.damage.Quarantined = append(s.damage.Quarantined, dst)
	s.log.Error("ingest: a file in the spool directory is not a spool segment; moved aside", "file", name, "to", dst)
}

func (s *spool) quarantineName(base string) (string, error) {
	qdir := filepath.Join(s.dir, quarantineDir)
	if err := os.MkdirAll(qdir, 0o755); err != nil {
		return "", err
	}
	return filepath.Join(qdir, fmt.Sprintf("%s.%d", base, time.Now().UnixNano())), nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// resync returns the offset of the first whole, checksummed frame at or after
// from, or -1 if there is none.
func resync(data []byte, from int64) int64 {
	for p := from; p+frameHeader <= int64(len(data)); p++ {
		if _, ok := frameAt(data[p:]); ok {
			return p
		}
	}
	return -1
}

// frameAt returns the length of the whole, checksummed frame at the start of b.
func frameAt(b []byte) (int64, bool) {
	if len(b) < frameHeader {
		return 0, false
	}
	n := binary.LittleEndian.Uint32(b)
	if n == 0 || n > maxRecordBytes || int64(len(b)-frameHeader) < int64(n) {
		return 0, false
	}
	payload := b[frameHeader : frameHeader+n]
	if crc32.Checksum(payload, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return 0, false
	}
	return frameHeader + int64(n), true
}

// appendFrame appends a frame holding payload to dst.
func appendFrame(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, crcTable))
	return append(dst, payload...)
}

// end is the position after the last record.
func (s *spool) end() uint64 {
	if len(s.segs) == 0 {
		return s.acked
	}
	return max(s.segs[len(s.segs)-1].end(), s.acked)
}

// bytes is the disk space the live segments take.
func (s *spool) bytes() int64 {
	var n int64
	for _, seg := range s.segs {
		n += seg.size
	}
	return n
}

// openForAppend opens the last segment, or starts one when there is none or it is
// full.
func (s *spool) openForAppend() error {
	if n := len(s.segs); n > 0 && s.segs[n-1].size < s.segBytes && s.segs[n-1].end() >= s.acked {
		f, err := os.OpenFile(s.segName(s.segs[n-1].base), os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("ingest: opening spool segment: %w", err)
		}
		s.w = f
		return nil
	}
	return s.rotate()
}

// rotate closes the segment being appended to and starts a new one at end().
func (s *spool) rotate() error {
	base := s.end()
	if s.w != nil {
		if err := s.w.Close(); err != nil {
			return fmt.Errorf("ingest: closing spool segment: %w", err)
		}
		s.w = nil
	}
	name := s.segName(base)
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("ingest: creating spool segment %s: %w", name, err)
	}
	s.w = f
	s.segs = append(s.segs, segment{base: base})
	if s.fsync {
		return syncDir(s.dir)
	}
	return nil
}

// append writes frames (whole, checksummed records; count of them) in one write
// and, with fsync on, makes them durable before it returns. On failure nothing of
// the batch counts as spooled.
func (s *spool) append(frames []byte, count int) error {
	if used := s.bytes(); used > 0 && used+int64(len(frames)) > s.maxBytes {
		return ErrSpoolFull
	}
	if s.segs[len(s.segs)-1].size >= s.segBytes {
		if err := s.rotate(); err != nil {
			return err
		}
	}
	last := &s.segs[len(s.segs)-1]
	if _, err := s.w.Write(frames); err != nil {
		// Cut what may have been written, so no partial batch stays behind.
		_ = s.w.Truncate(last.size)
		return fmt.Errorf("ingest: writing spool segment %s: %w", s.segName(last.base), err)
	}
	if s.fsync {
		if err := s.w.Sync(); err != nil {
			_ = s.w.Truncate(last.size)
			return fmt.Errorf("ingest: fsync of spool segment %s: %w", s.segName(last.base), err)
		}
	}
	last.size += int64(len(frames))
	s.unacked += count
	return nil
}

// ack records that every record ending at or before pos (count records since the
// last ack) is in QuestDB, and deletes segments that hold nothing else.
func (s *spool) ack(pos uint64, count int) error {
	if pos <= s.acked {
		return nil
	}
	// No fsync: a lost ack only re-sends rows QuestDB has (DEDUP), so the
	// per-request cost of two fsyncs buys nothing.
	if err := writeAck(s.dir, pos, false); err != nil {
		return err
	}
	s.acked = pos
	s.unacked -= count
	return s.dropAcked()
}

// dropAcked deletes every segment, except the one taking appends, whose records
// are all acknowledged.
func (s *spool) dropAcked() error {
	for len(s.segs) > 1 && s.segs[0].end() <= s.acked {
		if s.rf != nil && s.rseg == 0 {
			_ = s.rf.Close()
			s.rf = nil
		}
		if err := os.Remove(s.segName(s.segs[0].base)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("ingest: removing acknowledged spool segment: %w", err)
		}
		s.segs = s.segs[1:]
		if s.rseg >= 0 {
			s.rseg--
		}
	}
	return nil
}

// read hands up to max records after the reader's position to emit, each with the
// spool position after its frame. The payload is only valid during the call.
// Damage found on the way (the file changed on disk since it was scanned) is
// handled like damage found at open: skipped, quarantined, counted.
func (s *spool) read(max int, emit func(payload []byte, end uint64)) error {
	for n := 0; n < max; {
		if s.rf == nil || s.rseg < 0 {
			if !s.seekReader() {
				return nil
			}
		}
		seg := &s.segs[s.rseg]
		off := int64(s.rpos - seg.base)
		for _, h := range seg.holes {
			if off >= h.from && off < h.to {
				off = h.to
			}
		}
		if off >= seg.size {
			if s.rseg == len(s.segs)-1 {
				s.rpos = seg.base + uint64(off)
				return nil // caught up with the writer
			}
			_ = s.rf.Close()
			s.rf = nil
			s.rseg++
			s.rpos = s.segs[s.rseg].base
			continue
		}
		limit := seg.size
		for _, h := range seg.holes {
			if h.from >= off && h.from < limit {
				limit = h.from // read up to the next hole
			}
		}
		want := min(limit-off, 1<<20+frameHeader)
		if cap(s.rbuf) < int(want) {
			s.rbuf = make([]byte, want)
		}
		buf := s.rbuf[:want]
		if _, err := s.rf.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("ingest: reading spool segment %s: %w", s.segName(seg.base), err)
		}
		p := int64(0)
		for n < max {
			fl, ok := frameAt(buf[p:])
			if !ok {
				break
			}
			emit(buf[p+frameHeader:p+fl], seg.base+uint64(off+p+fl))
			p += fl
			n++
		}
		if p == 0 {
			// Validated at open or written by us: the file changed on disk.
			if err := s.damagedAt(seg, off); err != nil {
				return err
			}
			continue
		}
		s.rpos = seg.base + uint64(off+p)
	}
	return nil
}

// readerAt reports whether the reader has read everything up to pos.
func (s *spool) readerAt(pos uint64) bool { return s.rpos == pos }

// skipTo moves the reader to pos, past records its owner took from memory
// (they were just appended, so no damage can be among them).
func (s *spool) skipTo(pos uint64) {
	s.rpos = pos
	if s.rf != nil && s.rseg != len(s.segs)-1 {
		// The records are in a newer segment: the next read opens it.
		_ = s.rf.Close()
		s.rf = nil
		s.rseg = -1
	}
}

// damagedAt handles damage found by the reader at off of seg: the range up to
// the next valid frame (or the end of the segment's data) becomes a hole.
func (s *spool) damagedAt(seg *segment, off int64) error {
	name := s.segName(seg.base)
	data, err := os.ReadFile(name)
	if err != nil {
		return fmt.Errorf("ingest: reading spool segment %s: %w", name, err)
	}
	end := min(seg.size, int64(len(data)))
	next := resync(data[:end], off+1)
	if next < 0 {
		next = seg.size
	}
	seg.holes = append(seg.holes, span{off, next})
	slices.SortFunc(seg.holes, func(a, b span) int { return int(a.from - b.from) })
	s.damaged(seg, off, next, "a frame that changed on disk after it was written")
	return nil
}

// seekReader opens the segment holding rpos (or the first one after it).
func (s *spool) seekReader() bool {
	for i, seg := range s.segs {
		if seg.end() > s.rpos || (i == len(s.segs)-1) {
			if s.rpos < seg.base {
				s.rpos = seg.base
			}
			f, err := os.Open(s.segName(seg.base))
			if err != nil {
				s.log.Error("ingest: opening spool segment for reading", "err", err)
				return false
			}
			s.rf = f
			s.rseg = i
			return true
		}
	}
	return false
}

// close releases the spool's files. Appended data is already written.
func (s *spool) close() error {
	var errs []error
	if s.rf != nil {
		errs = append(errs, s.rf.Close())
		s.rf = nil
	}
	if s.w != nil {
		if s.fsync {
			errs = append(errs, s.w.Sync())
		}
		errs = append(errs, s.w.Close())
		s.w = nil
	}
	if s.lock != nil {
		errs = append(errs, s.lock.Close()) // releases the flock
		s.lock = nil
	}
	return errors.Join(errs...)
}
