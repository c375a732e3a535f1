package sim

import (
	"bufio"
	"math"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits and defaults of the simulated power supply.
const (
	// MaxVolts is the highest voltage set-point a power supply accepts.
	MaxVolts = 60.0
	// DefaultSetPoint is a power supply's voltage set-point after start and *RST.
	DefaultSetPoint = 12.0

	loadOhms    = 10.0  // nominal load resistance
	voltNoise   = 0.001 // standard deviation of the voltage noise, V
	ampNoise    = 0.0001
	voltDrift   = 0.002 // amplitude of the slow voltage drift, V
	errQueueCap = 16    // SCPI error queue depth; overflow replaces the last entry
	maxLine     = 64 << 10
)

// SCPI errors the simulated power supply pushes onto its error queue.
const (
	errUndefinedHeader  = `-113,"Undefined header"`
	errDataType         = `-104,"Data type error"`
	errParamNotAllowed  = `-108,"Parameter not allowed"`
	errMissingParameter = `-109,"Missing parameter"`
	errOutOfRange       = `-222,"Data out of range"`
	errQueueOverflow    = `-350,"Queue overflow"`
	noError             = `0,"No error"`
)

// psu is the state of a simulated power supply, shared by all of its connections.
type psu struct {
	mu       sync.Mutex
	rng      *rand.Rand
	phase    float64 // of the drift, so that instruments do not drift in step
	setPoint float64
	output   bool
	errs     []string
	tagN     int // counter of the Tagged personality's readings

	sweep     *Sweep // nil: the set-point moves only by command
	sweepStep int64  // the sweep's step the set-point was last set for
}

func newPSU(rng *rand.Rand) *psu {
	return &psu{rng: rng, phase: 2 * math.Pi * rng.Float64(), setPoint: DefaultSetPoint, output: true}
}

// state is the set-point (swept to t, see Sweep) and the output.
func (p *psu) state(t time.Duration) (setPoint float64, output bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swept(t)
	return p.setPoint, p.output
}

// pushErr appends a SCPI error; p.mu must be held.
func (p *psu) pushErr(e string) {
	if len(p.errs) >= errQueueCap {
		p.errs[len(p.errs)-1] = errQueueOverflow
		return
	}
	p.errs = append(p.errs, e)
}

// measure computes the readings at t seconds after start: the set-point plus a bounded
// drift and gaussian noise while the output is on, noise around zero while it is off.
// p.mu must be held.
func (p *psu) measure(t float64) (volts, amps float64) {
	if !p.output {
		return voltNoise * p.rng.NormFloat64(), ampNoise * p.rng.NormFloat64()
	}
	drift := voltDrift * math.Sin(2*math.Pi*t/60+p.phase)
	volts = p.setPoint + drift + voltNoise*p.rng.NormFloat64()
	load := loadOhms * (1 + 0.002*math.Sin(2*math.Pi*t/90+p.phase))
	amps = volts/load + ampNoise*p.rng.NormFloat64()
	return volts, amps
}

// keyword is one SCPI header node with its short (upper-case prefix) and long form.
type keyword struct{ short, long string }

var keywords = []keyword{
	{"MEAS", "MEASURE"}, {"VOLT", "VOLTAGE"}, {"CURR", "CURRENT"}, {"SOUR", "SOURCE"},
	{"OUTP", "OUTPUT"}, {"STAT", "STATE"}, {"SYST", "SYSTEM"}, {"ERR", "ERROR"},
	{"NEXT", "NEXT"}, {"DC", "DC"},
}

// aliases maps headers with optional nodes to their canonical form.
var aliases = map[string]string{
	"VOLT":          "SOUR:VOLT",
	"MEAS:VOLT:DC":  "MEAS:VOLT",
	"MEAS:CURR:DC":  "MEAS:CURR",
	"OUTP:STAT":     "OUTP",
	"SYST:ERR:NEXT": "SYST:ERR",
}

// command is the canonical form of one SCPI message unit.
type command struct {
	header string // canonical short form, e.g. "MEAS:VOLT" or "*IDN"
	query  bool
	arg    string // parameter text, trimmed; empty if none
}

// parseUnit parses one message unit such as "meas:volt?" or ":SOURce:VOLTage 5". It
// accepts short and long forms in any case and an optional leading colon. ok is false
// if the header has a node this instrument does not know.
func parseUnit(s string) (cmd command, ok bool) {
	s = strings.TrimSpace(s)
	head, arg, _ := strings.Cut(s, " ")
	if h, a, found := strings.Cut(head, "\t"); found {
		head, arg = h, a+" "+arg
	}
	cmd.arg = strings.TrimSpace(arg)
	if strings.HasSuffix(head, "?") {
		cmd.query = true
		head = head[:len(head)-1]
	}
	if strings.HasPrefix(head, "*") {
		cmd.header = strings.ToUpper(head)
		return cmd, len(head) > 1
	}
	head = strings.TrimPrefix(head, ":")
	if head == "" {
		return cmd, false
	}
	var b strings.Builder
	for node := range strings.SplitSeq(head, ":") {
		kw, found := lookupKeyword(node)
		if !found {
			return cmd, false
		}
		if b.Len() > 0 {
			b.WriteByte(':')
		}
		b.WriteString(kw)
	}
	cmd.header = b.String()
	if canon, found := aliases[cmd.header]; found {
		cmd.header = canon
	}
	return cmd, true
}

func lookupKeyword(node string) (string, bool) {
	for _, kw := range keywords {
		if strings.EqualFold(node, kw.short) || strings.EqualFold(node, kw.long) {
			return kw.short, true
		}
	}
	return "", false
}

// execResult is what one line did: the replies of its queries (joined by ';'),
// how many units it held and answered, and the first error of a unit that
// failed.
type execResult struct {
	units, answered int
	err             string // SCPI error entry of the first failed unit, "" if none
}

// exec runs every message unit of one line in order and appends the replies of the
// queries, joined by ';', to out. A unit that fails pushes an error and gets no
// reply; the units after it still run.
func (i *Instrument) exec(out []byte, line string) ([]byte, execResult) {
	p := i.psu
	p.mu.Lock()
	defer p.mu.Unlock()
	p.swept(i.elapsedDuration())
	var res execResult
	if i.pers.NoJoin && strings.Count(strings.TrimRight(strings.TrimSpace(line), ";"), ";") > 0 {
		p.pushErr(errUndefinedHeader)
		res.units, res.err = 2, errJoined
		return out, res
	}
	for rest := line; ; {
		unit, more, found := strings.Cut(rest, ";")
		if strings.TrimSpace(unit) != "" {
			res.units++
			start := len(out)
			if res.answered > 0 {
				out = append(out, ';')
			}
			var answered bool
			var failed string
			out, answered, failed = i.run(out, unit)
			if answered {
				res.answered++
			} else {
				out = out[:start]
			}
			if failed != "" && res.err == "" {
				res.err = failed
			}
		}
		if !found {
			return out, res
		}
		rest = more
	}
}

// errJoined is the error of a line a NoJoin instrument refuses.
const errJoined = `-113,"Joined messages not supported"`

// run executes one message unit; p.mu is held. It reports whether it appended a
// reply, or the error it pushed.
func (i *Instrument) run(out []byte, unit string) ([]byte, bool, string) {
	p := i.psu
	fail := func(e string) ([]byte, bool, string) {
		p.pushErr(e)
		return out, false, e
	}
	cmd, ok := parseUnit(unit)
	if !ok {
		return fail(errUndefinedHeader)
	}
	if cmd.query && cmd.arg != "" {
		return fail(errParamNotAllowed)
	}
	switch {
	case cmd.header == "*IDN" && cmd.query:
		out = append(out, "Switchyard,SIM-PSU,"...)
		out = append(out, Serial(i.name)...)
		return append(out, ",1.0"...), true, ""
	case cmd.header == "*OPC" && cmd.query && !i.pers.Ack:
		return append(out, '1'), true, ""
	case cmd.header == "*RST" && !cmd.query:
		p.setPoint, p.output = DefaultSetPoint, true
	case cmd.header == "*CLS" && !cmd.query:
		p.errs = p.errs[:0]
	case cmd.header == "MEAS:VOLT" && cmd.query:
		v, _ := p.measure(i.elapsed())
		if i.pers.Tagged {
			v = p.tag(10)
		}
		return strconv.AppendFloat(out, v, 'f', 4, 64), true, ""
	case cmd.header == "MEAS:CURR" && cmd.query:
		_, a := p.measure(i.elapsed())
		if i.pers.Tagged {
			a = p.tag(20)
		}
		return strconv.AppendFloat(out, a, 'f', 4, 64), true, ""
	case cmd.header == "SOUR:VOLT" && cmd.query:
		return strconv.AppendFloat(out, p.setPoint, 'f', 4, 64), true, ""
	case cmd.header == "SOUR:VOLT":
		if cmd.arg == "" {
			return fail(errMissingParameter)
		}
		v, err := strconv.ParseFloat(cmd.arg, 64)
		switch {
		case err != nil || math.IsNaN(v):
			return fail(errDataType)
		case v < 0 || v > MaxVolts:
			return fail(errOutOfRange)
		default:
			p.setPoint = v
		}
	case cmd.header == "OUTP" && cmd.query:
		if p.output {
			return append(out, '1'), true, ""
		}
		return append(out, '0'), true, ""
	case cmd.header == "OUTP":
		switch strings.ToUpper(cmd.arg) {
		case "ON", "1":
			p.output = true
		case "OFF", "0":
			p.output = false
		case "":
			return fail(errMissingParameter)
		default:
			return fail(errDataType)
		}
	case cmd.header == "SYST:ERR" && cmd.query:
		if len(p.errs) == 0 {
			return append(out, noError...), true, ""
		}
		e := p.errs[0]
		p.errs = append(p.errs[:0], p.errs[1:]...)
		return append(out, e...), true, ""
	default:
		// A known node in a place, or a form, this instrument does not have.
		return fail(errUndefinedHeader)
	}
	return out, false, ""
}

// tag returns base plus a counter in its fourth decimal (Tagged personality).
func (p *psu) tag(base float64) float64 {
	p.tagN = p.tagN%9999 + 1
	return base + float64(p.tagN)/10000
}

// ackText is the "ERR ..." reply of an acknowledging instrument for an SCPI
// error entry: `-222,"Data out of range"` gives "ERR data out of range".
func ackText(entry string) string {
	_, text, _ := strings.Cut(entry, ",")
	text = strings.Trim(text, `"`)
	if text == "" {
		return "ERR " + entry
	}
	return "ERR " + strings.ToLower(text[:1]) + text[1:]
}

// serveSCPI answers one connection line by line until it closes, in the
// instrument's personality.
func (i *Instrument) serveSCPI(c net.Conn) {
	conn := newSCPIConn(i, c)
	defer conn.stop()
	sc := bufio.NewScanner(c)
	sc.Buffer(make([]byte, 0, 256), maxLine)
	var out []byte
	for sc.Scan() {
		f := i.Faults()
		if f.Hang {
			continue // read and discard: the client sees silence, not a closed socket
		}
		line := sc.Text()
		if !i.sleep(time.Until(conn.ready), nil) {
			return
		}
		if i.pers.Echo && !conn.send([]byte(line)) {
			return
		}
		var res execResult
		out, res = i.exec(out[:0], line)
		switch {
		case i.pers.Ack && res.err != "":
			out = append(out[:0], ackText(res.err)...)
		case i.pers.Ack && res.answered == 0:
			out = append(out[:0], "OK"...)
		case res.answered == 0:
			continue
		}
		if !i.sleep(f.Slow, nil) {
			return
		}
		if f.Garbage {
			out = append(out[:0], strings.TrimSuffix(garbageLine, "\n")...)
		} else {
			i.queries.Add(uint64(res.answered))
		}
		if !conn.send(out) {
			return
		}
	}
}
