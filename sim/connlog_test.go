package sim_test

import (
	"net"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// The connection log is what the cluster tests check "never two owners"
// against: two connections open at once are an overlap, one after the other
// are not.
func TestConnectionLogOverlaps(t *testing.T) {
	f := simtest.Fleet(t, sim.FleetSpec{SCPI: 1})
	in := f.Instruments()[0]
	waitClosed := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			log := in.Connections()
			closed := 0
			for _, c := range log {
				if !c.Closed.IsZero() {
					closed++
				}
			}
			if len(log) >= n && closed == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("connection log %+v: want %d closed", log, n)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	c1, err := net.Dial("tcp", in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	c1.Close()
	waitClosed(1)
	c2, err := net.Dial("tcp", in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(in.Connections()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if o := in.Overlaps(); len(o) != 0 {
		t.Errorf("one connection after the other reported as overlapping: %v", o)
	}
	c3, err := net.Dial("tcp", in.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	for len(in.Connections()) < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if o := in.Overlaps(); len(o) != 1 {
		t.Errorf("two open connections: overlaps %v, want one", o)
	}
}
