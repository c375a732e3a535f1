package sim_test

import (
	"context"
	"errors"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
)

func TestFleet(t *testing.T) {
	f, err := sim.NewFleet(sim.FleetSpec{SCPI: 12, Lines: 2, Seed: 1, PushHz: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Serve(ctx) }()

	all := f.Instruments()
	if len(all) != 14 || all[0].Name() != "psu-01" || all[11].Name() != "psu-12" || all[12].Name() != "env-01" {
		t.Fatalf("names: first %s, 12th %s, 13th %s", all[0].Name(), all[11].Name(), all[12].Name())
	}
	if f.Instrument("psu-99") != nil {
		t.Errorf("Instrument(psu-99) != nil")
	}
	psu, env := f.Instrument("psu-03"), f.Instrument("env-02")
	if psu.Kind() != sim.KindSCPI || env.Kind() != sim.KindLines {
		t.Errorf("kinds: %s, %s", psu.Kind(), env.Kind())
	}
	seen := make(map[string]bool)
	for _, i := range all {
		if seen[i.Addr()] {
			t.Errorf("address %s used twice", i.Addr())
		}
		seen[i.Addr()] = true
	}

	c := dial(t, psu.Addr())
	c.query("MEAS:VOLT?;MEAS:CURR?")
	e := dial(t, env.Addr())
	e.readLine(replyTimeout)
	if got := psu.Counters(); got.Accepted != 1 || got.Active != 1 || got.Queries != 2 {
		t.Errorf("psu-03 counters = %+v, want 1 accepted, 1 active, 2 queries", got)
	}
	if got := env.Counters(); got.Lines < 1 {
		t.Errorf("env-02 counters = %+v, want lines >= 1", got)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(replyTimeout):
		t.Fatal("Serve did not return after cancel")
	}
	if _, err := net.Dial("tcp", psu.Addr()); err == nil {
		t.Errorf("dial after Serve returned succeeded")
	}
	if err := f.Serve(context.Background()); !errors.Is(err, sim.ErrClosed) {
		t.Errorf("second Serve = %v, want ErrClosed", err)
	}
	f.Close() // idempotent
}

func TestFleetBasePort(t *testing.T) {
	// A port the kernel just handed out is free, but another process may take
	// it between the close and NewFleet: then try another, rather than skip
	// the check in exactly the case that races.
	var f *sim.Fleet
	var port int
	for attempt := 0; f == nil; attempt++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if f, err = sim.NewFleet(sim.FleetSpec{SCPI: 1, BasePort: port}); err != nil && attempt == 20 {
			t.Fatalf("NewFleet on a port just freed failed 20 times: %v", err)
		}
	}
	defer f.Close()
	if want := "127.0.0.1:" + strconv.Itoa(port); f.Instrument("psu-01").Addr() != want {
		t.Errorf("Addr = %s, want %s", f.Instrument("psu-01").Addr(), want)
	}

	// A taken port fails the whole fleet and releases what it had opened.
	if _, err := sim.NewFleet(sim.FleetSpec{SCPI: 1, BasePort: port}); err == nil {
		t.Errorf("NewFleet on a taken port: err = nil")
	}
}

func TestFleetSpecErrors(t *testing.T) {
	for _, spec := range []sim.FleetSpec{{SCPI: -1}, {Lines: 2, BasePort: 65535}, {BasePort: -5}} {
		if _, err := sim.NewFleet(spec); err == nil {
			t.Errorf("NewFleet(%+v): err = nil", spec)
		}
	}
	if _, err := sim.NewLines("env", sim.Options{PushHz: -1}); err == nil {
		t.Errorf("NewLines with PushHz -1: err = nil")
	}
}

func TestManyNames(t *testing.T) {
	f, err := sim.NewFleet(sim.FleetSpec{Lines: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if f.Instrument("env-001") == nil || f.Instrument("env-100") == nil {
		t.Errorf("with 100 pushers, want names env-001..env-100")
	}
}
