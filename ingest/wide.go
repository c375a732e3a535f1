package ingest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// The wide layout: one row per device per reading (the samples one poll's
// reply or one pushed line gave, which share their timestamp), a column per
// channel, named as the channel. See CreateWideTableSQL for the columns and
// the package doc for how quality and sequence numbers are kept.

// WideSuffix is appended to the samples table's name to name the table of the
// wide layout ("samples_wide").
const WideSuffix = "_wide"

// Columns of the wide table besides the channels'. A channel may not be named
// as one of them.
const (
	colChannels = "channels"
	colDetail   = "detail"
)

// WideReserved lists the column names a channel of the wide layout may not
// have (compared without case, as QuestDB does).
var WideReserved = []string{"ts", colDevice, colChannel, colSeq, colQuality, colError, colChannels, colDetail}

// CheckWideColumn says what keeps a channel name from being a column of the
// wide table, "" if nothing: letters, digits and '_', not starting with a
// digit, not one of WideReserved.
func CheckWideColumn(name string) string {
	if name == "" {
		return "a channel needs a name"
	}
	for i, r := range name {
		ok := r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9'
		if !ok {
			return fmt.Sprintf("%q cannot be a column of the wide archive layout: use letters, digits and '_' only, starting with a letter or '_'", name)
		}
	}
	for _, r := range WideReserved {
		if strings.EqualFold(name, r) {
			return fmt.Sprintf("%q is a column of the wide archive layout itself (%s): rename the channel", name, strings.Join(WideReserved, ", "))
		}
	}
	return ""
}

// WideRow is one row of the wide layout: samples of one device that share a
// timestamp (at the archive's microsecond precision), each of another channel,
// in the order they were published. The row's first sample names its key:
// (ts, device, first channel, its seq).
type WideRow struct {
	Samples []telemetry.Sample
}

// Device returns the row's device.
func (r *WideRow) Device() string { return r.Samples[0].Device }

// TimeNs returns the row's timestamp (its first sample's).
func (r *WideRow) TimeNs() int64 { return r.Samples[0].TimeNs }

// WideWriter archives samples in the wide layout: a Writer of WideTable fed by
// a WideSource.
type WideWriter = Writer[WideRow]

// WideTable is the archive table of the wide layout (DefaultTable+WideSuffix
// unless Options.Table says otherwise).
func WideTable() Table[WideRow] {
	return Table[WideRow]{
		Name:     DefaultTable + WideSuffix,
		Create:   CreateWideTableSQL,
		Row:      EncodeWideRow,
		Append:   appendWideRecord,
		Decode:   DecodeWideRow,
		Time:     func(r *WideRow) int64 { return r.TimeNs() },
		Describe: describeWideRow,
	}
}

// NewWideWriter returns a Writer that archives the samples of src (a hub
// subscription with the Lossless policy, selecting the devices of the wide
// layout) into the wide table, opts.Filter being the archive filter of their
// channels.
func NewWideWriter(app Appender, src Source[telemetry.Sample], opts Options) (*WideWriter, error) {
	ws := &WideSource{src: src}
	w, err := NewWriter(app, Source[WideRow](ws), WideTable(), opts)
	if err != nil {
		return nil, err
	}
	if f := opts.Filter; f != nil {
		ws.keep = func(batch []telemetry.Sample) []telemetry.Sample {
			kept, dropped := f.filter(batch)
			w.m.filtered.Add(float64(dropped))
			return kept
		}
	}
	return w, nil
}

// WideSource turns a source of samples into one of wide rows: consecutive
// samples of one device with the same microsecond timestamp, each of another
// channel, form a row (a device publishes one reading's samples together).
// What splits a reading into two rows (a drain that stops in its middle) costs
// only space: each row has its own key.
type WideSource struct {
	src  Source[telemetry.Sample]
	keep func([]telemetry.Sample) []telemetry.Sample // the archive filter; nil keeps everything
	buf  []telemetry.Sample
}

