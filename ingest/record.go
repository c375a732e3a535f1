package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/switchyard/switchyard/telemetry"
)

// recordVersion is the first byte of every encoded sample in the spool. A spool
// written by a later version with a different layout is refused, not misread.
const recordVersion = 1

// maxRecordBytes bounds one spooled record; a frame header claiming more is
// corruption, not a reason to allocate gigabytes.
const maxRecordBytes = 1 << 20

// errRecord is wrapped by every decoding failure.
var errRecord = errors.New("bad spool record")

// appendRecord appends the spool encoding of smp to dst.
func appendRecord(dst []byte, smp *telemetry.Sample) []byte {
	dst = append(dst, recordVersion, byte(smp.Value.Kind), byte(smp.Quality))
	dst = binary.AppendVarint(dst, smp.TimeNs)
	dst = binary.AppendUvarint(dst, smp.Seq)
	dst = appendString(dst, smp.Device)
	dst = appendString(dst, smp.Channel)
	dst = appendString(dst, smp.Err)
	return appendValue(dst, &smp.Value)
}

// appendValue appends the spool encoding of v's value (its kind is written by
// the caller).
func appendValue(dst []byte, v *telemetry.Value) []byte {
	switch v.Kind {
	case telemetry.KindFloat:
		dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(v.F))
	case telemetry.KindInt:
		dst = binary.AppendVarint(dst, v.I)
	case telemetry.KindString:
		dst = appendString(dst, v.S)
	case telemetry.KindBool:
		b := byte(0)
		if v.B {
			b = 1
		}
		dst = append(dst, b)
	}
	return dst
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// DecodeSample parses one sample record of a sample spool (ReadSpool). Every
// failure names what was wrong and wraps errRecord; it never panics on any input.
func DecodeSample(b []byte) (telemetry.Sample, error) { return decodeRecord(b) }

// decodeRecord parses one record written by appendRecord. Every failure names
// what was wrong and wraps errRecord; it never panics on any input.
func decodeRecord(b []byte) (telemetry.Sample, error) {
	var smp telemetry.Sample
	d := decoder{b: b}
	if v := d.byte("version"); d.err == nil && v != recordVersion {
		return smp, fmt.Errorf("%w: version %d, want %d", errRecord, v, recordVersion)
	}
	kind := telemetry.Kind(d.byte("kind"))
	smp.Quality = telemetry.Quality(d.byte("quality"))
	smp.TimeNs = d.varint("time")
	smp.Seq = d.uvarint("seq")
	smp.Device = d.string("device")
	smp.Channel = d.string("channel")
	smp.Err = d.string("error")
	smp.Value = d.value(kind)
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", errRecord, len(d.b))
	}
	return smp, d.err
}

// decoder reads fields and remembers the first failure, so decodeRecord reads
// straight through.
type decoder struct {
	b   []byte
	err error
}

// value reads a value of the given kind (appendValue).
func (d *decoder) value(kind telemetry.Kind) telemetry.Value {
	v := telemetry.Value{Kind: kind}
	switch kind {
	case telemetry.KindFloat:
		v.F = math.Float64frombits(d.uint64("float value"))
	case telemetry.KindInt:
		v.I = d.varint("int value")
	case telemetry.KindString:
		v.S = d.string("string value")
	case telemetry.KindBool:
		v.B = d.byte("bool value") == 1
	default:
		if d.err == nil && kind != 0 {
			d.err = fmt.Errorf("%w: unknown value kind %d", errRecord, kind)
		}
	}
	return v
}

func (d *decoder) fail(field string) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: truncated or malformed %s", errRecord, field)
	}
	d.b = nil
}

func (d *decoder) byte(field string) byte {
	if len(d.b) < 1 {
		d.fail(field)
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) uint64(field string) uint64 {
	if len(d.b) < 8 {
		d.fail(field)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *decoder) varint(field string) int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) uvarint(field string) uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(field)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) string(field string) string {
	n := d.uvarint(field + " length")
	if d.err != nil {
		return ""
	}
	if n > uint64(len(d.b)) {
		d.fail(field)
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
