package ingest

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// DeadLetter is one line of the dead-letter file: a row QuestDB refused (or a
// spooled record that could not be decoded), with the reason. A sample's fields
// are columns of their own; any other record is in Record. The file is JSON
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
	// Record is a record that is not a sample (an event, an alarm
	// transition), as JSON.
	Record json.RawMessage `json:"record,omitempty"`
	// Raw is the hex of a spooled record that could not be decoded.
	Raw string `json:"raw,omitempty"`
}

// summary is the dead letter in one line, for logs.
func (dl *DeadLetter) summary() string {
	switch {
	case dl.Device != "":
		s := fmt.Sprintf("%s/%s#%d", dl.Device, dl.Channel, dl.Seq)
		if dl.Value != "" {
			s += " " + dl.Value
		}
		if dl.SampleErr != "" {
			s += fmt.Sprintf(" %s %q", dl.Quality, dl.SampleErr)
		}
		return s
	case dl.Record != nil:
		return string(dl.Record)
	default:
		return dl.Raw
	}
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

// describeSample fills a dead letter with a sample's fields.
func describeSample(smp *telemetry.Sample, dl *DeadLetter) {
	dl.Device, dl.Channel, dl.TimeNs, dl.Seq = smp.Device, smp.Channel, smp.TimeNs, smp.Seq
	dl.Quality, dl.SampleErr = smp.Quality.String(), smp.Err
	if smp.Value.Kind != telemetry.KindNone {
		dl.Value = smp.Value.String()
		if smp.Value.Kind == telemetry.KindString {
			dl.Value = smp.Value.S // unquoted
		}
		dl.ValueKind = kindName(smp.Value.Kind)
	}
}

// DescribeJSON is a Table.Describe for records that marshal to JSON: the
// dead-letter line carries the record as JSON ("record").
func DescribeJSON[T any](v *T, dl *DeadLetter) {
	b, err := json.Marshal(v)
	if err != nil {
		dl.Raw = err.Error()
		return
	}
	dl.Record = b
}

func (d *deadLetter) write(dl *DeadLetter) error {
	dl.Time = time.Now().UTC().Format(time.RFC3339Nano)
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
