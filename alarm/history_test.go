package alarm_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/telemetry"
)

// archived is what the archive records of a transition (see
// WatchAlarmsResponse.replayed), as text.
func archived(tr alarm.Transition) string {
	a := tr.Alarm
	since := ""
	if !a.Since.IsZero() {
		since = fmt.Sprint(a.Since.Sub(tr.Time))
	}
	return fmt.Sprintf("%d %s %s/%s[%s] %s %s/%s acked=%v value=%v/%v %s %q who=%q %q limits={%v rb=%v} since=%s ack=%q,%q,%v shelf=%q,%q",
		tr.Time.UnixMicro(), tr.Event, a.Device, a.Channel, a.Group, a.Condition, a.Severity, a.Latched, a.Acked,
		a.Value, a.HasValue, a.Quality, a.Message, tr.Who, tr.Comment, a.Limits, a.Limits.ReadbackSeverity, since,
		a.AckedBy, a.AckComment, !a.AckedAt.IsZero(), a.ShelvedBy, a.ShelveComment)
}

// TestHistoryReplaysTransitions: the transitions an engine archives read back
// from since on, in the order they happened, each once, with what the archive
// records (the state, the operator's words, the limits in force); Settle makes
// every transition emitted before it readable.
func TestHistoryReplaysTransitions(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	sink, err := alarm.NewArchive(questDB(t, qdb), ingest.Options{Table: table, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	h, err := alarm.NewHistory(qdb, sink)
	if err != nil {
		t.Fatal(err)
	}
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	defer sub.Close()
	rules := []alarm.Rule{{Devices: []string{"psu-*"}, Group: "power", Limits: lim()}}
	eng, err := alarm.NewEngine(rules, sub, nil, alarm.Options{Logger: discard(), Sinks: []alarm.Sink{sink}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { _ = sink.Serve(ctx) })
	wg.Go(func() { _ = eng.Serve(ctx) })
	w := eng.Watch(nil)
	defer w.Close()
	var seen []alarm.Transition
	waitFor := func(n int) {
		t.Helper()
		eventually.True(t, 30*time.Second, fmt.Sprintf("%d transitions", n), func() bool {
			seen = append(seen, w.Take()...)
			return len(seen) >= n
		})
	}
	pub := func(v float64) {
		hub.Publish(telemetry.Sample{Device: "psu-1", Channel: "v", Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
	}
	pub(45) // RAISED HIGH
	pub(55) // RAISED HIHI
	waitFor(2)
	if _, err := eng.Ack(ctx, "psu-1", "v", "ann", "seen it"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Shelve(ctx, "psu-1", "v", time.Now().Add(time.Hour), "bob", "maintenance"); err != nil {
		t.Fatal(err)
	}
	l := lim()
	l.HiHi.Value, l.Hysteresis, l.Delay, l.DelaySamples, l.StaleAfter = 60.5, 0.25, 2*time.Second, 3, 5*time.Second
	l.Setpoint, l.Tolerance, l.ReadbackSeverity = "sp", 0.5, alarm.Major
	if _, err := eng.SetLimits(ctx, "psu-1", "v", l, "cy", "new limits"); err != nil {
		t.Fatal(err)
	}
	hub.Publish(telemetry.Sample{Device: "psu-1", Channel: "v", Quality: telemetry.Timeout, Err: "no reply"}) // COMM
	pub(20)
	// RAISED HIGH, RAISED HIHI, ACKED, SHELVED, LIMITS_CHANGED, CLEARED (the
	// new limits), RAISED COMM, CLEARED: all of them, or the last one can be
	// in the replay and not yet in seen.
	waitFor(8)
	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}

	since := seen[1].Time
	var got []string
	if err := h.Replay(ctx, since.UnixNano(), ingest.ReplayOptions{Page: 2}, func(ts []alarm.Transition) error {
		for _, tr := range ts {
			got = append(got, archived(tr))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, tr := range seen[1:] {
		// What the archive does not record.
		a := &tr.Alarm
		a.ShelvedUntil, a.Limits.ReadbackDelay = time.Time{}, 0
		if !a.HasValue {
			a.Value = 0
		}
		switch tr.Event {
		case alarm.Raised, alarm.Changed, alarm.Cleared:
			a.Since = tr.Time
		default:
			a.Since = time.Time{}
		}
		if tr.Event != alarm.Acked {
			a.AckedBy, a.AckComment, a.AckedAt = "", "", time.Time{}
		}
		if tr.Event != alarm.Shelved {
			a.ShelvedBy, a.ShelveComment = "", ""
		}
		want = append(want, archived(tr))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("replay from %v:\n%s\nwant:\n%s", since, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
