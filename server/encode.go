package server

import (
	"math"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// Subscribe batches are built from cached per-sample encodings rather than by
// marshalling a SubscribeResponse per stream. Each published sample is encoded
// once (telemetry.Sample.Encoded), however many streams send it. A repeated
// message field on the wire is its entries one after another (tag, length,
// bytes) and proto.Marshal writes fields in field-number order, so the samples'
// cached bytes as field "samples" (number 1, the lowest), followed by
// proto.Marshal of the response's other fields, are the very bytes proto.Marshal
// gives for the whole response.
//
// The sample itself is encoded by hand, with the field numbers taken from the
// contract's descriptors (no copy to keep in step), because it is measured to be
// worth it: BenchmarkSubscribeBatchEncoded/first_stream, the hand-written
// encoding against proto.Marshal of a pooled message, alternating binaries on the
// same loaded machine: 155-221 against 503-787 ns per sample, some 0.35-0.55 µs
// once per published sample, about 5 % of the server's CPU per sample when
// polling 40,000 samples/s to one subscriber (where the CPU target is missed). The
// golden and fuzz tests hold it to proto.Marshal's bytes for any input.

// field returns the number of a message's field by name; it panics at start if
// the contract has no such field (a test catches that first).
func field(m proto.Message, name protoreflect.Name) protowire.Number {
	fd := m.ProtoReflect().Descriptor().Fields().ByName(name)
	if fd == nil {
		panic("server: " + string(m.ProtoReflect().Descriptor().FullName()) + " has no field " + string(name))
	}
	return fd.Number()
}

// Field numbers of SubscribeResponse, Sample and Value, from the descriptors.
var (
	respSamplesField = field(&pb.SubscribeResponse{}, "samples")

	sampleDeviceField    = field(&pb.Sample{}, "device")
	sampleChannelField   = field(&pb.Sample{}, "channel")
	sampleTimestampField = field(&pb.Sample{}, "timestamp_ns")
	sampleSeqField       = field(&pb.Sample{}, "seq")
	sampleValueField     = field(&pb.Sample{}, "value")
	sampleQualityField   = field(&pb.Sample{}, "quality")
	sampleErrorField     = field(&pb.Sample{}, "error")

	valueDoubleField = field(&pb.Value{}, "double_value")
	valueIntField    = field(&pb.Value{}, "int_value")
	valueStringField = field(&pb.Value{}, "string_value")
	valueBoolField   = field(&pb.Value{}, "bool_value")
)

// encodeSample is the wire encoding of one sample as a switchyard.v1.Sample, the
// bytes proto.Marshal gives for sampleToProto's message (checked by the golden and
// fuzz tests), written in one allocation. proto.Marshal refuses invalid UTF-8 in a
// string field, and a device reply can carry it, so such a string is sent with the
// bad bytes replaced by U+FFFD rather than ending the stream or losing the sample.
func encodeSample(s *telemetry.Sample) []byte {
	device, channel, errText := validUTF8(s.Device), validUTF8(s.Channel), validUTF8(s.Err)
	quality := uint64(qualityToProto(s.Quality))
	var str string
	if s.Value.Kind == telemetry.KindString {
		str = validUTF8(s.Value.S)
	}
	valueSize := 0
	switch s.Value.Kind {
	case telemetry.KindFloat:
		valueSize = protowire.SizeTag(valueDoubleField) + protowire.SizeFixed64()
	case telemetry.KindInt:
		valueSize = protowire.SizeTag(valueIntField) + protowire.SizeVarint(uint64(s.Value.I))
	case telemetry.KindString:
		valueSize = protowire.SizeTag(valueStringField) + protowire.SizeBytes(len(str))
	case telemetry.KindBool:
		valueSize = protowire.SizeTag(valueBoolField) + 1
	}
	hasValue := valueSize > 0

	size := 0
	if device != "" {
		size += protowire.SizeTag(sampleDeviceField) + protowire.SizeBytes(len(device))
	}
	if channel != "" {
		size += protowire.SizeTag(sampleChannelField) + protowire.SizeBytes(len(channel))
	}
	if s.TimeNs != 0 {
		size += protowire.SizeTag(sampleTimestampField) + protowire.SizeVarint(uint64(s.TimeNs))
	}
	if s.Seq != 0 {
		size += protowire.SizeTag(sampleSeqField) + protowire.SizeVarint(s.Seq)
	}
	if hasValue {
		size += protowire.SizeTag(sampleValueField) + protowire.SizeBytes(valueSize)
	}
	if quality != 0 {
		size += protowire.SizeTag(sampleQualityField) + protowire.SizeVarint(quality)
	}
	if errText != "" {
		size += protowire.SizeTag(sampleErrorField) + protowire.SizeBytes(len(errText))
	}

	b := make([]byte, 0, size)
	if device != "" {
		b = protowire.AppendTag(b, sampleDeviceField, protowire.BytesType)
		b = protowire.AppendString(b, device)
	}
	if channel != "" {
		b = protowire.AppendTag(b, sampleChannelField, protowire.BytesType)
		b = protowire.AppendString(b, channel)
	}
	if s.TimeNs != 0 {
		b = protowire.AppendTag(b, sampleTimestampField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(s.TimeNs))
	}
	if s.Seq != 0 {
		b = protowire.AppendTag(b, sampleSeqField, protowire.VarintType)
		b = protowire.AppendVarint(b, s.Seq)
	}
	if hasValue {
		// A oneof member is written even when it holds its zero value.
		b = protowire.AppendTag(b, sampleValueField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(valueSize))
		switch s.Value.Kind {
		case telemetry.KindFloat:
			b = protowire.AppendTag(b, valueDoubleField, protowire.Fixed64Type)
			b = protowire.AppendFixed64(b, math.Float64bits(s.Value.F))
		case telemetry.KindInt:
			b = protowire.AppendTag(b, valueIntField, protowire.VarintType)
			b = protowire.AppendVarint(b, uint64(s.Value.I))
		case telemetry.KindString:
			b = protowire.AppendTag(b, valueStringField, protowire.BytesType)
			b = protowire.AppendString(b, str)
		case telemetry.KindBool:
			b = protowire.AppendTag(b, valueBoolField, protowire.VarintType)
			b = protowire.AppendVarint(b, protowire.EncodeBool(s.Value.B))
		}
	}
	if quality != 0 {
		b = protowire.AppendTag(b, sampleQualityField, protowire.VarintType)
		b = protowire.AppendVarint(b, quality)
	}
	if errText != "" {
		b = protowire.AppendTag(b, sampleErrorField, protowire.BytesType)
		b = protowire.AppendString(b, errText)
	}
	return b
}

// validUTF8 returns s with invalid UTF-8 replaced by U+FFFD (s itself when valid,
// without allocating).
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// responseEncoder builds encoded SubscribeResponses of samples for one stream. It
// is owned by the stream's goroutine.
type responseEncoder struct {
	parts [][]byte // the samples' encodings, reused between batches
}

// encode returns a pooled buffer holding the encoding of
// SubscribeResponse{Samples: samples, Dropped: dropped, Squashed: squashed,
// Initial: initial}. The caller owns the buffer (see streamOut.sendEncoded).
func (e *responseEncoder) encode(samples []telemetry.Sample, dropped, squashed uint64, initial bool) *[]byte {
	e.parts = e.parts[:0]
	size := 0
	for i := range samples {
		b := samples[i].Encoded(encodeSample)
		e.parts = append(e.parts, b)
		size += protowire.SizeTag(respSamplesField) + protowire.SizeBytes(len(b))
	}
	rest := &pb.SubscribeResponse{Dropped: dropped, Squashed: squashed, Initial: initial}
	size += proto.Size(rest)
	buf := mem.DefaultBufferPool().Get(size)
	out := (*buf)[:0]
	for _, b := range e.parts {
		out = protowire.AppendTag(out, respSamplesField, protowire.BytesType)
		out = protowire.AppendBytes(out, b)
	}
	clear(e.parts) // do not pin encodings until the next batch
	out, err := proto.MarshalOptions{}.MarshalAppend(out, rest)
	if err != nil {
		panic("server: marshalling a response: " + err.Error()) // no strings: cannot fail
	}
	*buf = out
	return buf
}
