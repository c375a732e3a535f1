package devicemgr

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzReplyFormat: compiling any format and matching any reply never panics,
// and a match yields exactly the format's number of values.
func FuzzReplyFormat(f *testing.F) {
	f.Add("VOLT %f;CURR %f", "VOLT 12.01;CURR 1.20")
	f.Add("%d,%*s", `0,"No error"`)
	f.Add("%x %s", "0x1f ok")
	f.Add(`re:(?P<v>[0-9.]+)V`, "12V")
	f.Fuzz(func(t *testing.T, format, reply string) {
		rf, err := CompileReplyFormat(format)
		if err != nil {
			return
		}
		v, err := rf.Match(reply)
		if err == nil && v.Len() != rf.NumValues() {
			t.Fatalf("format %q on %q: %d values, want %d", format, reply, v.Len(), rf.NumValues())
		}
	})
}

// FuzzLineFormats: every pushed-line parser takes any line without panicking.
func FuzzLineFormats(f *testing.F) {
	f.Add("seq=1 temp=21.5")
	f.Add("seq,mass_g,stable")
	f.Add(`{"seq":1,"temp_c":21.5}`)
	f.Fuzz(func(t *testing.T, line string) {
		_, _ = parseKeyValue(line)
		_, _ = parseJSONLine(line)
		p := lineParser{format: LinesCSV}
		_, _ = p.parse(line)
		_, _ = p.parse(line + ",x")
	})
}

// FuzzModbusDecode: decoding any registers as any type either fails or gives
// a number that parses.
func FuzzModbusDecode(f *testing.F) {
	f.Add(uint16(0x41C8), uint16(0), uint8(4), true, 0.1, 0.0)
	f.Fuzz(func(t *testing.T, a, b uint16, typ uint8, low bool, scale, offset float64) {
		types := []string{"uint16", "int16", "uint32", "int32", "float32"}
		dt := types[int(typ)%len(types)]
		order := "high"
		if low {
			order = "low"
		}
		regs := []uint16{a, b}[:registerCount(dt)]
		text, err := decodeRegisters(regs, dt, order, scale, offset)
		if err != nil {
			return
		}
		if _, err := parseFloat(text); err != nil {
			t.Fatalf("decoded %q does not parse: %v", text, err)
		}
	})
}

// FuzzPollReply feeds arbitrary device replies to a joined poll of four
// channels: it must never panic, and a reply line either fits (four GOOD
// samples, one per channel) or puts the device out of step (an error that
// ends the session) without publishing any GOOD sample.
func FuzzPollReply(f *testing.F) {
	f.Add("12.0034;1.2003;12;1\n")
	f.Add("12.0;;x;1\r\n")
	f.Add(";;;;\n")
	f.Add("no terminator")
	f.Fuzz(func(t *testing.T, reply string) {
		pub := &discardPublisher{}
		m, err := New([]Spec{{Name: "psu", Address: "127.0.0.1:1", Driver: DriverSCPI, MaxJoin: 4, Channels: []ChannelSpec{
			{Name: "v", Query: "V?", Period: time.Second},
			{Name: "i", Query: "I?", Period: time.Second},
			{Name: "s", Query: "S?", Period: time.Second, Type: "int"},
			{Name: "o", Query: "O?", Period: time.Second, Type: "bool"},
		}}}, pub, Options{})
		if err != nil {
			t.Fatal(err)
		}
		d := m.Devices()[0]
		g := d.pollGroups()[0]
		lc := newLineConn(&cannedConn{reply: []byte(reply)}, &d.spec)
		err = d.poll(lc, g)
		switch {
		case err == nil && (pub.n != 4 || pub.good != 4):
			t.Fatalf("reply %q: %d samples published (%d GOOD), want 4 GOOD", reply, pub.n, pub.good)
		case err != nil && pub.good != 0:
			t.Fatalf("reply %q: %v, yet %d GOOD samples published", reply, err, pub.good)
		}
		if got, want := splitReplies(nil, reply), strings.Split(reply, ";"); !slices.Equal(got, want) {
			t.Fatalf("splitReplies(%q) = %q, want %q", reply, got, want)
		}
	})
}
