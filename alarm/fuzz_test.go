package alarm_test

import (
	"encoding/binary"
	"math"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/telemetry"
)

// FuzzMachine feeds arbitrary limits and device values (outside input) to a
// machine: it must never panic, and it must keep its invariants: the latch is
// never below the current severity, and an acknowledged alarm that clears is no
// longer active.
func FuzzMachine(f *testing.F) {
	f.Add(50.0, 40.0, 5.0, 1.0, 0.5, []byte{0, 0, 0, 0, 0, 0, 0x48, 0x40, 1, 0, 0, 0, 0, 0, 0, 0xf0, 0x7f})
	f.Add(1.0, 1.0, 1.0, 1.0, 0.0, []byte("\x00\x00\x00\x00\x00\x00\xf0?\xff\xff\xff\xff\xff\xff\xef\xff"))
	f.Fuzz(func(t *testing.T, hihi, high, low, lolo, hyst float64, data []byte) {
		l := alarm.Limits{
			HiHi: alarm.Threshold{Value: hihi, Severity: alarm.Major}, High: alarm.Threshold{Value: high, Severity: alarm.Minor},
			Low: alarm.Threshold{Value: low, Severity: alarm.Minor}, LoLo: alarm.Threshold{Value: lolo, Severity: alarm.Major},
			Hysteresis: hyst, DelaySamples: int(len(data) % 3),
		}
		if l.Validate() != nil {
			return
		}
		m := alarm.NewMachine("d", "c", "", l)
		now := time.Unix(0, 0)
		for i := 0; i+8 <= len(data) && i < 8*256; i += 8 {
			now = now.Add(time.Second)
			v := math.Float64frombits(binary.LittleEndian.Uint64(data[i:]))
			s := telemetry.Sample{Value: telemetry.Float(v)}
			if data[i]%17 == 0 {
				s = telemetry.Sample{Quality: telemetry.Timeout}
			}
			m.Sample(now, &s)
			if data[i]%5 == 0 {
				_, _ = m.Ack(now, "fuzz", "")
			}
			m.Tick(now)
			a := m.State()
			if a.Latched < a.Severity {
				t.Fatalf("latched %s below severity %s", a.Latched, a.Severity)
			}
			if a.Acked && a.Severity == alarm.NoAlarm && a.Active() {
				t.Fatalf("acknowledged and clear, but active: %+v", a)
			}
		}
	})
}
