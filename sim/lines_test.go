package sim_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// parseLine parses "seq=1 temp=21.5 pressure=1013.2 flow=2.5" into its values.
func parseLine(t *testing.T, line string) map[string]float64 {
	t.Helper()
	vals := make(map[string]float64)
	for field := range strings.FieldsSeq(line) {
		k, v, ok := strings.Cut(field, "=")
		if !ok {
			t.Fatalf("line %q: field %q is not key=value", line, field)
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			t.Fatalf("line %q: %s: %v", line, k, err)
		}
		vals[k] = f
	}
	for _, k := range []string{"seq", "temp", "pressure", "flow"} {
		if _, ok := vals[k]; !ok {
			t.Fatalf("line %q has no %s", line, k)
		}
	}
	return vals
}

func TestPusherPushesIncreasingSeq(t *testing.T) {
	env := simtest.Lines(t, "env-01", sim.Options{PushHz: 100})
	c := dial(t, env.Addr())
	c.send("whatever the client says is ignored")
	for want := 1.0; want <= 5; want++ {
		line, err := c.readLine(replyTimeout)
		if err != nil {
			t.Fatal(err)
		}
		v := parseLine(t, line)
		if v["seq"] != want {
			t.Errorf("seq = %v, want %v", v["seq"], want)
		}
		if v["temp"] < 15 || v["temp"] > 30 || v["pressure"] < 1000 || v["pressure"] > 1030 || v["flow"] <= 0 {
			t.Errorf("implausible reading %q", line)
		}
	}
	// Each connection counts from 1.
	line, err := dial(t, env.Addr()).readLine(replyTimeout)
	if err != nil {
		t.Fatal(err)
	}
	if v := parseLine(t, line); v["seq"] != 1 {
		t.Errorf("second connection's first seq = %v, want 1", v["seq"])
	}
	if n := env.Counters().Lines; n < 6 {
		t.Errorf("Counters().Lines = %d, want >= 6", n)
	}
}

func TestPusherFaults(t *testing.T) {
	env := simtest.Lines(t, "env-01", sim.Options{PushHz: 100})
	c := dial(t, env.Addr())
	if _, err := c.readLine(replyTimeout); err != nil {
		t.Fatal(err)
	}

	env.SetFaults(sim.Faults{Garbage: true})
	// Lines already on the way may still be good; a garbage line must follow soon.
	for {
		line, err := c.readLine(replyTimeout)
		if err != nil {
			t.Fatalf("waiting for garbage: %v", err)
		}
		if !strings.HasPrefix(line, "seq=") {
			break
		}
	}

	env.SetFaults(sim.Faults{Hang: true})
	// Drain what was pushed before the fault took hold, then expect silence.
	for n := 0; ; n++ {
		if _, err := c.readLine(50 * time.Millisecond); err != nil {
			break
		}
		if n > 20 {
			t.Fatalf("still receiving lines %d reads after Hang", n)
		}
	}
	c.expectSilence(200 * time.Millisecond)
}
