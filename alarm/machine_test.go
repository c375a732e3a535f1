package alarm_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/telemetry"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func lim() alarm.Limits {
	return alarm.Limits{
		HiHi: alarm.Threshold{Value: 50, Severity: alarm.Major},
		High: alarm.Threshold{Value: 40, Severity: alarm.Minor},
		Low:  alarm.Threshold{Value: 5, Severity: alarm.Minor},
		LoLo: alarm.Threshold{Value: 1, Severity: alarm.Major},
	}
}

// step is one input to a machine and the transitions it must produce, written as
// "EVENT CONDITION SEVERITY/LATCHED" ("" for none).
type step struct {
	at   time.Duration // since t0
	in   string        // "v 42", "bad", "down", "up", "tick", "ack", "shelve 10s", "sp 10"
	want string
}

func run(t *testing.T, m *alarm.Machine, steps []step) {
	t.Helper()
	for i, s := range steps {
		now := t0.Add(s.at)
		var ts []alarm.Transition
		var err error
		f := strings.Fields(s.in)
		switch f[0] {
		case "v", "sp":
			var v float64
			if _, err := fmtSscan(f[1], &v); err != nil {
				t.Fatal(err)
			}
			smp := telemetry.Sample{Device: "d", Channel: "c", Value: telemetry.Float(v)}
			if f[0] == "v" {
				ts = m.Sample(now, &smp)
			} else {
				ts = m.Setpoint(now, &smp)
			}
		case "bad":
			ts = m.Sample(now, &telemetry.Sample{Device: "d", Channel: "c", Quality: telemetry.Timeout, Err: "no reply"})
		case "down":
			ts = m.DeviceState(now, false, "BACKOFF: refused")
		case "up":
			ts = m.DeviceState(now, true, "")
		case "tick":
			ts = m.Tick(now)
		case "ack":
			ts, err = m.Ack(now, "ann", "seen")
		case "shelve":
			d, _ := time.ParseDuration(f[1])
			ts, err = m.Shelve(now, now.Add(d), "bob", "maintenance")
		}
		if err != nil {
			t.Fatalf("step %d (%s): %v", i, s.in, err)
		}
		var got []string
		for _, tr := range ts {
			got = append(got, tr.Event.String()+" "+tr.Alarm.Condition.String()+" "+tr.Alarm.Severity.String()+"/"+tr.Alarm.Latched.String())
		}
		if g := strings.Join(got, "; "); g != s.want {
			t.Fatalf("step %d at %s (%s): got %q, want %q", i, s.at, s.in, g, s.want)
		}
	}
}

