package sim_test

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestPersonalities: each personality talks as its documentation says, on the
// wire.
func TestPersonalities(t *testing.T) {
	t.Run("acks", func(t *testing.T) {
		p, err := sim.LookupPersonality("acks")
		if err != nil {
			t.Fatal(err)
		}
		c := dial(t, simtest.SCPI(t, "a", sim.Options{Personality: p}).Addr())
		for _, tc := range []struct{ line, want string }{
			{"SOUR:VOLT 5", "OK"},
			{"SOUR:VOLT?", "5.0000"},
			{"SOUR:VOLT 99", "ERR data out of range"},
			{"*OPC?", "ERR undefined header"},
			{"MEAS:VOLT?;MEAS:CURR?", "ERR joined messages not supported"},
			{"BOGUS 1", "ERR undefined header"},
		} {
			if got := c.query(tc.line); got != tc.want {
				t.Errorf("%q: %q, want %q", tc.line, got, tc.want)
			}
		}
	})
	t.Run("crlf and echo", func(t *testing.T) {
		c := dial(t, simtest.SCPI(t, "e", sim.Options{Personality: sim.Personality{CRLF: true, Echo: true}}).Addr())
		c.send("OUTP OFF")
		if got, err := c.readLine(replyTimeout); got != "OUTP OFF\r" || err != nil {
			t.Fatalf("echo of a write: %q, %v", got, err)
		}
		c.expectSilence(100 * time.Millisecond) // a write has no reply of its own
		c.send("OUTP?")
		for _, want := range []string{"OUTP?\r", "0\r"} {
			if got, err := c.readLine(replyTimeout); got != want || err != nil {
				t.Fatalf("got %q, %v; want %q", got, err, want)
			}
		}
	})
	t.Run("chatty", func(t *testing.T) {
		c := dial(t, simtest.SCPI(t, "c", sim.Options{Personality: sim.Personality{Unsolicited: 20 * time.Millisecond}}).Addr())
		got, err := c.readLine(5 * time.Second)
		if err != nil || !strings.HasPrefix(got, "EVENT 1 ") {
			t.Fatalf("first unsolicited line: %q, %v", got, err)
		}
	})
	t.Run("slow start", func(t *testing.T) {
		psu := simtest.SCPI(t, "s", sim.Options{Personality: sim.Personality{SlowStart: 300 * time.Millisecond}})
		start := time.Now()
		c := dial(t, psu.Addr())
		c.query("*IDN?")
		if waited := time.Since(start); waited < 300*time.Millisecond {
			t.Fatalf("first reply after %v, want >= 300ms", waited)
		}
	})
	t.Run("flaky", func(t *testing.T) {
		c := dial(t, simtest.SCPI(t, "f", sim.Options{Personality: sim.Personality{DropEvery: 3}}).Addr())
		c.query("*IDN?")
		c.query("*IDN?")
		c.send("*IDN?")
		rest, err := io.ReadAll(c.rd)
		if err != nil || len(rest) == 0 || strings.Contains(string(rest), "\n") {
			t.Fatalf("third reply: %q, %v; want half a line, then the connection closed", rest, err)
		}
	})
	t.Run("tagged", func(t *testing.T) {
		c := dial(t, simtest.SCPI(t, "t", sim.Options{Personality: sim.Personality{Tagged: true}}).Addr())
		for range 3 {
			if v := parseFloat(t, c.query("MEAS:VOLT?")); v <= 10 || v >= 11 {
				t.Fatalf("MEAS:VOLT? %v, want 10.xxxx", v)
			}
			if v := parseFloat(t, c.query("MEAS:CURR?")); v <= 20 || v >= 21 {
				t.Fatalf("MEAS:CURR? %v, want 20.xxxx", v)
			}
		}
	})
	if _, err := sim.LookupPersonality("grumpy"); err == nil {
		t.Error("an unknown personality was found")
	}
	if _, err := sim.NewFleet(sim.FleetSpec{SCPI: 1, Personalities: map[string]string{"psu-09": "acks"}}); err == nil {
		t.Error("a personality for an instrument the fleet does not have was accepted")
	}
}
