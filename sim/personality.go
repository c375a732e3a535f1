package sim

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"
)

// Personality is how a simulated power supply talks, beside its command set:
// the habits of real instruments that are not SCPI-tidy. The zero value is a
// tidy SCPI instrument (one reply line per line holding queries, nothing for
// writes, joined messages accepted, "\n" line ends).
type Personality struct {
	// Ack: every line gets exactly one reply line: the answers of its
	// queries, "OK" for an executed write, or "ERR <text>" for a line it
	// refuses (an unknown command, a value out of range). *OPC? is unknown
	// to it.
	Ack bool
	// NoJoin: a line of several units joined with ';' is refused as a whole
	// ("ERR joined messages not supported" with Ack; otherwise no reply and
	// -113 on the error queue).
	NoJoin bool
	// CRLF: replies end in "\r\n".
	CRLF bool
	// Echo: every line received is sent back before its reply.
	Echo bool
	// Unsolicited: this often, each connection gets a line of its own,
	// "EVENT <n> <text>", between replies (never inside one).
	Unsolicited time.Duration
	// SlowStart: lines received within this time after a connection opens
	// are answered only once it has passed (an instrument, or a serial
	// bridge, that needs time after a connect).
	SlowStart time.Duration
	// DropEvery: every n-th reply on a connection is cut after half its
	// bytes and the connection closed. 0: never.
	DropEvery int
	// Tagged: readings name the query they answer, for tests that check a
	// reading is never attributed to another query: MEAS:VOLT? answers
	// 10.0001..10.9999 and MEAS:CURR? 20.0001..20.9999 (a counter, not the
	// set-point). Other queries answer as usual.
	Tagged bool
}

// Named personalities: what `switchyard sim`, the demo and examples/ run.
// Each has a device model in examples/models (see ModelName).
var personalities = map[string]Personality{
	"acks":       {Ack: true, NoJoin: true},
	"crlf":       {CRLF: true},
	"echo":       {Echo: true},
	"chatty":     {Unsolicited: 250 * time.Millisecond},
	"slow-start": {SlowStart: 1500 * time.Millisecond},
	"flaky":      {DropEvery: 40},
}

// PersonalityNames lists the named personalities, sorted.
func PersonalityNames() []string {
	names := make([]string, 0, len(personalities))
	for n := range personalities {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// LookupPersonality returns a named personality.
func LookupPersonality(name string) (Personality, error) {
	p, ok := personalities[name]
	if !ok {
		return Personality{}, fmt.Errorf("sim: no personality %q (have %s)", name, strings.Join(PersonalityNames(), ", "))
	}
	return p, nil
}

// String describes the personality, e.g. "ack nojoin crlf", or "tidy".
func (p Personality) String() string {
	var w []string
	add := func(on bool, s string) {
		if on {
			w = append(w, s)
		}
	}
	add(p.Ack, "ack")
	add(p.NoJoin, "nojoin")
	add(p.CRLF, "crlf")
	add(p.Echo, "echo")
	add(p.Unsolicited > 0, "unsolicited="+p.Unsolicited.String())
	add(p.SlowStart > 0, "slow-start="+p.SlowStart.String())
	add(p.DropEvery > 0, fmt.Sprintf("drop-every=%d", p.DropEvery))
	add(p.Tagged, "tagged")
	if len(w) == 0 {
		return "tidy"
	}
	return strings.Join(w, " ")
}

// scpiConn writes one SCPI connection's lines in the instrument's
// personality: line ends, unsolicited lines between replies, dropped replies.
type scpiConn struct {
	i     *Instrument
	c     net.Conn
	ready time.Time // SlowStart: nothing is answered before

	mu      sync.Mutex // one line at a time: an unsolicited line never splits a reply
	buf     []byte
	replies int
	closed  bool

	done chan struct{} // closed by stop: ends the unsolicited goroutine
	wg   sync.WaitGroup
}

func newSCPIConn(i *Instrument, c net.Conn) *scpiConn {
	sc := &scpiConn{i: i, c: c, ready: time.Now().Add(i.pers.SlowStart), done: make(chan struct{})}
	if every := i.pers.Unsolicited; every > 0 {
		sc.wg.Add(1)
		go func() {
			defer sc.wg.Done()
			t := time.NewTicker(every)
			defer t.Stop()
			for n := 1; ; n++ {
				select {
				case <-t.C:
				case <-sc.done:
					return
				case <-i.done:
					return
				}
				if !sc.write([]byte(fmt.Sprintf("EVENT %d temperature %.1f", n, 25+float64(n%7)/10)), false) {
					return
				}
			}
		}()
	}
	return sc
}

// send writes one reply line; false when the connection is gone (or the
// DropEvery personality just cut it).
func (sc *scpiConn) send(line []byte) bool { return sc.write(line, true) }

func (sc *scpiConn) write(line []byte, reply bool) bool {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if sc.closed {
		return false
	}
	sc.buf = append(sc.buf[:0], line...)
	if sc.i.pers.CRLF {
		sc.buf = append(sc.buf, '\r')
	}
	sc.buf = append(sc.buf, '\n')
	if reply {
		sc.replies++
		if n := sc.i.pers.DropEvery; n > 0 && sc.replies%n == 0 {
			// Half a reply, then the connection is gone.
			sc.c.Write(sc.buf[:len(sc.buf)/2])
			sc.c.Close()
			sc.closed = true
			return false
		}
	}
	if _, err := sc.c.Write(sc.buf); err != nil {
		sc.closed = true
		return false
	}
	return true
}

// stop ends the connection's unsolicited lines and waits for them.
func (sc *scpiConn) stop() {
	close(sc.done)
	sc.c.Close() // unblocks a write in progress
	sc.wg.Wait()
}
