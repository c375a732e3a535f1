package alarm_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/telemetry"
)

// recorder is a Sink that keeps what it is given.
type recorder struct {
	mu sync.Mutex
	ts []alarm.Transition
}

func (r *recorder) Record(_ context.Context, t alarm.Transition) {
	r.mu.Lock()
	r.ts = append(r.ts, t)
	r.mu.Unlock()
}

func events(ts []alarm.Transition) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Event.String() + " " + t.Alarm.Key() + " " + t.Alarm.Condition.String()
	}
	return out
}

func TestEngine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		var feed devicemgr.StateFeed
		rules := []alarm.Rule{
			{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Group: "power", Limits: lim()},
			{Devices: []string{"env-*"}, Channels: []string{"pressure"}, Group: "vacuum", Limits: alarm.Limits{StaleAfter: 2 * time.Second}},
		}
		rec := &recorder{}
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
		defer sub.Close()
		states := devicemgr.StatusWatch{StateWatch: feed.Watch()}
		defer states.Close()
		eng, err := alarm.NewEngine(rules, sub, states, alarm.Options{Sinks: []alarm.Sink{rec}, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- eng.Serve(ctx) }()
		vacuum := eng.Watch(func(tr *alarm.Transition) bool { return tr.Alarm.Group == "vacuum" })
		defer vacuum.Close()
		all := eng.Watch(nil)
		defer all.Close()

		pub := func(dev, ch string, v float64) {
			hub.Publish(telemetry.Sample{Device: dev, Channel: ch, Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
		}
		pub("psu-01", "voltage", 12)
		pub("psu-01", "current", 99) // no rule: no alarm
		pub("env-01", "pressure", 1000)
		pub("psu-01", "voltage", 45)
		synctest.Wait()
		if got := events(all.Take()); !slices.Equal(got, []string{"RAISED psu-01/voltage HIGH"}) {
			t.Fatalf("after HIGH: %v", got)
		}
		// The device goes down: INVALID on its channels.
		feed.Publish(devicemgr.Info{Name: "psu-01", State: devicemgr.Backoff, LastError: "connection refused"})
		synctest.Wait()
		tr := all.Take()
		if got := events(tr); !slices.Equal(got, []string{"RAISED psu-01/voltage COMM"}) || tr[0].Alarm.Severity != alarm.Invalid {
			t.Fatalf("after down: %v", tr)
		}
		// Pressure stops arriving: STALE after 2 s, on the vacuum watch only.
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		if got := events(vacuum.Take()); !slices.Equal(got, []string{"RAISED env-01/pressure STALE"}) {
			t.Fatalf("vacuum watch: %v", got)
		}
		all.Take()
		// Operator actions.
		if _, err := eng.Ack(ctx, "psu-01", "voltage", "ann", "on it"); err != nil {
			t.Fatal(err)
		}
		if _, err := eng.Ack(ctx, "psu-01", "nope", "ann", ""); !errors.Is(err, alarm.ErrNotFound) {
			t.Fatalf("ack of unknown channel: %v", err)
		}
		feed.Publish(devicemgr.Info{Name: "psu-01", State: devicemgr.Connected})
		pub("psu-01", "voltage", 12)
		synctest.Wait()
		list, err := eng.List(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 1 || list[0].Key() != "env-01/pressure" {
			t.Fatalf("active after ack and recovery: %+v", list)
		}
		l := lim()
		l.High.Value = 11
		a, err := eng.SetLimits(ctx, "psu-01", "voltage", l, "ann", "tighter")
		if err != nil || a.Condition != alarm.High {
			t.Fatalf("set limits: %v %+v", err, a)
		}
		if _, err := eng.Shelve(ctx, "env-01", "pressure", time.Now().Add(time.Minute), "bob", "pump swap"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if got := events(all.Take()); !slices.Equal(got, []string{
			"ACKED psu-01/voltage COMM", "CLEARED psu-01/voltage NONE",
			"LIMITS_CHANGED psu-01/voltage HIGH", "RAISED psu-01/voltage HIGH",
			"SHELVED env-01/pressure STALE", "UNSHELVED env-01/pressure STALE",
		}) {
			t.Fatalf("operator actions: %v", got)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, err := eng.List(t.Context(), false); !errors.Is(err, alarm.ErrNotRunning) {
			t.Fatalf("List after Serve returned: %v", err)
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.ts) != 9 {
			t.Fatalf("sink got %d transitions, want 9: %v", len(rec.ts), events(rec.ts))
		}
	})
}

// TestEngineStoppedDeviceRaisesNothing: the server stopping its devices at shutdown
// (state STOPPED, DISCONNECTED samples) is not an alarm.
func TestEngineStoppedDeviceRaisesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		var feed devicemgr.StateFeed
		sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
		defer sub.Close()
		states := devicemgr.StatusWatch{StateWatch: feed.Watch()}
		defer states.Close()
		eng, err := alarm.NewEngine([]alarm.Rule{{Limits: lim()}}, sub, states, alarm.Options{Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = eng.Serve(ctx) }()
		w := eng.Watch(nil)
		defer w.Close()
		feed.Publish(devicemgr.Info{Name: "d", State: devicemgr.Connected})
		hub.Publish(telemetry.Sample{Device: "d", Channel: "c", Value: telemetry.Float(20)})
		synctest.Wait()
		feed.Publish(devicemgr.Info{Name: "d", State: devicemgr.Stopped})
		synctest.Wait()
		hub.Publish(telemetry.Sample{Device: "d", Channel: "c", Quality: telemetry.Disconnected, Err: "stopped"})
		synctest.Wait()
		if got := w.Take(); len(got) != 0 {
			t.Fatalf("stopping raised %v", events(got))
		}
		// Started again and failing: that is an alarm.
		feed.Publish(devicemgr.Info{Name: "d", State: devicemgr.Backoff, LastError: "refused"})
		synctest.Wait()
		if got := events(w.Take()); !slices.Equal(got, []string{"RAISED d/c COMM"}) {
			t.Fatalf("after restart and failure: %v", got)
		}
		cancel()
		synctest.Wait()
	})
}

// recordingEngine is an engine of one rule (lim) on every channel of hub's
// samples, recording its transitions.
func recordingEngine(t *testing.T) (*telemetry.Hub, *alarm.Engine, *recorder) {
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	t.Cleanup(sub.Close)
	rec := &recorder{}
	eng, err := alarm.NewEngine([]alarm.Rule{{Limits: lim()}}, sub, nil, alarm.Options{Logger: discard(), Sinks: []alarm.Sink{rec}})
	if err != nil {
		t.Fatal(err)
	}
	return hub, eng, rec
}

// TestEngineTransitionTimesAreUnique: transitions that happen at one instant
// (one batch of samples, one clock reading) get distinct times, increasing in
// the order they happened, at the archive's microsecond precision. Else the
// archive's DEDUP key (ts, device, channel, event) keeps only the last of two
// CHANGED transitions of one alarm, and a replay's cursor (WatchAlarms
// since_ns) cannot tell them apart.
func TestEngineTransitionTimesAreUnique(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub, eng, rec := recordingEngine(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		w := eng.Watch(nil)
		defer w.Close()
		// One batch, one instant (the bubble's clock stands still):
		// HIGH, HIHI, HIGH, HIHI of one channel, then a second channel.
		var batch []telemetry.Sample
		for i, v := range []float64{20, 45, 55, 45, 55} {
			batch = append(batch, telemetry.Sample{Device: "d", Channel: "c", Seq: uint64(i + 1), Value: telemetry.Float(v)})
		}
		batch = append(batch, telemetry.Sample{Device: "d", Channel: "e", Seq: 1, Value: telemetry.Float(60)})
		hub.Publish(batch...)
		go func() { _ = eng.Serve(ctx) }()
		synctest.Wait()
		got := w.Take()
		if len(got) < 5 {
			t.Fatalf("%d transitions, want at least 5: %v", len(got), events(got))
		}
		start := time.Now()
		keys := map[string]bool{}
		for i, tr := range got {
			if tr.Time.Nanosecond()%1000 != 0 {
				t.Errorf("transition %d: time %v is finer than a microsecond", i, tr.Time)
			}
			if tr.Time.Before(start.Truncate(time.Microsecond)) || tr.Time.Sub(start) > time.Duration(len(got))*time.Microsecond {
				t.Errorf("transition %d: time %v, want within %d µs of %v", i, tr.Time, len(got), start)
			}
			if i > 0 && !tr.Time.After(got[i-1].Time) {
				t.Errorf("transition %d (%s) at %v, not after transition %d at %v", i, events(got[i:i+1]), tr.Time, i-1, got[i-1].Time)
			}
			key := fmt.Sprint(tr.Time.UnixMicro(), tr.Alarm.Key(), tr.Event)
			if keys[key] {
				t.Errorf("two transitions with the archive key %s", key)
			}
			keys[key] = true
		}
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for i := range got {
			if !rec.ts[i].Time.Equal(got[i].Time) {
				t.Errorf("the archive got transition %d at %v, the watch at %v", i, rec.ts[i].Time, got[i].Time)
			}
		}
		cancel()
		synctest.Wait()
	})
}

