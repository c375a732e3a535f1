package sim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Kind says which protocol an Instrument speaks.
type Kind string

// Kinds of instrument.
const (
	KindSCPI  Kind = "scpi"  // SCPI power supply: one reply line per query line
	KindLines Kind = "lines" // line pusher: pushes readings on its own at a set rate
	// KindModbus is a Modbus TCP temperature controller.
	KindModbus Kind = "modbus"
	// KindBalance is a balance that pushes CSV lines with a header.
	KindBalance Kind = "balance"
	// KindThermometer is a thermometer that pushes one JSON object per line.
	KindThermometer Kind = "thermometer"
)

// ErrClosed is returned by Serve when the instrument or fleet was already closed or is
// already being served.
var ErrClosed = errors.New("sim: closed or already serving")

// ErrExists and ErrNotFound: Fleet.Add of a name in use, Fleet.Remove of an
// unknown one.
var (
	ErrExists   = errors.New("an instrument of that name exists")
	ErrNotFound = errors.New("no instrument of that name")
)

// Options configures one instrument. The zero value works: a free loopback port,
// seed 0, 10 Hz pushes and the wall clock.
type Options struct {
	// Port to listen on at 127.0.0.1. Default 0: the kernel picks a free port, which
	// the instrument then keeps for its whole life (also across a Refuse fault).
	Port int
	// Seed of the instrument's noise source. Default 0. The noise sequence is the same
	// for the same seed and name; the drift also depends on the time of each query.
	Seed uint64
	// PushHz is the line pusher's rate per connection. Default 10; ignored for SCPI.
	PushHz float64
	// Now is the clock the readings' drift is computed from. Default time.Now.
	Now func() time.Time
	// Personality of a power supply: how it talks besides what it does
	// (acknowledgements, echo, line ends, ...). Default: tidy SCPI.
	Personality Personality
	// PersonalityName names Personality when it is one of the named ones
	// (PersonalityNames); it selects the instrument's ModelName.
	PersonalityName string
}

// Counters are an instrument's cumulative counts since it was created.
type Counters struct {
	Accepted uint64 `json:"accepted"` // connections accepted
	Active   int64  `json:"active"`   // connections open now
	Queries  uint64 `json:"queries"`  // SCPI queries answered with a proper value
	Lines    uint64 `json:"lines"`    // lines pushed (counted as each is written), including garbage
	Received uint64 `json:"received"` // lines a line pusher received from its clients (and ignored)
}

// Instrument is one simulated instrument listening on loopback TCP. Create it with
// NewSCPI or NewLines, run it with Serve, and change its faults at any time from any
// goroutine.
type Instrument struct {
	name string
	kind Kind
	addr string // 127.0.0.1:port, fixed for the instrument's life
	now  func() time.Time
	t0   time.Time

	pers     Personality
	persName string

	psu *psu    // non-nil for KindSCPI
	env *pusher // non-nil for the line pushers (KindLines, KindBalance, KindThermometer)
	tc  *tc     // non-nil for KindModbus

	faults atomic.Pointer[Faults] // read on every reply; written under mu

	mu      sync.Mutex
	ln      net.Listener     // nil while refusing or after close
	conns   map[net.Conn]int // index in connLog
	connLog []ConnSpan
	serving bool
	closed  bool
	wg      sync.WaitGroup // accept loop and connection goroutines

	wake     chan struct{} // 1-buffered: a new listener is ready
	done     chan struct{} // closed when the instrument stops
	stopOnce sync.Once

	accepted, queries, lines, received atomic.Uint64
	active                             atomic.Int64
}

// NewSCPI starts listening for a simulated SCPI power supply called name. It serves
// connections once Serve runs. Its output starts ON at a 12 V set-point.
func NewSCPI(name string, opts Options) (*Instrument, error) {
	i, err := newInstrument(name, KindSCPI, opts)
	if err != nil {
		return nil, err
	}
	i.psu = newPSU(i.rng(opts.Seed))
	i.pers, i.persName = opts.Personality, opts.PersonalityName
	return i, nil
}

// NewModbus starts listening for a simulated Modbus TCP temperature controller
// called name (see TCSetPointReg for its register map). Its heater starts
// enabled at TCDefaultSetPoint.
func NewModbus(name string, opts Options) (*Instrument, error) {
	i, err := newInstrument(name, KindModbus, opts)
	if err != nil {
		return nil, err
	}
	i.tc = newTC(i.rng(opts.Seed), i.t0)
	return i, nil
}

