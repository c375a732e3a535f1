package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"syscall"
)

// readAck reads the acknowledged position; a missing file is position 0.
func readAck(name string) (uint64, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 12 || crc32.Checksum(b[:8], crcTable) != binary.LittleEndian.Uint32(b[8:]) {
		return 0, fmt.Errorf("ingest: spool file %s: bad length or checksum", name)
	}
	return binary.LittleEndian.Uint64(b), nil
}

// writeAck replaces the ack file atomically (write, rename; with fsync, the file
// and the directory are synced too).
func writeAck(dir string, pos uint64, fsync bool) error {
	b := binary.LittleEndian.AppendUint64(nil, pos)
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
	tmp := filepath.Join(dir, ackFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("ingest: writing spool ack: %w", err)
	}
	_, err = f.Write(b)
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, ackFile))
	}
	if err != nil {
		return fmt.Errorf("ingest: writing spool ack: %w", err)
	}
	if fsync {
		return syncDir(dir)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("ingest: fsync of spool directory %s: %w", dir, err)
	}
	return nil
}

// lockDir takes an exclusive lock on dir/lock, so two servers never share a spool.
// The kernel drops it when the process dies, however it dies.
func lockDir(dir string) (*os.File, error) {
	name := filepath.Join(dir, "lock")
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ingest: spool lock %s: %w", name, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("ingest: spool directory %s is in use by another process (lock %s): %w", dir, name, err)
	}
	return f, nil
}

// CheckSpoolDir reports whether a Writer can use dir as its spool, so that a
// server can refuse a directory it cannot use before it serves anything: it
// creates dir if missing, takes and releases its lock (a spool another process
// uses is refused), and writes and removes a probe file. It leaves everything
// else in dir alone.
func CheckSpoolDir(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("spool directory %s: %w", dir, err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return err
	}
	defer lock.Close()
	probe := filepath.Join(dir, "probe.tmp")
	if err := os.WriteFile(probe, []byte("switchyard"), 0o644); err != nil {
		return fmt.Errorf("spool directory %s is not writable: %w", dir, err)
	}
	if err := os.Remove(probe); err != nil {
		return fmt.Errorf("spool directory %s: %w", dir, err)
	}
	return nil
}