// Ready receives a value whenever samples may be waiting.
func (s *WideSource) Ready() <-chan struct{} { return s.src.Ready() }

// Drain appends rows made of up to 4×max waiting samples (all when max <= 0)
// to dst.
func (s *WideSource) Drain(dst []WideRow, max int) []WideRow {
	n := 0
	if max > 0 {
		n = 4 * max
	}
	s.buf = s.src.Drain(s.buf[:0], n)
	samples := s.buf
	if s.keep != nil {
		samples = s.keep(samples)
	}
	dst = AppendWideRows(dst, samples)
	clear(s.buf)
	return dst
}

// AppendWideRows groups samples into wide rows (see WideSource) appended to
// dst. The rows hold copies: samples may be reused.
func AppendWideRows(dst []WideRow, samples []telemetry.Sample) []WideRow {
	for i := 0; i < len(samples); {
		j := i + 1
		for j < len(samples) && sameRow(samples[i:j], &samples[j]) {
			j++
		}
		row := make([]telemetry.Sample, j-i)
		copy(row, samples[i:j])
		for k := range row {
			row[k].Detach()
		}
		dst = append(dst, WideRow{Samples: row})
		i = j
	}
	return dst
}

// sameRow reports whether s belongs to the row of samples: same device, same
// microsecond, a channel not in it yet.
func sameRow(row []telemetry.Sample, s *telemetry.Sample) bool {
	if s.Device != row[0].Device || s.TimeNs/1000 != row[0].TimeNs/1000 {
		return false
	}
	for i := range row {
		if row[i].Channel == s.Channel {
			return false
		}
	}
	return true
}

// wideDetail is what a channel of a row has that the row's first sample does
// not: its own seq, quality or error, or a float value a column cannot hold.
type wideDetail struct {
	Seq     *uint64 `json:"seq,omitempty"`
	Quality string  `json:"quality,omitempty"`
	Error   *string `json:"error,omitempty"`
	Value   string  `json:"value,omitempty"` // "NaN", "+Inf", "-Inf"
}

// EncodeWideRow writes one wide row. Its first sample gives the row's seq,
// quality and error; a channel that differs in any of them, or whose float
// value is not finite, is described in the detail column (JSON, by channel).
// The channels column lists the row's channels wherever its values alone would
// not tell them (a bad channel has no value; a boolean column reads false
// where nothing was written, a string column "" only where "" was written).
func EncodeWideRow(ctx context.Context, r Row, _ string, row *WideRow) error {
	if len(row.Samples) == 0 {
		return fmt.Errorf("empty wide row")
	}
	first := &row.Samples[0]
	r.Symbol(colDevice, first.Device).
		Symbol(colChannel, first.Channel).
		Symbol(colQuality, first.Quality.String()).
		Int64(colSeq, int64(first.Seq))
	if first.Err != "" {
		r.String(colError, first.Err)
	}
	var detail map[string]wideDetail
	listed := false
	for i := range row.Samples {
		s := &row.Samples[i]
		if msg := CheckWideColumn(s.Channel); msg != "" {
			return fmt.Errorf("channel %s: %s", s.Channel, msg)
		}
		var d wideDetail
		differs := false
		if s.Seq != first.Seq {
			seq := s.Seq
			d.Seq, differs = &seq, true
		}
		if s.Quality != first.Quality {
			d.Quality, differs = s.Quality.String(), true
		}
		if s.Err != first.Err {
			e := s.Err
			d.Error, differs = &e, true
		}
		if s.Quality != telemetry.Good {
			listed = true
		} else {
			switch s.Value.Kind {
			case telemetry.KindFloat:
				if math.IsNaN(s.Value.F) || math.IsInf(s.Value.F, 0) {
					d.Value, differs, listed = strconv.FormatFloat(s.Value.F, 'g', -1, 64), true, true
				} else {
					r.Float64(s.Channel, s.Value.F)
				}
			case telemetry.KindInt:
				r.Int64(s.Channel, s.Value.I)
			case telemetry.KindString:
				r.String(s.Channel, s.Value.S)
				listed = true
			case telemetry.KindBool:
				r.Bool(s.Channel, s.Value.B)
				listed = true
			default:
				listed = true // a good sample without a value: only the list says it is there
			}
		}
		if differs {
			if detail == nil {
				detail = map[string]wideDetail{}
			}
			detail[s.Channel] = d
		}
	}
	if listed || detail != nil {
		names := make([]string, len(row.Samples))
		for i := range row.Samples {
			names[i] = row.Samples[i].Channel
		}
		r.String(colChannels, strings.Join(names, ","))
	}
	if detail != nil {
		b, err := json.Marshal(detail)
		if err != nil {
			return err
		}
		r.String(colDetail, string(b))
	}
	return r.At(ctx, time.Unix(0, first.TimeNs))
}