// NewBalance starts listening for a simulated balance that pushes, to every
// connected client at opts.PushHz, a CSV header line and then readings:
//
//	seq,mass_g,stable
//	1,100.0012,1
func NewBalance(name string, opts Options) (*Instrument, error) {
	return newPusherInstrument(name, KindBalance, opts)
}

// NewThermometer starts listening for a simulated thermometer that pushes, to
// every connected client at opts.PushHz, one JSON object per line:
//
//	{"seq":1,"temp_c":21.532,"probe":"PT100"}
func NewThermometer(name string, opts Options) (*Instrument, error) {
	return newPusherInstrument(name, KindThermometer, opts)
}

// NewLines starts listening for a simulated line pusher called name. Once Serve runs,
// it pushes readings to every connected client at opts.PushHz.
func NewLines(name string, opts Options) (*Instrument, error) {
	return newPusherInstrument(name, KindLines, opts)
}

func newPusherInstrument(name string, kind Kind, opts Options) (*Instrument, error) {
	if !(opts.PushHz >= 0) { // also rejects NaN
		return nil, fmt.Errorf("sim: %s: push rate must be >= 0 Hz, got %g", name, opts.PushHz)
	}
	i, err := newInstrument(name, kind, opts)
	if err != nil {
		return nil, err
	}
	hz := opts.PushHz
	if hz == 0 {
		hz = 10
	}
	i.env = newPusher(i.rng(opts.Seed), hz, kind)
	return i, nil
}

func newInstrument(name string, kind Kind, opts Options) (*Instrument, error) {
	if opts.Port < 0 || opts.Port > 65535 {
		return nil, fmt.Errorf("sim: %s: port must be 0..65535, got %d", name, opts.Port)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(opts.Port)))
	if err != nil {
		return nil, fmt.Errorf("sim: %s: %w", name, err)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	i := &Instrument{
		name:  name,
		kind:  kind,
		addr:  ln.Addr().String(),
		now:   now,
		t0:    now(),
		ln:    ln,
		conns: make(map[net.Conn]int),
		wake:  make(chan struct{}, 1),
		done:  make(chan struct{}),
	}
	i.faults.Store(&Faults{})
	return i, nil
}

// rng returns the instrument's own noise source, seeded from seed and its name so that
// instruments of one fleet sharing a seed still differ.
func (i *Instrument) rng(seed uint64) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(i.name))
	return rand.New(rand.NewPCG(seed, h.Sum64()))
}

// Serial returns the serial number a simulated instrument called name reports in its
// *IDN? reply.
func Serial(name string) string {
	h := fnv.New32a()
	h.Write([]byte(name))
	return fmt.Sprintf("SY%08X", h.Sum32())
}

// Name returns the instrument's name.
func (i *Instrument) Name() string { return i.name }

// Kind returns the instrument's protocol.
func (i *Instrument) Kind() Kind { return i.kind }

// Personality returns how a power supply talks (the zero value for other
// instruments) and its name ("" unless it is a named one).
func (i *Instrument) Personality() (Personality, string) { return i.pers, i.persName }

// ModelName is the name of the device model in examples/models that
// describes the instrument: sim-psu (with "-" and the personality's name
// for a named personality, such as sim-psu-acks), sim-env, sim-tc,
// sim-balance or sim-thermometer.
func (i *Instrument) ModelName() string {
	switch i.kind {
	case KindSCPI:
		if i.persName != "" {
			return "sim-psu-" + i.persName
		}
		return "sim-psu"
	case KindLines:
		return "sim-env"
	case KindModbus:
		return "sim-tc"
	}
	return "sim-" + string(i.kind)
}

// Addr returns the instrument's "127.0.0.1:port" address, which never changes.
func (i *Instrument) Addr() string { return i.addr }

// Counters returns a snapshot of the instrument's counters.
func (i *Instrument) Counters() Counters {
	return Counters{
		Accepted: i.accepted.Load(),
		Active:   i.active.Load(),
		Queries:  i.queries.Load(),
		Lines:    i.lines.Load(),
		Received: i.received.Load(),
	}
}

// SetPoint returns a power supply's voltage set-point in volts (0 for a line pusher).
func (i *Instrument) SetPoint() float64 {
	if i.psu == nil {
		return 0
	}
	sp, _ := i.psu.state(i.elapsedDuration())
	return sp
}

// Output reports whether a power supply's output is on (false for a line pusher).
func (i *Instrument) Output() bool {
	if i.psu == nil {
		return false
	}
	_, on := i.psu.state(i.elapsedDuration())
	return on
}

