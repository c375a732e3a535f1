package alarm_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/telemetry"
)

// engineRig is one node's engine fed by its own hub.
type engineRig struct {
	hub    *telemetry.Hub
	eng    *alarm.Engine
	rec    *recorder
	cancel context.CancelFunc
	done   chan error
}

func startEngine(t *testing.T, delay time.Duration) *engineRig {
	hub := telemetry.NewHub(nil)
	var feed devicemgr.StateFeed
	l := lim()
	l.Delay = delay
	rules := []alarm.Rule{{Devices: []string{"psu-*"}, Channels: []string{"voltage"}, Limits: l}}
	r := &engineRig{hub: hub, rec: &recorder{}, done: make(chan error, 1)}
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
	t.Cleanup(sub.Close)
	states := devicemgr.StatusWatch{StateWatch: feed.Watch()}
	t.Cleanup(states.Close)
	eng, err := alarm.NewEngine(rules, sub, states, alarm.Options{Sinks: []alarm.Sink{r.rec}, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	r.eng = eng
	ctx, cancel := context.WithCancel(t.Context())
	r.cancel = cancel
	go func() { r.done <- eng.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-r.done })
	return r
}

func (r *engineRig) publish(v float64) {
	r.hub.Publish(telemetry.Sample{Device: "psu-1", Channel: "voltage", Value: telemetry.Float(v), TimeNs: time.Now().UnixNano()})
}

// The owner of psu-1 raised HIHI and an operator acknowledged it; the owner
// dies and another node's engine restores the saved state: the alarm that
// still holds is neither raised again nor unacknowledged, and what follows
// (it clears, it comes back) behaves as on the first node.
func TestRestoreKeepsTheAcknowledgement(t *testing.T) {
	for _, delay := range []time.Duration{0, 2 * time.Second} {
		synctest.Test(t, func(t *testing.T) {
			first := startEngine(t, delay)
			first.publish(55)
			time.Sleep(3 * time.Second)
			first.publish(55)
			synctest.Wait()
			ctx := context.Background()
			a, err := first.eng.Ack(ctx, "psu-1", "voltage", "ann", "seen")
			if err != nil || a.Condition != alarm.HiHi || !a.Acked {
				t.Fatalf("ack on the first node: %+v, %v", a, err)
			}
			saved := alarm.OperatorOf(&a)

			second := startEngine(t, delay)
			synctest.Wait() // its Serve runs
			if err := second.eng.Restore(ctx, []alarm.Operator{saved}); err != nil {
				t.Fatal(err)
			}
			second.publish(56)
			time.Sleep(3 * time.Second)
			second.publish(56)
			synctest.Wait()
			got, err := second.eng.Get(ctx, "psu-1", "voltage")
			if err != nil {
				t.Fatal(err)
			}
			if !got.Acked || got.AckedBy != "ann" || got.Latched != alarm.Major || got.Condition != alarm.HiHi {
				t.Errorf("after restore (delay %v): %+v, want HIHI latched MAJOR acknowledged by ann", delay, got)
			}
			if ev := events(second.rec.snapshot()); len(ev) != 0 {
				t.Errorf("after restore (delay %v): transitions %v, want none while the condition holds", delay, ev)
			}
			// It clears, then comes back: raised again and unacknowledged, as always.
			second.publish(12)
			time.Sleep(3 * time.Second)
			second.publish(12)
			second.publish(60)
			time.Sleep(3 * time.Second)
			second.publish(60)
			synctest.Wait()
			if got, _ := second.eng.Get(ctx, "psu-1", "voltage"); got.Acked || got.Condition != alarm.HiHi {
				t.Errorf("raised again after clearing: %+v, want unacknowledged HIHI", got)
			}
		})
	}
}

func (r *recorder) snapshot() []alarm.Transition {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]alarm.Transition(nil), r.ts...)
}
