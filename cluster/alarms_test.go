package cluster

import (
	"context"
	"testing"

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
	if err := cb.Alarms().Clear(ctx, "psu.1", "current"); err != nil {
		t.Fatal(err)
	}
	if got, _ := cb.Alarms().Load(ctx, "psu.1"); len(got) != 1 {
		t.Errorf("after Clear: %+v, want one", got)
	}
	if got, _ := cb.Alarms().Load(ctx, "none"); len(got) != 0 {
		t.Errorf("a device without alarms: %+v", got)
	}
}