// Serve accepts and serves connections until ctx ends or Close is called, then closes
// the listener and every connection and waits for all of the instrument's goroutines.
// It returns nil after a clean stop and ErrClosed if the instrument was already closed
// or is already being served.
func (i *Instrument) Serve(ctx context.Context) error {
	if err := i.start(); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-i.done:
	}
	i.stop()
	i.wg.Wait()
	return nil
}

// Close stops the instrument as if Serve's context had ended and blocks until all of
// its goroutines have returned. It is idempotent and also releases the port of an
// instrument that was never served.
func (i *Instrument) Close() error {
	i.stop()
	i.wg.Wait()
	return nil
}

// start launches the accept loop.
func (i *Instrument) start() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed || i.serving {
		return ErrClosed
	}
	i.serving = true
	i.wg.Add(1)
	go i.acceptLoop()
	return nil
}

// stop closes the listener and every connection; the goroutines then return on their
// own. It is idempotent and does not wait.
func (i *Instrument) stop() {
	i.stopOnce.Do(func() {
		i.mu.Lock()
		i.closed = true
		close(i.done)
		if i.ln != nil {
			i.ln.Close()
			i.ln = nil
		}
		for c := range i.conns {
			c.Close()
		}
		i.mu.Unlock()
	})
}

// acceptLoop accepts on the current listener. While a Refuse fault holds there is no
// listener and it waits for the wake-up that clearing the fault sends.
func (i *Instrument) acceptLoop() {
	defer i.wg.Done()
	for {
		i.mu.Lock()
		ln, closed := i.ln, i.closed
		i.mu.Unlock()
		if closed {
			return
		}
		if ln == nil {
			select {
			case <-i.wake:
				continue
			case <-i.done:
				return
			}
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					break // refused or closed: look again at the state
				}
				// Out of file descriptors or similar: wait a little, then retry.
				if !i.sleep(10*time.Millisecond, nil) {
					return
				}
				continue
			}
			i.track(c)
		}
	}
}

// track registers a new connection and starts its goroutine, unless the instrument is
// closing.
func (i *Instrument) track(c net.Conn) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.closed {
		c.Close()
		return
	}
	i.conns[c] = len(i.connLog)
	i.connLog = append(i.connLog, ConnSpan{Remote: c.RemoteAddr().String(), Opened: time.Now()})
	i.accepted.Add(1)
	i.active.Add(1)
	i.wg.Add(1)
	go func() {
		defer i.wg.Done()
		defer i.untrack(c)
		switch {
		case i.psu != nil:
			i.serveSCPI(c)
		case i.tc != nil:
			i.serveModbus(c)
		default:
			i.servePush(c)
		}
	}()
}

func (i *Instrument) untrack(c net.Conn) {
	c.Close()
	i.mu.Lock()
	if k, ok := i.conns[c]; ok {
		i.connLog[k].Closed = time.Now()
	}
	delete(i.conns, c)
	i.mu.Unlock()
	i.active.Add(-1)
}

// ConnSpan is one connection an instrument accepted: from where, when, and
// until when (zero while it is open). The instrument sees a close when its
// peer's end is gone: at once for a closed socket, at the next write for a
// pusher.
type ConnSpan struct {
	Remote         string
	Opened, Closed time.Time
}

// Connections returns the instrument's connection log, oldest first.
func (i *Instrument) Connections() []ConnSpan {
	i.mu.Lock()
	defer i.mu.Unlock()
	return append([]ConnSpan(nil), i.connLog...)
}

// Overlaps lists every moment two connections to the instrument were open at
// once, in words ("127.0.0.1:41000 opened at ... while 127.0.0.1:40122 was open
// until ..."); none: nil.
func (i *Instrument) Overlaps() []string {
	log := i.Connections()
	var out []string
	for k := 1; k < len(log); k++ {
		for j := 0; j < k; j++ {
			prev := log[j]
			if prev.Closed.IsZero() || log[k].Opened.Before(prev.Closed) {
				out = append(out, fmt.Sprintf("%s: %s opened at %s while %s was open until %s", i.Name(), log[k].Remote,
					log[k].Opened.Format("15:04:05.000"), prev.Remote, prev.Closed.Format("15:04:05.000")))
			}
		}
	}
	return out
}

// sleep waits for d and reports true, or reports false as soon as the instrument
// stops or cancel (if non-nil) is closed.
func (i *Instrument) sleep(d time.Duration, cancel <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-i.done:
		return false
	case <-cancel:
		return false
	}
}

// elapsed returns the time since the instrument was created, in seconds, on its clock.
func (i *Instrument) elapsed() float64 { return i.elapsedDuration().Seconds() }

// elapsedDuration is elapsed as a duration.
func (i *Instrument) elapsedDuration() time.Duration { return i.now().Sub(i.t0) }
