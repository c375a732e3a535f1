package server

import (
	"bytes"
	"math"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// variedSamples covers every value kind, every quality, empty and non-ASCII
// strings and extreme numbers.
func variedSamples() []telemetry.Sample {
	return []telemetry.Sample{
		{Device: "psu1", Channel: "volt", TimeNs: 1_795_694_400_000_000_000, Seq: 1, Value: telemetry.Float(12.5)},
		{Device: "psu1", Channel: "zero", TimeNs: 1, Seq: 2, Value: telemetry.Float(0)},
		{Device: "psu1", Channel: "neg", TimeNs: -5, Seq: 3, Value: telemetry.Float(math.Inf(-1))},
		{Device: "dmm1", Channel: "count", TimeNs: math.MaxInt64, Seq: math.MaxUint64, Value: telemetry.Int(-42)},
		{Device: "dmm1", Channel: "count0", Value: telemetry.Int(0)},
		{Device: "dmm1", Channel: "idn", Seq: 7, Value: telemetry.String("Keysight, 34465A – µV ✓")},
		{Device: "dmm1", Channel: "empty", Seq: 8, Value: telemetry.String("")},
		{Device: "ctl", Channel: "on", Seq: 9, Value: telemetry.Bool(true)},
		{Device: "ctl", Channel: "off", Seq: 10, Value: telemetry.Bool(false)},
		{Device: "ctl", Channel: "t", Seq: 11, Quality: telemetry.Timeout, Err: "no reply within 500ms"},
		{Device: "ctl", Channel: "p", Seq: 12, Quality: telemetry.ParseError, Err: `reply "+1.0E+x" does not match`},
		{Device: "ctl", Channel: "c", Seq: 13, Quality: telemetry.CommError},
		{Device: "ctl", Channel: "d", Seq: 14, Quality: telemetry.Disconnected, Err: "dial tcp: refused"},
		{},
	}
}

// The bytes built from cached per-sample encodings are exactly what proto.Marshal
// gives for the same SubscribeResponse, and decode to an equal message, whether
// the samples came through a hub (cached encodings) or not.
func TestEncodedResponseMatchesMarshal(t *testing.T) {
	samples := variedSamples()
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	defer sub.Close()
	hub.Publish(samples...)
	delivered := sub.Drain(nil, 0)
	// A second pass over the delivered samples reads the cache the first filled.
	sources := map[string][]telemetry.Sample{"by hand": samples, "from the hub": delivered, "from the hub, cached": delivered}

	counters := []struct {
		dropped, squashed uint64
		initial           bool
	}{{0, 0, false}, {1, 0, false}, {0, 300, false}, {math.MaxUint64, 1 << 40, true}, {0, 0, true}}
	var enc responseEncoder
	for _, name := range []string{"by hand", "from the hub", "from the hub, cached"} {
		src := sources[name]
		for n := 0; n <= len(src); n++ {
			for _, c := range counters {
				want := &pb.SubscribeResponse{Samples: samplesToProto(src[:n]), Dropped: c.dropped, Squashed: c.squashed, Initial: c.initial}
				wantBytes, err := proto.Marshal(want)
				if err != nil {
					t.Fatal(err)
				}
				buf := enc.encode(src[:n], c.dropped, c.squashed, c.initial)
				got := bytes.Clone(*buf)
				if !bytes.Equal(got, wantBytes) {
					t.Fatalf("%s, %d samples, %+v:\n got %x\nwant %x", name, n, c, got, wantBytes)
				}
				var back pb.SubscribeResponse
				if err := proto.Unmarshal(got, &back); err != nil {
					t.Fatalf("%s, %d samples, %+v: unmarshal: %v", name, n, c, err)
				}
				if !proto.Equal(&back, want) {
					t.Fatalf("%s, %d samples, %+v: decoded %v, want %v", name, n, c, &back, want)
				}
			}
		}
	}
}

// Every subscription's copy of a published sample shares one cached encoding.
func TestHubSharesEncoding(t *testing.T) {
	hub := telemetry.NewHub(nil)
	var subs []*telemetry.Subscription
	for range 3 {
		s := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
		defer s.Close()
		subs = append(subs, s)
	}
	hub.Publish(variedSamples()...)
	calls := 0
	counting := func(s *telemetry.Sample) []byte { calls++; return encodeSample(s) }
	for _, s := range subs {
		for _, smp := range s.Drain(nil, 0) {
			smp.Encoded(counting)
		}
	}
	latest := hub.Latest(nil)
	for i := range latest {
		latest[i].Encoded(counting)
	}
	if n := len(variedSamples()); calls != n {
		t.Fatalf("encoded %d times for %d samples delivered to 3 subscriptions and Latest", calls, n)
	}
}

// A device reply with invalid UTF-8 is sent with the bad bytes replaced, not
// dropped and not a panic.
func TestEncodeSampleInvalidUTF8(t *testing.T) {
	s := telemetry.Sample{Device: "d", Channel: "c", Seq: 1, Value: telemetry.String("ok\xffbad"), Quality: telemetry.ParseError, Err: "reply \xfe"}
	var back pb.Sample
	if err := proto.Unmarshal(encodeSample(&s), &back); err != nil {
		t.Fatal(err)
	}
	if back.GetValue().GetStringValue() != "ok\uFFFDbad" || back.GetError() != "reply \uFFFD" || back.GetSeq() != 1 {
		t.Fatalf("decoded %v", &back)
	}
}

func TestConnectUsesProto(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/connect+proto":            true,
		"application/connect+json":             false,
		"application/grpc":                     true,
		"application/grpc+proto":               true,
		"application/grpc+json":                false,
		"application/grpc-web":                 true,
		"application/grpc-web+proto":           true,
		"application/grpc-web+json":            false,
		"application/grpc-web-text":            false,
		"application/connect+proto; charset=x": true,
		"":                                     false,
		"bogus/;;":                             false,
	} {
		if got := connectUsesProto(ct); got != want {
			t.Errorf("connectUsesProto(%q) = %v, want %v", ct, got, want)
		}
	}
}

