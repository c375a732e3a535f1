package devicemgr

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Reply-parsing benchmarks: the work a device process does per poll or pushed line
// after the socket I/O, measured without the kernel. Run with
//
//	go test -run '^$' -bench 'Parse' -benchmem ./devicemgr

// cannedConn answers every write with the same reply line, in memory.
type cannedConn struct {
	net.Conn // nil: any method not overridden panics
	reply    []byte
	pending  int
}

func (c *cannedConn) Write(p []byte) (int, error) { c.pending++; return len(p), nil }
func (c *cannedConn) Read(p []byte) (int, error) {
	if c.pending == 0 {
		return 0, net.ErrClosed
	}
	c.pending--
	return copy(p, c.reply), nil
}
func (c *cannedConn) SetReadDeadline(time.Time) error  { return nil }
func (c *cannedConn) SetWriteDeadline(time.Time) error { return nil }
func (c *cannedConn) SetDeadline(time.Time) error      { return nil }

type discardPublisher struct{ n, good int }

func (p *discardPublisher) Publish(batch ...telemetry.Sample) {
	p.n += len(batch)
	for _, s := range batch {
		if s.Quality == telemetry.Good {
			p.good++
		}
	}
}

func benchDevice(b *testing.B, spec Spec) (*Device, *discardPublisher) {
	b.Helper()
	pub := &discardPublisher{}
	m, err := New([]Spec{spec}, pub, Options{})
	if err != nil {
		b.Fatal(err)
	}
	return m.Devices()[0], pub
}

// BenchmarkParseReply polls a group of four SCPI channels (one joined query, one
// reply "v1;v2;v3;v4"): split, parse, stamp and publish four samples.
func BenchmarkParseReply(b *testing.B) {
	chans := []ChannelSpec{
		{Name: "voltage", Query: "MEAS:VOLT?", Period: 100 * time.Millisecond},
		{Name: "current", Query: "MEAS:CURR?", Period: 100 * time.Millisecond},
		{Name: "setpoint", Query: "SOUR:VOLT?", Period: 100 * time.Millisecond},
		{Name: "output", Query: "OUTP?", Period: 100 * time.Millisecond, Type: "bool"},
	}
	d, pub := benchDevice(b, Spec{Name: "psu-01", Address: "127.0.0.1:1", Driver: DriverSCPI, MaxJoin: 4, Channels: chans})
	g := d.pollGroups()[0]
	lc := newLineConn(&cannedConn{reply: []byte("12.0034;1.2003;12;1\n")}, &d.spec)
	for b.Loop() {
		if err := d.poll(lc, g); err != nil {
			b.Fatal(err)
		}
	}
	if pub.n == 0 {
		b.Fatal("nothing published")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pub.n), "ns/sample")
}

// BenchmarkParseLine parses one pushed line of four key=value pairs.
func BenchmarkParseLine(b *testing.B) {
	chans := []ChannelSpec{{Name: "temp"}, {Name: "pressure"}, {Name: "flow"}, {Name: "line_seq", Key: "seq", Type: "int"}}
	d, pub := benchDevice(b, Spec{Name: "env-01", Address: "127.0.0.1:1", Driver: DriverLines, Channels: chans})
	byKey := map[string]*ChannelSpec{}
	for i := range d.spec.Channels {
		ch := &d.spec.Channels[i]
		byKey[ch.Key] = ch
	}
	line := "seq=1 temp=21.503 pressure=1013.27 flow=2.498"
	if !strings.Contains(line, "temp=") {
		b.Fatal("bad fixture")
	}
	lp := lineParser{format: d.spec.LineFormat}
	var batch []telemetry.Sample
	b.ReportAllocs()
	for b.Loop() {
		batch = d.publishLine(line, byKey, &lp, batch[:0])
	}
	if pub.n == 0 {
		b.Fatal("nothing published")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(pub.n), "ns/sample")
}
