package sim

import "testing"

func TestParseUnit(t *testing.T) {
	for _, tc := range []struct {
		in     string
		header string
		query  bool
		arg    string
		ok     bool
	}{
		{"*IDN?", "*IDN", true, "", true},
		{"*idn?", "*IDN", true, "", true},
		{"MEAS:VOLT?", "MEAS:VOLT", true, "", true},
		{":measure:voltage:dc?", "MEAS:VOLT", true, "", true},
		{"MeAs:CuRr?", "MEAS:CURR", true, "", true},
		{"SOUR:VOLT 12.5", "SOUR:VOLT", false, "12.5", true},
		{"VOLT\t3", "SOUR:VOLT", false, "3", true},
		{"  source:voltage   7  ", "SOUR:VOLT", false, "7", true},
		{"OUTP:STAT ON", "OUTP", false, "ON", true},
		{"outp off", "OUTP", false, "off", true},
		{"SYST:ERR:NEXT?", "SYST:ERR", true, "", true},
		{"SYSTEM:ERROR?", "SYST:ERR", true, "", true},
		{"MEASU:VOLT?", "", true, "", false},
		{"FOO?", "", true, "", false},
		{":", "", false, "", false},
		{"*", "*", false, "", false},
		{"MEAS::VOLT?", "", true, "", false},
	} {
		cmd, ok := parseUnit(tc.in)
		if ok != tc.ok || ok && (cmd.header != tc.header || cmd.query != tc.query || cmd.arg != tc.arg) {
			t.Errorf("parseUnit(%q) = %+v, %v; want {%s %v %q}, %v", tc.in, cmd, ok, tc.header, tc.query, tc.arg, tc.ok)
		}
	}
}