// BenchmarkSubscribeBatchEncoded is BenchmarkSubscribeBatch on the path Subscribe
// takes now, for streams sharing samples: "first stream" encodes each sample of a
// fresh batch and builds the response, "other streams" builds it from the
// encodings cached by the first. Compare per stream with BenchmarkSubscribeBatch.
func BenchmarkSubscribeBatchEncoded(b *testing.B) {
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	defer sub.Close()
	batch := domainBatch(1000)
	b.Run("first stream", func(b *testing.B) {
		var enc responseEncoder
		var size int
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			hub.Publish(batch...) // fresh, empty caches
			samples := sub.Drain(nil, 0)
			b.StartTimer()
			buf := enc.encode(samples, 42, 0, false)
			size = len(*buf)
			mem.DefaultBufferPool().Put(buf) // as the transport does once it has written it
		}
		b.ReportMetric(float64(size), "bytes/batch")
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/sample")
	})
	b.Run("other streams", func(b *testing.B) {
		hub.Publish(batch...)
		samples := sub.Drain(nil, 0)
		var enc responseEncoder
		mem.DefaultBufferPool().Put(enc.encode(samples, 0, 0, false)) // fills the caches
		b.ReportAllocs()
		for b.Loop() {
			mem.DefaultBufferPool().Put(enc.encode(samples, 42, 0, false))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/sample")
	})
}

// FuzzEncodeSample checks the hand-written sample encoding against proto.Marshal
// for any field values; invalid UTF-8 must still give a message that decodes.
func FuzzEncodeSample(f *testing.F) {
	f.Add("psu1", "volt", int64(1_795_694_400_000_000_000), uint64(1), uint8(telemetry.KindFloat), 12.5, int64(0), "", false, uint8(telemetry.Good), "")
	f.Add("dmm1", "idn", int64(-1), uint64(math.MaxUint64), uint8(telemetry.KindString), 0.0, int64(0), "µV ✓", false, uint8(telemetry.Good), "")
	f.Add("d", "c", int64(0), uint64(0), uint8(telemetry.KindInt), 0.0, int64(-1), "", false, uint8(telemetry.Timeout), "no reply")
	f.Add("", "", int64(0), uint64(0), uint8(telemetry.KindBool), 0.0, int64(0), "", false, uint8(9), "bad \xff")
	f.Fuzz(func(t *testing.T, dev, ch string, ts int64, seq uint64, kind uint8, fv float64, iv int64, sv string, bv bool, q uint8, errText string) {
		s := telemetry.Sample{
			Device: dev, Channel: ch, TimeNs: ts, Seq: seq,
			Value:   telemetry.Value{Kind: telemetry.Kind(kind % 6), F: fv, I: iv, S: sv, B: bv},
			Quality: telemetry.Quality(q % 7), Err: errText,
		}
		got := encodeSample(&s)
		var back pb.Sample
		if err := proto.Unmarshal(got, &back); err != nil {
			t.Fatalf("%v: encoding does not decode: %v", s, err)
		}
		valid := utf8.ValidString(dev) && utf8.ValidString(ch) && utf8.ValidString(sv) && utf8.ValidString(errText)
		if !valid {
			return
		}
		want, err := proto.Marshal(samplesToProto([]telemetry.Sample{s})[0])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("%v:\n got %x\nwant %x", s, got, want)
		}
	})
}
