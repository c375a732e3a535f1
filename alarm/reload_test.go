package alarm_test

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/telemetry"
)

// TestSetRulesReplacesTheRulesAtOnce reloads the rules: a channel whose rule
// changed gets the new limits (and raises under them), one no rule selects any
// more clears and is forgotten, one whose rule is unchanged keeps the limits
// an operator set, and a removed device's alarms end.
func TestSetRulesReplacesTheRulesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		var feed devicemgr.StateFeed
		rule := func(dev string, high float64) alarm.Rule {
			l := lim()
			l.High.Value = high
			return alarm.Rule{Devices: []string{dev}, Channels: []string{"voltage"}, Group: "power", Limits: l}
		}
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
		defer sub.Close()
		states := devicemgr.StatusWatch{StateWatch: feed.Watch()}
		defer states.Close()
		eng, err := alarm.NewEngine([]alarm.Rule{rule("a", 40), rule("b", 40), rule("c", 40), rule("d", 40)}, sub, states, alarm.Options{Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- eng.Serve(ctx) }()
		all := eng.Watch(nil)
		defer all.Close()
		pub := func(dev string, v float64) {
			hub.Publish(telemetry.Sample{Device: dev, Channel: "voltage", Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
		}
		for _, d := range []string{"a", "b", "c"} {
			pub(d, 30)
		}
		pub("d", 45)
		synctest.Wait()
		l := lim()
		l.High.Value = 35
		if _, err := eng.SetLimits(ctx, "c", "voltage", l, "ann", "operator's"); err != nil {
			t.Fatal(err)
		}
		all.Take()

		// a: tighter (raises), b: no rule any more, c: same rule (keeps ann's 35), d: removed device.
		if err := eng.SetRules(ctx, []alarm.Rule{rule("a", 25), rule("c", 40), rule("d", 40)}, "alice"); err != nil {
			t.Fatal(err)
		}
		feed.Publish(devicemgr.Info{Name: "d", State: devicemgr.Stopped, Removed: true})
		synctest.Wait()
		got := all.Take()
		if ev := events(got); !slices.Equal(ev, []string{"LIMITS_CHANGED a/voltage HIGH", "RAISED a/voltage HIGH", "LIMITS_CHANGED d/voltage NONE", "CLEARED d/voltage NONE"}) {
			t.Fatalf("transitions: %v", ev)
		}
		if got[0].Who != "alice" || got[0].Alarm.Limits.High.Value != 25 {
			t.Fatalf("limits change %+v", got[0])
		}
		list, err := eng.List(ctx, false)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range list {
			keys = append(keys, a.Key())
			if a.Key() == "c/voltage" && a.Limits.High.Value != 35 {
				t.Errorf("c lost the operator's limits: %+v", a.Limits)
			}
		}
		if !slices.Equal(keys, []string{"a/voltage", "c/voltage"}) {
			t.Fatalf("alarms after the reload: %v", keys)
		}
		if err := eng.SetRules(ctx, []alarm.Rule{{Devices: []string{"["}}}, "alice"); err == nil {
			t.Fatal("a bad rule was accepted")
		}
		cancel()
		<-done
	})
}
