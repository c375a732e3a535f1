package sim

import (
	"fmt"
	"net"
	"time"
)

// garbageLine replaces a proper reply or pushed line under the Garbage fault. It is
// printable and newline-terminated so that a client's parser fails, not its framing.
const garbageLine = "#@!garbage\n"

// Faults are the failure modes an instrument shows right now. The zero value is a
// healthy instrument. Drop is not a field because it is a one-shot action: see
// Instrument.Drop.
type Faults struct {
	// Refuse closes the listening socket so that dials fail with "connection refused".
	// Connections already open stay open. Clearing it listens again on the same port.
	Refuse bool
	// Hang keeps accepting connections and reading from them but never replies or
	// pushes anything.
	Hang bool
	// Garbage replaces every reply or pushed line with a printable garbage line.
	Garbage bool
	// Slow delays every reply or pushed line by this much. Zero means no delay.
	Slow time.Duration
}

// String describes the faults in the form the control API accepts, e.g.
// "refuse garbage slow=250ms", or "none".
func (f Faults) String() string {
	s := ""
	add := func(w string) {
		if s != "" {
			s += " "
		}
		s += w
	}
	if f.Refuse {
		add("refuse")
	}
	if f.Hang {
		add("hang")
	}
	if f.Garbage {
		add("garbage")
	}
	if f.Slow > 0 {
		add("slow=" + f.Slow.String())
	}
	if s == "" {
		return "none"
	}
	return s
}

// Faults returns the instrument's current faults.
func (i *Instrument) Faults() Faults { return *i.faults.Load() }

// SetFaults replaces the instrument's faults; SetFaults(Faults{}) clears them all. The
// change applies to the next reply or pushed line of every connection. Setting Refuse
// closes the listener before SetFaults returns; clearing it listens again on the same
// port before SetFaults returns, and fails if that port has been taken meanwhile.
func (i *Instrument) SetFaults(f Faults) error {
	_, err := i.UpdateFaults(func(cur *Faults) { *cur = f })
	return err
}

// UpdateFaults changes the instrument's faults with fn, which gets a copy of the
// current faults and must not block, and returns the faults now in force. Concurrent
// updates are serialised, so fn can change one fault without clobbering another.
func (i *Instrument) UpdateFaults(fn func(*Faults)) (Faults, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f := *i.faults.Load()
	fn(&f)
	if f.Slow < 0 {
		return *i.faults.Load(), fmt.Errorf("sim: %s: slow fault must be >= 0, got %v", i.name, f.Slow)
	}
	if !i.closed {
		switch {
		case f.Refuse && i.ln != nil:
			i.ln.Close()
			i.ln = nil
		case !f.Refuse && i.ln == nil:
			ln, err := net.Listen("tcp", i.addr)
			if err != nil {
				f.Refuse = true // still refusing: report the truth
				i.faults.Store(&f)
				return f, fmt.Errorf("sim: %s: listen again on %s: %w", i.name, i.addr, err)
			}
			i.ln = ln
			select {
			case i.wake <- struct{}{}:
			default:
			}
		}
	}
	i.faults.Store(&f)
	return f, nil
}

// Drop closes every connection the instrument has open now, so that their clients see
// EOF or a reset, and returns how many it closed. The instrument keeps accepting new
// connections.
func (i *Instrument) Drop() int {
	i.mu.Lock()
	defer i.mu.Unlock()
	for c := range i.conns {
		c.Close()
	}
	return len(i.conns)
}