func TestMachineTransitions(t *testing.T) {
	hyst := lim()
	hyst.Hysteresis = 0.5
	delayed := lim()
	delayed.Delay = 2 * time.Second
	counted := lim()
	counted.DelaySamples = 3
	stale := lim()
	stale.StaleAfter = 3 * time.Second
	rb := alarm.Limits{Setpoint: "setpoint", Tolerance: 0.1, ReadbackDelay: time.Second}
	cases := []struct {
		name   string
		limits alarm.Limits
		steps  []step
	}{
		{"every limit up and down, latched until ack", lim(), []step{
			{0, "v 20", ""},
			{1 * time.Second, "v 40", "RAISED HIGH MINOR/MINOR"},
			{2 * time.Second, "v 50", "RAISED HIHI MAJOR/MAJOR"},
			{3 * time.Second, "v 45", "CHANGED HIGH MINOR/MAJOR"},
			{4 * time.Second, "v 20", "CLEARED NONE NO_ALARM/MAJOR"},
			{5 * time.Second, "v 5", "RAISED LOW MINOR/MAJOR"},
			{6 * time.Second, "v 1", "RAISED LOLO MAJOR/MAJOR"},
			{7 * time.Second, "v 20", "CLEARED NONE NO_ALARM/MAJOR"},
			{8 * time.Second, "ack", "ACKED NONE NO_ALARM/NO_ALARM"},
		}},
		{"ack while active latches the current severity; a rise needs a new ack", lim(), []step{
			{0, "v 51", "RAISED HIHI MAJOR/MAJOR"},
			{time.Second, "ack", "ACKED HIHI MAJOR/MAJOR"},
			{2 * time.Second, "v 41", "CHANGED HIGH MINOR/MAJOR"},
			{3 * time.Second, "v 30", "CLEARED NONE NO_ALARM/NO_ALARM"},
			{4 * time.Second, "v 41", "RAISED HIGH MINOR/MINOR"},
		}},
		{"hysteresis edges", hyst, []step{
			{0, "v 40", "RAISED HIGH MINOR/MINOR"},
			{time.Second, "v 39.6", ""},                                // within HYST of 40
			{2 * time.Second, "v 39.5", "CLEARED NONE NO_ALARM/MINOR"}, // past it by exactly HYST
			{3 * time.Second, "v 50.2", "RAISED HIHI MAJOR/MAJOR"},
			{4 * time.Second, "v 49.7", ""},
			{5 * time.Second, "v 49.4", "CHANGED HIGH MINOR/MAJOR"},
			{6 * time.Second, "v 4.9", "CHANGED LOW MINOR/MAJOR"},
			{7 * time.Second, "v 5.4", ""},
			{8 * time.Second, "v 5.6", "CLEARED NONE NO_ALARM/MAJOR"},
		}},
		{"delay in time", delayed, []step{
			{0, "v 45", ""},
			{time.Second, "v 45", ""},
			{1500 * time.Millisecond, "v 30", ""}, // went away: the delay restarts
			{2 * time.Second, "v 45", ""},
			{3 * time.Second, "tick", ""},
			{4 * time.Second, "tick", "RAISED HIGH MINOR/MINOR"},
			{5 * time.Second, "v 30", "CLEARED NONE NO_ALARM/MINOR"}, // clears at once
		}},
		{"delay in samples", counted, []step{
			{0, "v 45", ""},
			{time.Second, "v 46", ""},
			{2 * time.Second, "v 47", "RAISED HIGH MINOR/MINOR"},
		}},
		{"comm failure and bad reading", lim(), []step{
			{0, "v 20", ""},
			{time.Second, "down", "RAISED COMM INVALID/INVALID"},
			{2 * time.Second, "up", "CLEARED NONE NO_ALARM/INVALID"},
			{3 * time.Second, "v 45", "RAISED HIGH MINOR/INVALID"},
			{4 * time.Second, "bad", "RAISED COMM INVALID/INVALID"},
			{5 * time.Second, "v 20", "CLEARED NONE NO_ALARM/INVALID"},
		}},
		{"stale value", stale, []step{
			{0, "v 20", ""},
			{3 * time.Second, "tick", ""},
			{3*time.Second + time.Millisecond, "tick", "RAISED STALE INVALID/INVALID"},
			{4 * time.Second, "v 20", "CLEARED NONE NO_ALARM/INVALID"},
		}},
		{"read-back differs from set-point", rb, []step{
			{0, "sp 10", ""},
			{0, "v 10.05", ""},
			{time.Second, "sp 12", ""}, // ramping: wait ReadbackDelay
			{1500 * time.Millisecond, "v 11", ""},
			{2 * time.Second, "tick", "RAISED READBACK MINOR/MINOR"},
			{3 * time.Second, "v 12", "CLEARED NONE NO_ALARM/MINOR"},
		}},
		{"shelve expires", lim(), []step{
			{0, "shelve 10s", "SHELVED NONE NO_ALARM/NO_ALARM"},
			{5 * time.Second, "v 45", "RAISED HIGH MINOR/MINOR"},
			{9 * time.Second, "tick", ""},
			{10 * time.Second, "tick", "UNSHELVED HIGH MINOR/MINOR"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			run(t, alarm.NewMachine("d", "c", "g", c.limits), c.steps)
		})
	}
}

func TestMachineOperatorErrors(t *testing.T) {
	m := alarm.NewMachine("d", "c", "", lim())
	if _, err := m.Ack(t0, "ann", ""); err == nil {
		t.Fatal("ack of a quiet alarm: no error")
	}
	if _, err := m.Shelve(t0, t0.Add(-time.Second), "ann", ""); err == nil {
		t.Fatal("shelve into the past: no error")
	}
	if _, err := m.Shelve(t0, t0.Add(time.Second), "", ""); err == nil {
		t.Fatal("shelve without who: no error")
	}
	bad := lim()
	bad.High.Value = 60
	_, err := m.SetLimits(t0, bad, "ann", "")
	if err == nil || !strings.Contains(err.Error(), "hihi: must be >= high") {
		t.Fatalf("limits out of order: %v", err)
	}
}

func TestMachineSetLimitsReevaluates(t *testing.T) {
	m := alarm.NewMachine("d", "c", "", lim())
	m.Sample(t0, &telemetry.Sample{Value: telemetry.Float(30)})
	l := lim()
	l.High.Value, l.Low.Value = 25, 2
	ts, err := m.SetLimits(t0.Add(time.Second), l, "ann", "tighter")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Event != alarm.LimitsChanged || ts[0].Alarm.Limits.High.Value != 25 || ts[1].Event != alarm.Raised {
		t.Fatalf("got %+v", ts)
	}
}
