package sim_test

import (
	"errors"
	"io"
	"net"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

func TestRefuseAndClearKeepsPort(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	open := dial(t, psu.Addr())
	open.query("*OPC?") // accepted before the fault

	if err := psu.SetFaults(sim.Faults{Refuse: true}); err != nil {
		t.Fatal(err)
	}
	if conn, err := net.Dial("tcp", psu.Addr()); !errors.Is(err, syscall.ECONNREFUSED) {
		if conn != nil {
			conn.Close()
		}
		t.Fatalf("dial while refusing: err = %v, want ECONNREFUSED", err)
	}
	if got := open.query("*OPC?"); got != "1" {
		t.Errorf("connection opened before Refuse replied %q, want it to keep working", got)
	}
	if !psu.Faults().Refuse {
		t.Errorf("Faults().Refuse = false while refusing")
	}

	addr := psu.Addr()
	if err := psu.SetFaults(sim.Faults{}); err != nil {
		t.Fatalf("clear Refuse: %v", err)
	}
	if psu.Addr() != addr {
		t.Errorf("Addr changed from %s to %s", addr, psu.Addr())
	}
	if got := dial(t, addr).query("*OPC?"); got != "1" {
		t.Errorf("after clearing Refuse, *OPC? = %q, want 1", got)
	}
}

func TestDropClosesConnections(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	a, b := dial(t, psu.Addr()), dial(t, psu.Addr())
	a.query("*OPC?")
	b.query("*OPC?") // both accepted and tracked
	if n := psu.Drop(); n != 2 {
		t.Errorf("Drop() = %d, want 2", n)
	}
	for _, c := range []*client{a, b} {
		if s, err := c.readLine(replyTimeout); !errors.Is(err, io.EOF) {
			t.Errorf("read after Drop = %q, %v, want EOF", s, err)
		}
	}
	if got := dial(t, psu.Addr()).query("*OPC?"); got != "1" {
		t.Errorf("new connection after Drop: *OPC? = %q, want 1", got)
	}
}

func TestHangKeepsConnectionSilent(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	if _, err := psu.UpdateFaults(func(f *sim.Faults) { f.Hang = true }); err != nil {
		t.Fatal(err)
	}
	c.send("MEAS:VOLT?")
	c.expectSilence(200 * time.Millisecond)
	late := dial(t, psu.Addr()) // still accepting
	late.send("*IDN?")
	late.expectSilence(100 * time.Millisecond)

	psu.SetFaults(sim.Faults{})
	if got := c.query("*OPC?"); got != "1" {
		t.Errorf("after clearing Hang, *OPC? = %q, want 1 (the hung query is not answered late)", got)
	}
}

func TestGarbageDoesNotParse(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	psu.SetFaults(sim.Faults{Garbage: true})
	got := c.query("MEAS:VOLT?")
	if _, err := strconv.ParseFloat(got, 64); err == nil {
		t.Errorf("garbage reply %q parses as a number", got)
	}
	if psu.Counters().Queries != 0 {
		t.Errorf("garbage counted as %d answered queries, want 0", psu.Counters().Queries)
	}
}

func TestSlowDelaysReply(t *testing.T) {
	const d = 150 * time.Millisecond
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	psu.SetFaults(sim.Faults{Slow: d})
	start := time.Now()
	c.query("MEAS:VOLT?")
	if took := time.Since(start); took < d {
		t.Errorf("reply came after %v, want at least %v", took, d)
	}
	if err := psu.SetFaults(sim.Faults{Slow: -time.Second}); err == nil {
		t.Errorf("SetFaults with negative Slow: err = nil")
	}
	if psu.Faults().Slow != d {
		t.Errorf("a rejected SetFaults changed Slow to %v", psu.Faults().Slow)
	}
}

func TestFaultsString(t *testing.T) {
	for _, tc := range []struct {
		f    sim.Faults
		want string
	}{
		{sim.Faults{}, "none"},
		{sim.Faults{Refuse: true, Garbage: true, Slow: 250 * time.Millisecond}, "refuse garbage slow=250ms"},
		{sim.Faults{Hang: true}, "hang"},
	} {
		if got := tc.f.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.f, got, tc.want)
		}
	}
}

func TestStopWithBusyConnections(t *testing.T) {
	psu, err := sim.NewSCPI("psu-01", sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := sim.NewLines("env-01", sim.Options{PushHz: 100})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- psu.Serve(t.Context()) }()
	go func() { done <- env.Serve(t.Context()) }()

	c := dial(t, psu.Addr())
	psu.SetFaults(sim.Faults{Slow: time.Hour})
	c.send("*OPC?") // its goroutine now sleeps for an hour
	e := dial(t, env.Addr())
	if _, err := e.readLine(replyTimeout); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // let the query reach the sleep; not needed for correctness

	psu.Close()
	env.Close()
	for range 2 {
		if err := <-done; err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	}
	if _, err := c.readLine(replyTimeout); !errors.Is(err, io.EOF) {
		t.Errorf("SCPI client after Close: %v, want EOF", err)
	}
	if err := psu.Serve(t.Context()); !errors.Is(err, sim.ErrClosed) {
		t.Errorf("Serve after Close = %v, want ErrClosed", err)
	}
	if err := psu.SetFaults(sim.Faults{}); err != nil {
		t.Errorf("clearing faults after Close: %v", err)
	}
}
