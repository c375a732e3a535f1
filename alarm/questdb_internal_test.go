package alarm

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestTransitionEventRoundTrip: what the spool holds for a transition decodes
// back to the same row, and a damaged row is refused before anything is
// written (so the archive dead-letters it instead of writing half a row).
func TestTransitionEventRoundTrip(t *testing.T) {
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
		e, err := transitionEvent(&tr)
		if err != nil {
			t.Fatal(err)
		}
		var r transitionRow
		if err := json.Unmarshal([]byte(e.Message), &r); err != nil {
			t.Fatal(err)
		}
		if r.Device != "psu-1" || r.Channel != "voltage" || r.Group != "power" || r.Event != tr.Event.String() ||
			r.TimeNs != tr.Time.UnixNano() || r.HiHi == nil || *r.HiHi != 50 || r.Low != nil ||
			r.Hysteresis != 0.5 || r.DelayMs != 2000 || r.Who != tr.Who || e.Source != "psu-1/voltage" {
			t.Errorf("row %+v from %+v", r, tr)
		}
	}
	for _, bad := range []string{"", "{", `{"device":"psu-1"}`} {
		err := encodeTransition(context.Background(), nil, "t", &ingest.Event{Source: "psu-1/voltage", Kind: "RAISED", Message: bad})
		if err == nil || !strings.Contains(err.Error(), "psu-1/voltage RAISED") {
			t.Errorf("encode %q: %v, want an error naming the transition", bad, err)
		}
	}
}
