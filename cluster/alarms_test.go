package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
)

// An acknowledgement saved by one node is what another node loads when it
// takes the device over, also after the first node is gone.
func TestAlarmStateSurvivesTheOwner(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	ctx := context.Background()
	for _, st := range []AlarmState{
		{Device: "psu.1", Channel: "voltage", Latched: "MAJOR", Acked: true, AckedBy: "ann", AckComment: "seen", AckedAtNs: 42, Node: "a"},
		{Device: "psu.1", Channel: "current", Latched: "MINOR", ShelvedUntilNs: 99, ShelvedBy: "bob", Node: "a"},
		{Device: "psu.10", Channel: "voltage", Latched: "MINOR", Node: "a"},
	} {
		if err := ca.Alarms().Save(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	ca.NC.Close()
	got, err := cb.Alarms().Load(ctx, "psu.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Channel != "current" || got[1].Channel != "voltage" {
		t.Fatalf("loaded %+v, want psu.1's two channels only", got)
	}
	if v := got[1]; !v.Acked || v.AckedBy != "ann" || v.AckComment != "seen" || v.Latched != "MAJOR" {
		t.Errorf("voltage %+v: want the acknowledgement by ann", v)
	}
	if c := got[0]; c.ShelvedUntilNs != 99 || c.ShelvedBy != "bob" {
		t.Errorf("current %+v: want the shelf by bob", c)
	}
	if got, _ := cb.Alarms().Load(ctx, "none"); len(got) != 0 {
		t.Errorf("a device without alarms: %+v", got)
	}
	all, err := cb.Alarms().All(ctx)
	var keys []string
	for _, st := range all {
		keys = append(keys, st.Device+"/"+st.Channel)
	}
	if err != nil || fmt.Sprint(keys) != "[psu.1/current psu.1/voltage psu.10/voltage]" {
		t.Errorf("All: %v, %v; want every device's saved channels, sorted", keys, err)
	}
}

// Transitions an owner publishes reach every node's watch, each owner's in
// its order; a watch starts with what is published after it.
func TestAlarmTransitionsReachEveryNode(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	pub := NewPublisher(ca, "a", PublisherOptions{Logger: quiet()})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pub.PublishAlarm(ctx, "psu.1", []byte("before the watch")); err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	done := make(chan error, 1)
	go func() {
		done <- NewReader(cb, nil).WatchAlarms(ctx, func(dev string, tr []byte) error {
			got <- dev + ":" + string(tr)
			return nil
		})
	}()
	// The watch runs once a transition published now reaches it.
	eventually(t, 10*time.Second, "the watch runs", func() bool {
		if err := pub.PublishAlarm(ctx, "probe", []byte("x")); err != nil {
			t.Fatal(err)
		}
		select {
		case m := <-got:
			if m != "probe:x" {
				t.Errorf("the watch got %q, published before it started", m)
			}
			return true
		case <-time.After(100 * time.Millisecond):
			return false
		}
	})
	for _, m := range []string{"raised", "acked", "cleared"} {
		if err := pub.PublishAlarm(ctx, "psu.1", []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	for len(seen) < 3 {
		select {
		case m := <-got:
			if m != "probe:x" {
				seen = append(seen, m)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the watch saw %v", seen)
		}
	}
	if fmt.Sprint(seen) != "[psu.1:raised psu.1:acked psu.1:cleared]" {
		t.Errorf("watch saw %v", seen)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("watch ended with %v", err)
	}
}