// TestWatchAfter: a watch's After is the time of the newest transition
// before it: it gets exactly the (selected) transitions after that.
func TestWatchAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub, eng, rec := recordingEngine(t)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = eng.Serve(ctx) }()
		if after, ok := eng.Watch(nil).After(); !ok || after != time.Now().UnixMicro() {
			t.Fatalf("After = %d, %t before any transition, want the engine's start %d, true", after, ok, time.Now().UnixMicro())
		}
		for i, v := range []float64{45, 20, 55} {
			hub.Publish(telemetry.Sample{Device: "d", Channel: "c", Seq: uint64(i + 1), Value: telemetry.Float(v)})
			synctest.Wait()
		}
		w := eng.Watch(nil)
		defer w.Close()
		hub.Publish(telemetry.Sample{Device: "d", Channel: "c", Seq: 4, Value: telemetry.Float(20)})
		synctest.Wait()
		rec.mu.Lock()
		all := slices.Clone(rec.ts)
		rec.mu.Unlock()
		if after, ok := w.After(); len(all) != 4 || !ok || after != all[2].Time.UnixMicro() {
			t.Fatalf("After = %d, %t, want the third of %d transitions' time, true", after, ok, len(all))
		}
		if got := w.Take(); len(got) != 1 || !got[0].Time.Equal(all[3].Time) {
			t.Fatalf("the watch got %v, want the one transition after it", events(got))
		}
	})
}
