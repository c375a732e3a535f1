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

func TestInterestWants(t *testing.T) {
	sp := lim()
	sp.Setpoint, sp.Tolerance = "vset", 0.5
	in := alarm.NewInterest([]alarm.Rule{
		{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Limits: sp},
		{Channels: []string{"temp*"}, Limits: lim()},
	})
	for _, tc := range []struct {
		device, channel string
		want            bool
	}{
		{"psu-01", "voltage", true},
		{"psu-01", "vset", true}, // the set-point of a rule on its device
		{"psu-01", "current", false},
		{"env-01", "vset", false}, // not a device of that rule
		{"env-01", "temp_in", true},
		{"env-01", "pressure", false},
	} {
		for range 2 { // the second answer comes from the cache
			if got := in.Wants(&telemetry.Sample{Device: tc.device, Channel: tc.channel}); got != tc.want {
				t.Errorf("Wants(%s/%s) = %v, want %v", tc.device, tc.channel, got, tc.want)
			}
		}
	}
}

// TestEngineInterest: an engine subscribed with its Interest is not sent the
// samples of channels without alarms (not even woken), and limits set at run
// time on such a channel (and on its set-point) bring its samples to it.
func TestEngineInterest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		rules := []alarm.Rule{{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Limits: lim()}}
		in := alarm.NewInterest(rules)
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless, Match: in.Wants})
		defer sub.Close()
		eng, err := alarm.NewEngine(rules, sub, nil, alarm.Options{Logger: discard(), Interest: in})
		if err != nil {
			t.Fatal(err)
		}
		all := eng.Watch(nil)
		defer all.Close()
		pub := func(dev, ch string, v float64) {
			hub.Publish(telemetry.Sample{Device: dev, Channel: ch, Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
		}
		// Before Serve runs, the queue shows what reaches the engine.
		pub("psu-01", "current", 99)
		pub("psu-01", "voltage", 12)
		if n := sub.Len(); n != 1 {
			t.Fatalf("%d samples queued for the engine, want 1 (voltage; current has no alarm)", n)
		}
		select {
		case <-sub.Ready():
		default:
			t.Fatal("the engine was not woken for voltage")
		}
		pub("psu-01", "current", 98)
		select {
		case <-sub.Ready():
			t.Fatal("the engine was woken for current, which has no alarm")
		default:
		}

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- eng.Serve(ctx) }()
		synctest.Wait()
		if _, err := eng.SetLimits(ctx, "psu-01", "current", lim(), "op", ""); err != nil {
			t.Fatal(err)
		}
		pub("psu-01", "current", 45)
		synctest.Wait()
		got := events(all.Take())
		want := []string{"LIMITS_CHANGED psu-01/current NONE", "RAISED psu-01/current HIGH"}
		if !slices.Equal(got, want) {
			t.Errorf("after SetLimits on current: %v, want %v", got, want)
		}
		// A read-back check set at run time: the set-point channel's samples
		// reach the engine too.
		if _, err := eng.SetLimits(ctx, "psu-01", "vout", alarm.Limits{Setpoint: "vset", Tolerance: 0.5}, "op", ""); err != nil {
			t.Fatal(err)
		}
		pub("psu-01", "vout", 10)
		pub("psu-01", "vset", 20)
		synctest.Wait()
		got = events(all.Take())
		want = []string{"LIMITS_CHANGED psu-01/vout NONE", "RAISED psu-01/vout READBACK"}
		if !slices.Equal(got, want) {
			t.Errorf("after a set-point far from the read-back: %v, want %v", got, want)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestEngineInterestFollowsSetRules: after a reload of the rules, the samples
// of a channel only the new rules select reach the engine (and raise), those
// of a channel no rule selects any more do not, limits set at run time stay
// wanted, and a removed device's run-time limits are forgotten.
func TestEngineInterestFollowsSetRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		voltage := alarm.Rule{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Limits: lim()}
		in := alarm.NewInterest([]alarm.Rule{voltage})
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless, Match: in.Wants})
		defer sub.Close()
		var feed devicemgr.StateFeed
		states := devicemgr.StatusWatch{StateWatch: feed.Watch()}
		defer states.Close()
		eng, err := alarm.NewEngine([]alarm.Rule{voltage}, sub, states, alarm.Options{Logger: discard(), Interest: in})
		if err != nil {
			t.Fatal(err)
		}
		all := eng.Watch(nil)
		defer all.Close()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error)
		go func() { done <- eng.Serve(ctx) }()
		pub := func(dev, ch string, v float64) {
			hub.Publish(telemetry.Sample{Device: dev, Channel: ch, Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
		}
		wants := func(dev, ch string) bool { return in.Wants(&telemetry.Sample{Device: dev, Channel: ch}) }
		synctest.Wait()
		pub("psu-01", "current", 99) // no rule: the engine never sees it
		if _, err := eng.SetLimits(ctx, "psu-02", "aux", lim(), "op", ""); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		all.Take()

		current := alarm.Rule{Devices: []string{"psu-*"}, Channels: []string{"current"}, Limits: lim()}
		if err := eng.SetRules(ctx, []alarm.Rule{current}, "alice"); err != nil {
			t.Fatal(err)
		}
		if !wants("psu-01", "current") || wants("psu-01", "voltage") || !wants("psu-02", "aux") {
			t.Errorf("after the reload: wants current %v (want true), voltage %v (want false), run-time aux %v (want true)",
				wants("psu-01", "current"), wants("psu-01", "voltage"), wants("psu-02", "aux"))
		}
		pub("psu-01", "current", 45)
		synctest.Wait()
		if got, want := events(all.Take()), []string{"RAISED psu-01/current HIGH"}; !slices.Equal(got, want) {
			t.Errorf("current above its new rule's limit: %v, want %v", got, want)
		}

		feed.Publish(devicemgr.Info{Name: "psu-02", State: devicemgr.Stopped, Removed: true})
		synctest.Wait()
		if wants("psu-02", "aux") {
			t.Error("a removed device's run-time limits still wanted")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}
