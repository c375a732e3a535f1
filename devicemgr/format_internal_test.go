package devicemgr

import (
	"strings"
	"testing"
)

func TestReplyFormats(t *testing.T) {
	for _, tc := range []struct {
		format, reply string
		want          []string // nil: no match
	}{
		{"%f", "12.5", []string{"12.5"}},
		{"%e", "+1.250000E+01", []string{"+1.250000E+01"}},
		{"VOLT %f;CURR %f", "VOLT 12.01;CURR 1.20", []string{"12.01", "1.20"}},
		{"VOLT %f;CURR %f", "VOLT 12.01;CURR", nil},
		{"%d,%*s %*s", `0,"No error"`, []string{"0"}},
		{"%x", "0x1F", []string{"31"}},
		{"%x", "ff", []string{"255"}},
		{"%s %s", "ON   LOCAL", []string{"ON", "LOCAL"}},
		{"T=%f C", "T=21.5 C", []string{"21.5"}},
		{"T=%f C", "T=21.5 K", nil},
		{"%f", "12.5 extra", nil},
		{"%f", "12.5  ", []string{"12.5"}},
		{"%d%%", "50%", []string{"50"}},
		{"%d", "abc", nil},
	} {
		f, err := CompileReplyFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		v, err := f.Match(tc.reply)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%q matched %q: %v", tc.format, tc.reply, v.byIndex)
			} else if !strings.Contains(err.Error(), tc.reply) {
				t.Errorf("%q on %q: error %v does not keep the reply", tc.format, tc.reply, err)
			}
			continue
		}
		if err != nil || strings.Join(v.byIndex, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q on %q: %v, %v; want %v", tc.format, tc.reply, v.byIndex, err, tc.want)
		}
	}
	re, err := CompileReplyFormat(`re:(?P<v>[0-9.]+)V,(?P<i>[0-9.]+)A`)
	if err != nil {
		t.Fatal(err)
	}
	v, err := re.Match("12.0V,1.5A")
	if got, _ := v.Name("i"); err != nil || got != "1.5" {
		t.Fatalf("regexp: %v %v", v, err)
	}
	for _, bad := range []string{"", "re:", "%q", "%", "%*", "re:("} {
		if _, err := CompileReplyFormat(bad); err == nil {
			t.Errorf("format %q accepted", bad)
		}
	}
}

// TestLiteralReplyFormats: a format without conversions (an acknowledgement
// such as "OK") or a regular expression without named groups checks the reply
// and yields no value.
func TestLiteralReplyFormats(t *testing.T) {
	for _, tc := range []struct {
		format string
		ok, no []string
	}{
		{"OK", []string{"OK", "OK  "}, []string{"ERR", "OK1", "1", ""}},
		{"re:OK", []string{"OK"}, []string{"ok", "NOK"}},
		{"re:OK|DONE", []string{"OK", "DONE"}, []string{"OKDONE"}},
		{"READY %%", []string{"READY %"}, []string{"READY"}},
	} {
		f, err := CompileReplyFormat(tc.format)
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		if f.NumValues() != 0 {
			t.Errorf("%q yields %d values, want none", tc.format, f.NumValues())
		}
		for _, r := range tc.ok {
			if _, err := f.Match(r); err != nil {
				t.Errorf("%q refused %q: %v", tc.format, r, err)
			}
		}
		for _, r := range tc.no {
			if _, err := f.Match(r); err == nil {
				t.Errorf("%q accepted %q", tc.format, r)
			}
		}
	}
}

func TestLineFormats(t *testing.T) {
	p := lineParser{format: LinesCSV}
	if f, err := p.parse("seq,mass_g,stable"); f != nil || err != nil {
		t.Fatalf("header: %v %v", f, err)
	}
	f, err := p.parse("1, 100.5,1")
	if err != nil || len(f) != 3 || f[1] != (field{"mass_g", "100.5"}) {
		t.Fatalf("row: %v %v", f, err)
	}
	if _, err := p.parse("1,2"); err == nil || !strings.Contains(err.Error(), "want 3 CSV columns") {
		t.Fatalf("short row: %v", err)
	}
	f, err = parseJSONLine(`{"a":1.5,"b":true,"c":"x","d":[1]}`)
	if err != nil || len(f) != 3 || f[0] != (field{"a", "1.5"}) || f[1] != (field{"b", "true"}) {
		t.Fatalf("json: %v %v", f, err)
	}
	for _, bad := range []string{"", "[1]", "null", `{"a":1}{}`, "{"} {
		if _, err := parseJSONLine(bad); err == nil {
			t.Errorf("json %q accepted", bad)
		}
	}
	if _, err := parseKeyValue("a=1 junk"); err == nil {
		t.Fatal("kv junk accepted")
	}
}

func TestModbusDecoding(t *testing.T) {
	for _, tc := range []struct {
		regs       []uint16
		typ, order string
		scale, off float64
		want       string
	}{
		{[]uint16{250}, "uint16", "", 0.1, 0, "25"},
		{[]uint16{0xFFFF}, "int16", "", 1, 0, "-1"},
		{[]uint16{0x0001, 0x0002}, "uint32", "high", 1, 0, "65538"},
		{[]uint16{0x0002, 0x0001}, "uint32", "low", 1, 0, "65538"},
		{[]uint16{0x41C8, 0x0000}, "float32", "high", 1, 0, "25"},
		{[]uint16{0xFFFF, 0xFFFE}, "int32", "high", 1, 10, "8"},
	} {
		got, err := decodeRegisters(tc.regs, tc.typ, tc.order, tc.scale, tc.off)
		if err != nil || got != tc.want {
			t.Errorf("%v %s/%s: %q %v, want %q", tc.regs, tc.typ, tc.order, got, err, tc.want)
		}
		regs, err := encodeRegisters(mustFloat(tc.want), tc.typ, tc.order, tc.scale, tc.off)
		if err != nil || len(regs) != len(tc.regs) {
			t.Errorf("encode %s: %v %v", tc.want, regs, err)
		}
	}
	if _, err := decodeRegisters([]uint16{0x7FC0, 0}, "float32", "high", 1, 0); err == nil {
		t.Error("NaN accepted")
	}
	if _, err := encodeRegisters(70000, "uint16", "", 1, 0); err == nil {
		t.Error("out of range write accepted")
	}
}

func mustFloat(s string) float64 {
	v, err := parseFloat(s)
	if err != nil {
		panic(err)
	}
	return v
}
