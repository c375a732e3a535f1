package sim_test

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

func parseFloat(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("reply %q is not a number: %v", s, err)
	}
	return v
}

func near(t *testing.T, what string, got, want, tol float64) {
	t.Helper()
	if math.Abs(got-want) > tol {
		t.Errorf("%s = %v, want %v ± %v", what, got, want, tol)
	}
}

func TestIDN(t *testing.T) {
	psu := simtest.SCPI(t, "psu-07", sim.Options{})
	c := dial(t, psu.Addr())
	want := "Switchyard,SIM-PSU," + sim.Serial("psu-07") + ",1.0"
	if got := c.query("*IDN?"); got != want {
		t.Errorf("*IDN? = %q, want %q", got, want)
	}
	// "\r\n" endings are accepted too.
	if got := c.query("*idn?\r"); got != want {
		t.Errorf("*idn? with CRLF = %q, want %q", got, want)
	}
	if sim.Serial("psu-07") == sim.Serial("psu-08") {
		t.Errorf("serials of different names are equal")
	}
}

func TestDefaultStateAndSetPoint(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{Seed: 1})
	c := dial(t, psu.Addr())
	near(t, "default MEAS:VOLT?", parseFloat(t, c.query("MEAS:VOLT?")), sim.DefaultSetPoint, 0.02)
	if got := c.query("OUTP?"); got != "1" {
		t.Errorf("default OUTP? = %q, want 1", got)
	}

	c.send("SOUR:VOLT 5.5")
	near(t, "MEAS:VOLT? after SOUR:VOLT 5.5", parseFloat(t, c.query("MEAS:VOLT?")), 5.5, 0.02)
	near(t, "MEAS:CURR? at 5.5 V", parseFloat(t, c.query("MEAS:CURR?")), 0.55, 0.01)
	near(t, "SOUR:VOLT?", parseFloat(t, c.query("SOUR:VOLT?")), 5.5, 0)
	if psu.SetPoint() != 5.5 || !psu.Output() {
		t.Errorf("SetPoint, Output = %v, %v, want 5.5, true", psu.SetPoint(), psu.Output())
	}
	if got := c.query("SYST:ERR?"); got != `0,"No error"` {
		t.Errorf("SYST:ERR? = %q, want no error", got)
	}
}

func TestCompoundQueryRepliesOnOneLine(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	parts := strings.Split(c.query("MEAS:VOLT?;MEAS:CURR?"), ";")
	if len(parts) != 2 {
		t.Fatalf("MEAS:VOLT?;MEAS:CURR? replied %d values %q, want 2", len(parts), parts)
	}
	near(t, "volts", parseFloat(t, parts[0]), 12, 0.02)
	near(t, "amps", parseFloat(t, parts[1]), 1.2, 0.01)

	// Commands among the queries run in order and add nothing to the reply.
	if got := c.query("SOUR:VOLT 3;SOUR:VOLT?;OUTP OFF;OUTP?"); got != "3.0000;0" {
		t.Errorf("mixed compound = %q, want 3.0000;0", got)
	}
	if psu.Counters().Queries != 4 {
		t.Errorf("Counters().Queries = %d, want 4", psu.Counters().Queries)
	}
}

func TestUnknownHeaderNoReplyAndError(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	c.send("FOO:BAR?")
	// If FOO:BAR? had a reply, it would arrive before *OPC?'s.
	if got := c.query("*OPC?"); got != "1" {
		t.Fatalf("reply after unknown header = %q, want *OPC?'s 1", got)
	}
	if got := c.query("SYST:ERR?"); got != `-113,"Undefined header"` {
		t.Errorf("SYST:ERR? = %q, want -113", got)
	}
	if got := c.query("SYST:ERR?"); got != `0,"No error"` {
		t.Errorf("second SYST:ERR? = %q, want the queue empty", got)
	}
	// A failing unit in a compound line gets no reply; the others do.
	if got := c.query("MEAS:VOLT?;BOGUS?;*OPC?"); !strings.HasSuffix(got, ";1") || strings.Count(got, ";") != 1 {
		t.Errorf("compound with unknown unit = %q, want <volts>;1", got)
	}
}

