package ingest

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// DeadLetter is one line of the dead-letter file: a row QuestDB refused (or a
// spooled record that could not be decoded), with the reason. The file is JSON
// lines, appended to and never rewritten by the Writer.
type DeadLetter struct {
	// Time is when the row was set aside (RFC 3339).
	Time string `json:"time"`
	// Table is the table the row was meant for.
	Table   string `json:"table"`
	Device  string `json:"device,omitempty"`
	Channel string `json:"channel,omitempty"`
	TimeNs  int64  `json:"ts_ns,omitempty"`
	Seq     uint64 `json:"seq,omitempty"`
	Quality string `json:"quality,omitempty"`
	// Value is the sample's value as text; ValueKind its type.
	Value     string `json:"value,omitempty"`
	ValueKind string `json:"value_kind,omitempty"`
	SampleErr string `json:"sample_error,omitempty"`
	// Error is why the row was rejected: QuestDB's message for a refused row.
	Error string `json:"error"`
	// Raw is the hex of a spooled record that could not be decoded.
	Raw string `json:"raw,omitempty"`
}

// deadLetter appends DeadLetter lines to a file. Owned by the Writer's goroutine.
type deadLetter struct {
	f     *os.File
	fsync bool
}

func openDeadLetter(path string, fsync bool) (*deadLetter, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ingest: dead-letter file: %w", err)
	}
	return &deadLetter{f: f, fsync: fsync}, nil
}

func kindName(k telemetry.Kind) string {
	switch k {
	case telemetry.KindFloat:
		return "float"
	case telemetry.KindInt:
		return "int"
	case telemetry.KindString:
		return "string"
	case telemetry.KindBool:
		return "bool"
	}
	return ""
}

func (d *deadLetter) writeSample(table string, smp *telemetry.Sample, cause error) error {
	dl := DeadLetter{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Table: table,
		Device: smp.Device, Channel: smp.Channel, TimeNs: smp.TimeNs, Seq: smp.Seq,
		Quality: smp.Quality.String(), SampleErr: smp.Err, Error: cause.Error(),
	}
	if smp.Value.Kind != telemetry.KindNone {
		dl.Value = smp.Value.String()
		if smp.Value.Kind == telemetry.KindString {
			dl.Value = smp.Value.S // unquoted
		}
		dl.ValueKind = kindName(smp.Value.Kind)
	}
	return d.write(&dl)
}

func (d *deadLetter) writeRaw(table string, payload []byte, cause error) error {
	return d.write(&DeadLetter{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Table: table,
		Error: cause.Error(), Raw: hex.EncodeToString(payload),
	})
}

func (d *deadLetter) write(dl *DeadLetter) error {
	b, err := json.Marshal(dl)
	if err != nil {
		return err
	}
	if _, err := d.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ingest: writing dead-letter file %s: %w", d.f.Name(), err)
	}
	if d.fsync {
		if err := d.f.Sync(); err != nil {
			return fmt.Errorf("ingest: fsync of dead-letter file %s: %w", d.f.Name(), err)
		}
	}
	return nil
}

func (d *deadLetter) close() error { return d.f.Close() }
