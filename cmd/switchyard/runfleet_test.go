package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
)

// TestRunFleetWithoutControl: with no control API (--control ""), the fleet is
// served until ctx ends; it used to be closed at once, so the demo's devices
// never connected.
func TestRunFleetWithoutControl(t *testing.T) {
	fleet, err := sim.NewFleet(sim.FleetSpec{SCPI: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runFleet(ctx, fleet, "", slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	addr := fleet.Instruments()[0].Addr()
	eventually.True(t, 20*time.Second, "the instrument accepts a connection", func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	select {
	case err := <-done:
		t.Fatalf("runFleet returned %v before its context ended", err)
	default:
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("runFleet = %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("runFleet did not return after its context ended")
	}
}
