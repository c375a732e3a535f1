package telemetry

import (
	"fmt"
	"strconv"
)

// The server's own health is published as channels of this device, so the
// archive, subscriptions and the alarm engine see it like any instrument's.
const SystemDevice = "switchyard"

// BackpressureChannel is the SystemDevice channel a Watchdog with
// PublishHealth publishes: how many Lossless subscriptions are at their bound,
// holding publishers back.
const BackpressureChannel = "hub_backpressure"

// Quality says whether a sample's value can be trusted, and if not, why not.
type Quality uint8

// Qualities. The zero value is Good so that a reading built field by field is good
// unless the code that built it says otherwise.
const (
	Good         Quality = iota // read and parsed
	CommError                   // the connection failed
	Timeout                     // no reply within the reply timeout
	ParseError                  // the reply did not match the channel's format
	Disconnected                // configured but not connected
)

var qualityNames = [...]string{"GOOD", "COMM_ERROR", "TIMEOUT", "PARSE_ERROR", "DISCONNECTED"}

// String returns the quality's name as used in the API and the archive.
func (q Quality) String() string {
	if int(q) < len(qualityNames) {
		return qualityNames[q]
	}
	return "Quality(" + strconv.Itoa(int(q)) + ")"
}

// Kind is the type held by a Value.
type Kind uint8

// Kinds of value. KindNone is the value of a bad-quality sample.
const (
	KindNone Kind = iota
	KindFloat
	KindInt
	KindString
	KindBool
)

// Value is a typed channel value. Only the field named by Kind is meaningful.
type Value struct {
	Kind Kind
	F    float64
	I    int64
	S    string
	B    bool
}

// Float returns a float Value.
func Float(f float64) Value { return Value{Kind: KindFloat, F: f} }

// Int returns an integer Value.
func Int(i int64) Value { return Value{Kind: KindInt, I: i} }

// String returns a string Value.
func String(s string) Value { return Value{Kind: KindString, S: s} }

// Bool returns a boolean Value.
func Bool(b bool) Value { return Value{Kind: KindBool, B: b} }

// String formats the value for humans and logs.
func (v Value) String() string {
	switch v.Kind {
	case KindFloat:
		return strconv.FormatFloat(v.F, 'g', -1, 64)
	case KindInt:
		return strconv.FormatInt(v.I, 10)
	case KindString:
		return strconv.Quote(v.S)
	case KindBool:
		return strconv.FormatBool(v.B)
	default:
		return "<none>"
	}
}

// Sample is one reading of one channel of one device.
type Sample struct {
	Device  string
	Channel string
	// TimeNs is when the reading was taken, in nanoseconds since the Unix epoch.
	TimeNs int64
	// Seq is the per-channel sequence number: 1 for the first sample a channel
	// publishes after the server starts, then one more for each sample.
	Seq     uint64
	Value   Value
	Quality Quality
	// Err says why the quality is bad; empty when Good.
	Err string

	enc *encodedCache // set on the copies a Hub delivers; see Encoded
}

// Key returns "device/channel", the identity of the sample's channel.
func (s *Sample) Key() string { return s.Device + "/" + s.Channel }

// String formats the sample for logs and tests.
func (s Sample) String() string {
	if s.Quality != Good {
		return fmt.Sprintf("%s/%s#%d %s %q", s.Device, s.Channel, s.Seq, s.Quality, s.Err)
	}
	return fmt.Sprintf("%s/%s#%d %s", s.Device, s.Channel, s.Seq, s.Value)
}