func TestOutputOffReadsZero(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	c.send("OUTP OFF")
	near(t, "MEAS:VOLT? with output off", parseFloat(t, c.query("MEAS:VOLT?")), 0, 0.01)
	near(t, "MEAS:CURR? with output off", parseFloat(t, c.query("MEAS:CURR?")), 0, 0.001)
	if got := c.query("OUTP?"); got != "0" {
		t.Errorf("OUTP? = %q, want 0", got)
	}
	c.send("OUTPut:STATe on")
	near(t, "MEAS:VOLT? with output on again", parseFloat(t, c.query("MEAS:VOLT?")), 12, 0.02)
}

func TestBadParameters(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	for _, tc := range []struct{ cmd, wantErr string }{
		{"SOUR:VOLT 60.5", `-222,"Data out of range"`},
		{"SOUR:VOLT -1", `-222,"Data out of range"`},
		{"SOUR:VOLT abc", `-104,"Data type error"`},
		{"SOUR:VOLT NaN", `-104,"Data type error"`},
		{"SOUR:VOLT", `-109,"Missing parameter"`},
		{"OUTP maybe", `-104,"Data type error"`},
		{"MEAS:VOLT? 3", `-108,"Parameter not allowed"`},
		{"MEAS:VOLT 3", `-113,"Undefined header"`},
		{"SYST:VOLT?", `-113,"Undefined header"`},
	} {
		c.send(tc.cmd)
		if got := c.query("SYST:ERR?"); got != tc.wantErr {
			t.Errorf("%q then SYST:ERR? = %q, want %q", tc.cmd, got, tc.wantErr)
		}
	}
	if got := c.query("SOUR:VOLT?"); got != "12.0000" {
		t.Errorf("set-point after bad commands = %q, want it unchanged at 12.0000", got)
	}
}

func TestHeaderForms(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	c.send("SOUR:VOLT 7")
	for _, tc := range []struct{ query, want string }{
		{"SOUR:VOLT?", "7.0000"},
		{"source:voltage?", "7.0000"},
		{":SOURce:VOLTage?", "7.0000"},
		{"VOLT?", "7.0000"},
		{"volt?", "7.0000"},
		{"OUTPut?", "1"},
		{"outp:stat?", "1"},
		{"*OPC?", "1"},
		{"SYSTem:ERRor?", `0,"No error"`},
		{"syst:err:next?", `0,"No error"`},
		{"  OUTP?  ", "1"},
	} {
		if got := c.query(tc.query); got != tc.want {
			t.Errorf("%q = %q, want %q", tc.query, got, tc.want)
		}
	}
	for _, q := range []string{"MEASure:VOLTage?", "meas:volt:dc?", "MEAS:VOLTAGE?"} {
		near(t, q, parseFloat(t, c.query(q)), 7, 0.02)
	}
	// Forms between short and long are not SCPI.
	c.send("MEASU:VOLT?")
	if got := c.query("SYST:ERR?"); got != `-113,"Undefined header"` {
		t.Errorf("MEASU:VOLT? then SYST:ERR? = %q, want -113", got)
	}
	c.send("*RST")
	if got := c.query("SOUR:VOLT?"); got != "12.0000" {
		t.Errorf("SOUR:VOLT? after *RST = %q, want 12.0000", got)
	}
}

func TestErrorQueueOverflow(t *testing.T) {
	psu := simtest.SCPI(t, "psu-01", sim.Options{})
	c := dial(t, psu.Addr())
	c.send(strings.Repeat("BAD;", 20))
	var last string
	for range 16 {
		last = c.query("SYST:ERR?")
	}
	if last != `-350,"Queue overflow"` {
		t.Errorf("16th error = %q, want -350", last)
	}
	c.send("BAD")
	c.send("*CLS")
	if got := c.query("SYST:ERR?"); got != `0,"No error"` {
		t.Errorf("SYST:ERR? after *CLS = %q, want no error", got)
	}
}

func TestSameSeedSameNoise(t *testing.T) {
	frozen := func() time.Time { return time.Unix(1000, 0) }
	read := func() string {
		psu := simtest.SCPI(t, "psu-01", sim.Options{Seed: 42, Now: frozen})
		return dial(t, psu.Addr()).query("MEAS:VOLT?;MEAS:VOLT?;MEAS:CURR?")
	}
	if a, b := read(), read(); a != b {
		t.Errorf("same seed and clock gave %q and %q", a, b)
	}
}
