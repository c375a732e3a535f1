package cluster

import (
	"errors"
	"fmt"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Batch is one message of a device's sample subject: the samples an owner
// published since its previous batch, plus the latest sample of each of the
// device's other channels, so that the last message of a subject alone gives
// every channel's latest value and sequence number (GetLatest, and where a new
// owner continues the numbering).
//
// On the wire it is a protobuf message (field numbers below) whose samples are
// switchyard.v1.Sample messages without their device field (the subject names
// the device):
//
//	1 repeated Sample samples
//	2 repeated Sample latest
//	3 string owner   (the node that published it)
//	4 uint64 epoch   (the owner's lease revision when it started the device)
type Batch struct {
	Device  string
	Owner   string
	Epoch   uint64
	Samples []telemetry.Sample
	Latest  []telemetry.Sample
}

// Encode appends the batch's wire form to b.
func (x *Batch) Encode(b []byte) []byte {
	for _, group := range []struct {
		num     protowire.Number
		samples []telemetry.Sample
	}{{1, x.Samples}, {2, x.Latest}} {
		for i := range group.samples {
			m, _ := proto.MarshalOptions{Deterministic: true}.Marshal(sampleProto(&group.samples[i]))
			b = protowire.AppendTag(b, group.num, protowire.BytesType)
			b = protowire.AppendBytes(b, m)
		}
	}
	if x.Owner != "" {
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		b = protowire.AppendString(b, x.Owner)
	}
	if x.Epoch != 0 {
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		b = protowire.AppendVarint(b, x.Epoch)
	}
	return b
}

// DecodeBatch parses a batch of device's subject.
func DecodeBatch(device string, b []byte) (Batch, error) {
	x := Batch{Device: device}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Batch{}, fmt.Errorf("batch of %s: %w", device, protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case (num == 1 || num == 2) && typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return Batch{}, fmt.Errorf("batch of %s: %w", device, protowire.ParseError(n))
			}
			b = b[n:]
			var m pb.Sample
			if err := proto.Unmarshal(v, &m); err != nil {
				return Batch{}, fmt.Errorf("batch of %s: sample: %w", device, err)
			}
			s, err := sampleFromProto(device, &m)
			if err != nil {
				return Batch{}, fmt.Errorf("batch of %s: %w", device, err)
			}
			if num == 1 {
				x.Samples = append(x.Samples, s)
			} else {
				x.Latest = append(x.Latest, s)
			}
		case num == 3 && typ == protowire.BytesType:
			v, n := protowire.ConsumeString(b)
			if n < 0 {
				return Batch{}, fmt.Errorf("batch of %s: %w", device, protowire.ParseError(n))
			}
			b, x.Owner = b[n:], v
		case num == 4 && typ == protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return Batch{}, fmt.Errorf("batch of %s: %w", device, protowire.ParseError(n))
			}
			b, x.Epoch = b[n:], v
		default:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return Batch{}, fmt.Errorf("batch of %s: %w", device, protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return x, nil
}

// sampleProto converts a sample for the wire, without its device.
func sampleProto(s *telemetry.Sample) *pb.Sample {
	m := &pb.Sample{Channel: s.Channel, TimestampNs: s.TimeNs, Seq: s.Seq,
		Quality: pb.Quality(s.Quality) + 1, Error: s.Err}
	switch s.Value.Kind {
	case telemetry.KindFloat:
		m.Value = &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: s.Value.F}}
	case telemetry.KindInt:
		m.Value = &pb.Value{Kind: &pb.Value_IntValue{IntValue: s.Value.I}}
	case telemetry.KindString:
		m.Value = &pb.Value{Kind: &pb.Value_StringValue{StringValue: s.Value.S}}
	case telemetry.KindBool:
		m.Value = &pb.Value{Kind: &pb.Value_BoolValue{BoolValue: s.Value.B}}
	}
	return m
}

var errBadQuality = errors.New("unknown quality")

func sampleFromProto(device string, m *pb.Sample) (telemetry.Sample, error) {
	if m.Quality < pb.Quality_QUALITY_GOOD || m.Quality > pb.Quality_QUALITY_DISCONNECTED {
		return telemetry.Sample{}, fmt.Errorf("sample %s/%s: %w %d", device, m.Channel, errBadQuality, m.Quality)
	}
	s := telemetry.Sample{Device: device, Channel: m.Channel, TimeNs: m.TimestampNs, Seq: m.Seq,
		Quality: telemetry.Quality(m.Quality - 1), Err: m.Error}
	switch v := m.GetValue().GetKind().(type) {
	case *pb.Value_DoubleValue:
		s.Value = telemetry.Float(v.DoubleValue)
	case *pb.Value_IntValue:
		s.Value = telemetry.Int(v.IntValue)
	case *pb.Value_StringValue:
		s.Value = telemetry.String(v.StringValue)
	case *pb.Value_BoolValue:
		s.Value = telemetry.Bool(v.BoolValue)
	}
	return s, nil
}
