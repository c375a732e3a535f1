package alarm

import (
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// TestTransitionRecordRoundTrip: what the spool holds for a transition decodes
// back to the same row, and a row without its keys is refused before anything
// is written (so the archive dead-letters it instead of writing half a row).
func TestTransitionRecordRoundTrip(t *testing.T) {
	m := NewMachine("psu-1", "voltage", "power", Limits{
		HiHi: Threshold{Value: 50, Severity: Major}, High: Threshold{Value: 40, Severity: Minor},
		Hysteresis: 0.5, Delay: 2 * time.Second,
	})
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	m.Sample(now, &telemetry.Sample{Value: telemetry.Float(45), TimeNs: now.UnixNano()})
	now = now.Add(3 * time.Second) // past the 2 s delay
	trs := m.Sample(now, &telemetry.Sample{Value: telemetry.Float(45), TimeNs: now.UnixNano()})
	acks, err := m.Ack(now.Add(time.Second), "ops", "seen")
	if err != nil {
		t.Fatal(err)
	}
	trs = append(trs, acks...)
	if len(trs) != 2 {
		t.Fatalf("transitions %+v, want RAISED and ACKED", trs)
	}
	for _, tr := range trs {
		row := transitionRowOf(&tr)
		r, err := decodeTransition(appendTransition(nil, &row))
		if err != nil {
			t.Fatal(err)
		}
		if r.Device != "psu-1" || r.Channel != "voltage" || r.Group != "power" || r.Event != tr.Event.String() ||
			r.TimeNs != tr.Time.UnixNano() || r.HiHi == nil || *r.HiHi != 50 || r.Low != nil ||
			r.Hysteresis != 0.5 || r.DelayMs != 2000 || r.Who != tr.Who || r.Reading == nil || *r.Reading != 45 {
			t.Errorf("row %+v from %+v", r, tr)
		}
	}
	for _, bad := range []transitionRow{{}, {Device: "psu-1", Channel: "voltage"}} {
		err := encodeTransition(context.Background(), nil, "t", &bad)
		if err == nil || !strings.Contains(err.Error(), "required") {
			t.Errorf("encode %+v: %v, want an error naming what is missing", bad, err)
		}
	}
	for _, bad := range [][]byte{nil, {transitionRecordVersion}, {transitionRecordVersion, '{'}, {9, '{', '}'}, {1, 2}} {
		if _, err := decodeTransition(bad); err == nil {
			t.Errorf("decode %x: no error", bad)
		}
	}
}

// TestLegacyTransitionRecord: a spool written by the previous version (a
// transition as JSON inside an ingest event inside a sample record) is still
// archived. The record was made by that version's code.
func TestLegacyTransitionRecord(t *testing.T) {
	b, err := os.ReadFile("testdata/legacy-transition.hex")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	r, err := decodeTransition(rec)
	if err != nil {
		t.Fatal(err)
	}
	if r.Device != "psu-1" || r.Channel != "voltage" || r.Event != "LIMITS_CHANGED" || r.Who != "ops" ||
		r.HiHi == nil || *r.HiHi != 50 || r.TimeNs != time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano() {
		t.Fatalf("legacy record read as %+v", r)
	}
}
