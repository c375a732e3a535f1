// Package simtest starts simulated instruments for tests: each helper serves what it
// starts until the test ends and fails the test if it does not stop cleanly.
package simtest

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
)

// stopTimeout bounds how long a cleanup waits for Serve to return.
const stopTimeout = 10 * time.Second

// SCPI starts a simulated power supply called name and serves it until the test ends.
func SCPI(t testing.TB, name string, opts sim.Options) *sim.Instrument {
	t.Helper()
	i, err := sim.NewSCPI(name, opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, i)
	return i
}

// Lines starts a simulated line pusher called name and serves it until the test ends.
func Lines(t testing.TB, name string, opts sim.Options) *sim.Instrument {
	t.Helper()
	i, err := sim.NewLines(name, opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, i)
	return i
}

// Fleet starts a fleet of simulated instruments and serves it until the test ends.
func Fleet(t testing.TB, spec sim.FleetSpec) *sim.Fleet {
	t.Helper()
	f, err := sim.NewFleet(spec)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, f)
	return f
}

func serve(t testing.TB, s interface{ Serve(context.Context) error }) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-errc:
			if err != nil {
				t.Errorf("simtest: Serve: %v", err)
			}
		case <-time.After(stopTimeout):
			t.Errorf("simtest: Serve did not return within %v of its context ending", stopTimeout)
		}
	})
}

// Modbus starts a simulated Modbus TCP temperature controller called name and
// serves it until the test ends.
func Modbus(t testing.TB, name string, opts sim.Options) *sim.Instrument {
	t.Helper()
	i, err := sim.NewModbus(name, opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, i)
	return i
}

// Balance starts a simulated CSV-pushing balance called name and serves it
// until the test ends.
func Balance(t testing.TB, name string, opts sim.Options) *sim.Instrument {
	t.Helper()
	i, err := sim.NewBalance(name, opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, i)
	return i
}

// Thermometer starts a simulated JSON-pushing thermometer called name and
// serves it until the test ends.
func Thermometer(t testing.TB, name string, opts sim.Options) *sim.Instrument {
	t.Helper()
	i, err := sim.NewThermometer(name, opts)
	if err != nil {
		t.Fatalf("simtest: %v", err)
	}
	serve(t, i)
	return i
}