// describeWideRow fills the dead-letter line of a wide row: its first
// sample's fields, and every sample as JSON.
func describeWideRow(row *WideRow, dl *DeadLetter) {
	if len(row.Samples) > 0 {
		describeSample(&row.Samples[0], dl)
	}
	DescribeJSON(&row.Samples, dl)
}

// wideRecordVersion is the first byte of every wide row in a spool; a sample
// record (recordVersion) in a wide spool, or the reverse, is refused.
const wideRecordVersion = 2

// appendWideRecord appends the spool encoding of row to dst: the device and
// the first timestamp once, then each sample.
func appendWideRecord(dst []byte, row *WideRow) []byte {
	dst = append(dst, wideRecordVersion)
	if len(row.Samples) == 0 {
		return binary.AppendUvarint(dst, 0)
	}
	base := row.TimeNs()
	dst = binary.AppendUvarint(dst, uint64(len(row.Samples)))
	dst = appendString(dst, row.Device())
	dst = binary.AppendVarint(dst, base)
	for i := range row.Samples {
		s := &row.Samples[i]
		dst = append(dst, byte(s.Value.Kind), byte(s.Quality))
		dst = binary.AppendVarint(dst, s.TimeNs-base)
		dst = binary.AppendUvarint(dst, s.Seq)
		dst = appendString(dst, s.Channel)
		dst = appendString(dst, s.Err)
		dst = appendValue(dst, &s.Value)
	}
	return dst
}

// DecodeWideRow parses one record of a wide spool (ReadSpool). Every failure
// names what was wrong and wraps errRecord; it never panics on any input.
func DecodeWideRow(b []byte) (WideRow, error) {
	var row WideRow
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != wideRecordVersion {
		return row, fmt.Errorf("%w: version %d, want %d (a wide row)", errRecord, v, wideRecordVersion)
	}
	n := d.uvarint("sample count")
	switch {
	case d.err != nil:
		return row, d.err
	case n == 0:
		return row, fmt.Errorf("%w: a wide row of no samples", errRecord)
	case n > uint64(len(d.b)): // every sample takes several bytes
		return row, fmt.Errorf("%w: %d samples in %d bytes", errRecord, n, len(d.b))
	}
	device := d.string("device")
	base := d.varint("time")
	row.Samples = make([]telemetry.Sample, 0, n)
	for range n {
		s := telemetry.Sample{Device: device}
		kind := telemetry.Kind(d.byte("kind"))
		s.Quality = telemetry.Quality(d.byte("quality"))
		s.TimeNs = base + d.varint("time offset")
		s.Seq = d.uvarint("seq")
		s.Channel = d.string("channel")
		s.Err = d.string("error")
		s.Value = d.value(kind)
		if d.err != nil {
			return WideRow{}, d.err
		}
		row.Samples = append(row.Samples, s)
	}
	if len(d.b) != 0 {
		return WideRow{}, fmt.Errorf("%w: %d trailing bytes", errRecord, len(d.b))
	}
	return row, nil
}
