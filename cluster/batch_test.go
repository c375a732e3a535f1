package cluster

import (
	"reflect"
	"testing"

	"github.com/switchyard/switchyard/telemetry"
)

func TestBatchRoundTrip(t *testing.T) {
	in := Batch{Device: "psu.01", Owner: "n2", Epoch: 77,
		Samples: []telemetry.Sample{
			{Device: "psu.01", Channel: "voltage", TimeNs: 1e18, Seq: 5, Value: telemetry.Float(12.5)},
			{Device: "psu.01", Channel: "mode", TimeNs: 1e18 + 1, Seq: 6, Value: telemetry.String("CV")},
			{Device: "psu.01", Channel: "current", TimeNs: 1e18 + 2, Seq: 9, Quality: telemetry.Timeout, Err: "no reply"},
		},
		Latest: []telemetry.Sample{
			{Device: "psu.01", Channel: "output", TimeNs: 9e17, Seq: 2, Value: telemetry.Bool(true)},
			{Device: "psu.01", Channel: "count", TimeNs: 9e17, Seq: 3, Value: telemetry.Int(-4)},
		}}
	out, err := DecodeBatch("psu.01", in.Encode(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Errorf("round trip:\n got %+v\nwant %+v", out, in)
	}
	if _, err := DecodeBatch("x", []byte{0x0a, 0x05, 0x30, 0x09}); err == nil {
		t.Error("a sample with quality 9 decoded without error")
	}
}

func FuzzDecodeBatch(f *testing.F) {
	f.Add((&Batch{Owner: "n", Epoch: 3, Samples: []telemetry.Sample{{Channel: "c", Seq: 1, Value: telemetry.Float(1)}}}).Encode(nil))
	f.Add([]byte{0x0a, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		x, err := DecodeBatch("d", b)
		if err != nil {
			return
		}
		// Whatever decodes encodes to something that decodes the same.
		y, err := DecodeBatch("d", x.Encode(nil))
		if err != nil || !reflect.DeepEqual(x, y) {
			t.Fatalf("re-encoding changed the batch: %+v -> %+v, %v", x, y, err)
		}
	})
}
