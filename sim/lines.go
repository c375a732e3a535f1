package sim

import (
	"bufio"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"
)

// pusher is the state of a simulated line pusher (an environment sensor), shared by
// all of its connections.
type pusher struct {
	period time.Duration
	kind   Kind // which line format it pushes

	mu    sync.Mutex
	rng   *rand.Rand
	phase float64
}

func newPusher(rng *rand.Rand, hz float64, kind Kind) *pusher {
	period := time.Duration(float64(time.Second) / hz)
	if period <= 0 {
		period = 1 // NewTicker panics on 0; a silly rate just pushes as fast as it can
	}
	return &pusher{
		period: period,
		kind:   kind,
		rng:    rng,
		phase:  2 * math.Pi * rng.Float64(),
	}
}

// appendLine appends one reading line, without its newline, at t seconds after start.
// Each value is a base plus a slow bounded drift plus gaussian noise.
func (p *pusher) appendLine(out []byte, seq uint64, t float64) []byte {
	switch p.kind {
	case KindBalance:
		p.mu.Lock()
		mass := 100 + 0.002*math.Sin(2*math.Pi*t/60+p.phase) + 0.0005*p.rng.NormFloat64()
		p.mu.Unlock()
		out = strconv.AppendUint(out, seq, 10)
		out = append(out, ',')
		out = strconv.AppendFloat(out, mass, 'f', 4, 64)
		return append(out, ",1"...)
	case KindThermometer:
		p.mu.Lock()
		temp := 21.5 + 0.3*math.Sin(2*math.Pi*t/300+p.phase) + 0.01*p.rng.NormFloat64()
		p.mu.Unlock()
		out = append(out, `{"seq":`...)
		out = strconv.AppendUint(out, seq, 10)
		out = append(out, `,"temp_c":`...)
		out = strconv.AppendFloat(out, temp, 'f', 3, 64)
		return append(out, `,"probe":"PT100"}`...)
	}
	p.mu.Lock()
	temp := 21.5 + 0.5*math.Sin(2*math.Pi*t/300+p.phase) + 0.02*p.rng.NormFloat64()
	pres := 1013.25 + 2*math.Sin(2*math.Pi*t/600+p.phase) + 0.05*p.rng.NormFloat64()
	flow := 2.5 + 0.1*math.Sin(2*math.Pi*t/120+p.phase) + 0.01*p.rng.NormFloat64()
	p.mu.Unlock()
	out = append(out, "seq="...)
	out = strconv.AppendUint(out, seq, 10)
	out = append(out, " temp="...)
	out = strconv.AppendFloat(out, temp, 'f', 3, 64)
	out = append(out, " pressure="...)
	out = strconv.AppendFloat(out, pres, 'f', 2, 64)
	out = append(out, " flow="...)
	return strconv.AppendFloat(out, flow, 'f', 3, 64)
}

// BalanceHeader is the CSV header a simulated balance pushes first on every
// connection.
const BalanceHeader = "seq,mass_g,stable"

// servePush serves one connection of a line pusher. This goroutine reads, counts
// (Counters.Received) and discards the lines the client sends, so that the client never blocks on a full socket, and
// notices when the client goes away; a second goroutine pushes the lines.
func (i *Instrument) servePush(c net.Conn) {
	gone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		i.push(c, gone)
	}()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	for sc.Scan() {
		i.received.Add(1)
	}
	io.Copy(io.Discard, c) // after an over-long line: keep draining until the client leaves
	close(gone)
	c.Close() // unblocks a push stuck in Write
	wg.Wait()
}

// push writes one line per period until the connection fails, the client goes away or
// the instrument stops. The ticker drops ticks a Slow fault makes it miss, so a slow
// pusher pushes less often rather than queueing lines up.
func (i *Instrument) push(c net.Conn, gone <-chan struct{}) {
	t := time.NewTicker(i.env.period)
	defer t.Stop()
	var seq uint64
	var out []byte
	if i.env.kind == KindBalance {
		// A balance names its columns once per connection.
		if _, err := c.Write([]byte(BalanceHeader + "\n")); err != nil {
			return
		}
	}
	for {
		select {
		case <-t.C:
		case <-gone:
			return
		case <-i.done:
			return
		}
		f := i.Faults()
		if f.Hang {
			continue
		}
		if !i.sleep(f.Slow, gone) {
			return
		}
		seq++
		if f.Garbage {
			out = append(out[:0], garbageLine...)
		} else {
			out = append(i.env.appendLine(out[:0], seq, i.elapsed()), '\n')
		}
		i.lines.Add(1) // before the write, so a client that has read a line sees it counted
		if _, err := c.Write(out); err != nil {
			return
		}
	}
}
