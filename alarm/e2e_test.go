package alarm_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
	"github.com/switchyard/switchyard/telemetry"
)

// transitions hands out a watch's transitions one at a time, in order.
type transitions struct {
	w       *alarm.Watch
	pending []alarm.Transition
}

// next returns the next transition, which must be want ("EVENT CONDITION"):
// any other transition fails the test, as does none within bound (which only
// bounds a broken run; a healthy one is far quicker).
func (ts *transitions) next(t *testing.T, want string, bound time.Duration) alarm.Transition {
	t.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for len(ts.pending) == 0 {
		select {
		case <-ts.w.Ready():
			ts.pending = ts.w.Take()
		case <-deadline.C:
			t.Fatalf("no transition within %v, want %q", bound, want)
		}
	}
	tr := ts.pending[0]
	ts.pending = ts.pending[1:]
	if got := tr.Event.String() + " " + tr.Alarm.Condition.String(); got != want {
		t.Fatalf("transition %q (%s), want %q", got, tr.Alarm.Message, want)
	}
	return tr
}

// TestEndToEndRampAndCut ramps a simulated power supply's set-point through its
// limits, expects each transition on a watch and in QuestDB, then cuts the device
// and expects INVALID.
func TestEndToEndRampAndCut(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	psu := simtest.SCPI(t, "psu-1", sim.Options{Seed: 3})

	hub := telemetry.NewHub(nil)
	spec := devicemgr.Spec{
		Name: "psu-1", Address: psu.Addr(), Driver: devicemgr.DriverSCPI,
		ReplyTimeout: time.Second, BackoffMin: 100 * time.Millisecond, BackoffMax: time.Second,
		Channels: []devicemgr.ChannelSpec{{Name: "voltage", Query: "MEAS:VOLT?", Period: 50 * time.Millisecond}},
		Commands: []devicemgr.CommandSpec{{Name: "set", Template: "SOUR:VOLT {v}", Args: []devicemgr.ArgSpec{{Name: "v"}}}},
	}
	mgr, err := devicemgr.New([]devicemgr.Spec{spec}, hub, devicemgr.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	limits := lim()
	limits.HiHi.Value, limits.High.Value = 17, 15
	limits.Low.Value, limits.LoLo.Value = 4, 2
	limits.Hysteresis = 0.2
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
	defer sub.Close()
	states := mgr.WatchStatus()
	defer states.Close()
	sink, err := alarm.NewArchive(questDB(t, qdb), ingest.Options{Table: table, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := alarm.NewEngine([]alarm.Rule{{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Limits: limits}},
		sub, states, alarm.Options{Sinks: []alarm.Sink{sink}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	w := eng.Watch(nil)
	defer w.Close()
	trs := &transitions{w: w}

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range []interface{ Serve(context.Context) error }{sink, eng, mgr.Devices()[0]} {
		wg.Go(func() { _ = s.Serve(ctx) })
	}
	defer func() { cancel(); wg.Wait() }()

	set := func(v float64) {
		t.Helper()
		cctx, c := context.WithTimeout(ctx, 30*time.Second)
		defer c()
		for {
			_, err := mgr.Send(cctx, "psu-1", devicemgr.Command{Name: "set", Args: []string{fmt.Sprint(v)}})
			if err == nil {
				return
			}
			if cctx.Err() != nil {
				t.Fatalf("set %v: %v", v, err)
			}
			time.Sleep(100 * time.Millisecond) // not connected yet
		}
	}
	steps := []struct {
		v    float64
		want string
	}{
		{16, "RAISED HIGH"}, {18, "RAISED HIHI"}, {12, "CLEARED NONE"},
		{3, "RAISED LOW"}, {1, "RAISED LOLO"}, {12, "CLEARED NONE"},
	}
	// Every transition, in order: nothing more, nothing skipped.
	for _, s := range steps {
		set(s.v)
		tr := trs.next(t, s.want, 10*time.Second)
		if tr.Alarm.Limits.HiHi.Value != 17 {
			t.Fatalf("transition without the limits in force: %+v", tr)
		}
	}
	// Cut the device: refuse new connections and drop the open one. The
	// device sees the drop at its next poll (50 ms) and the engine raises
	// COMM from that state change: well within the 1 s reply timeout, which
	// is what a cut must never wait for (the bound on the wait is only for a
	// broken run; the transition's own time is what is checked).
	if _, err := psu.UpdateFaults(func(f *sim.Faults) { f.Refuse = true }); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	psu.Drop()
	tr := trs.next(t, "RAISED COMM", 10*time.Second)
	// INVALID for the cut itself: the dropped connection (EOF) or the refused
	// reconnection, as the device or its COMM_ERROR reading reported it.
	if msg := tr.Alarm.Message; tr.Alarm.Severity != alarm.Invalid || !strings.Contains(msg, "EOF") && !strings.Contains(msg, "refused") {
		t.Fatalf("cut: %+v, want INVALID naming the dropped connection", tr)
	}
	if after := tr.Time.Sub(cut); after > spec.ReplyTimeout {
		t.Fatalf("COMM raised %v after the cut, more than the %v reply timeout", after, spec.ReplyTimeout)
	}

	// QuestDB holds every RAISED with the limits in force.
	ingesttest.WaitCount(t, qdb, table, "event = 'RAISED'", 5, 60*time.Second)
	qctx, qc := context.WithTimeout(context.Background(), 10*time.Second)
	defer qc()
	n, err := ingest.QueryInt(qctx, qdb, `SELECT count() FROM "`+table+`" WHERE event = 'RAISED' AND cond = 'HIHI' AND hihi = 17 AND severity = 'MAJOR'`)
	if err != nil || n != 1 {
		t.Fatalf("HIHI row: %d, %v", n, err)
	}
}
