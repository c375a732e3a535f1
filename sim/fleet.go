package sim

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
)

// FleetSpec says which instruments a Fleet runs. The zero value is an empty fleet.
type FleetSpec struct {
	// SCPI is the number of power supplies, named psu-01, psu-02, ... Default 0.
	SCPI int
	// Lines is the number of line pushers, named env-01, env-02, ... Default 0.
	Lines int
	// Modbus is the number of Modbus TCP temperature controllers, named tc-01,
	// tc-02, ... Default 0.
	Modbus int
	// Balances is the number of CSV-pushing balances, named bal-01, ... Default 0.
	Balances int
	// Thermometers is the number of JSON-pushing thermometers, named thermo-01,
	// ... Default 0.
	Thermometers int
	// Seed seeds every instrument's noise source (each also mixes in its name).
	// Default 0.
	Seed uint64
	// PushHz is the line pushers' rate per connection. Default 10.
	PushHz float64
	// BasePort is the port of the first instrument; the others follow consecutively,
	// power supplies first. Default 0: every instrument gets a free port.
	BasePort int
	// Personalities gives power supplies a named personality (see
	// PersonalityNames), by instrument name, e.g. {"psu-19": "acks"}.
	Personalities map[string]string
	// Quirky adds one power supply per named personality listed, after every
	// other instrument, named after it: "acks-01", "crlf-01", ...
	Quirky []string
}

// Fleet is a set of simulated instruments that start and stop together.
// Instruments can be added and removed while it runs (Add, Remove).
type Fleet struct {
	spec FleetSpec

	mu       sync.Mutex // guards list, byName and serving
	list     []*Instrument
	byName   map[string]*Instrument
	serving  bool
	done     chan struct{}
	stopOnce sync.Once
}

// NewFleet creates and starts listening for every instrument of spec. If any of them
// cannot listen, it closes the ones it created and returns the error.
func NewFleet(spec FleetSpec) (*Fleet, error) {
	if spec.SCPI < 0 || spec.Lines < 0 || spec.Modbus < 0 || spec.Balances < 0 || spec.Thermometers < 0 {
		return nil, fmt.Errorf("sim: fleet spec: counts must be >= 0, got SCPI=%d Lines=%d Modbus=%d Balances=%d Thermometers=%d",
			spec.SCPI, spec.Lines, spec.Modbus, spec.Balances, spec.Thermometers)
	}
	total := spec.SCPI + spec.Lines + spec.Modbus + spec.Balances + spec.Thermometers + len(spec.Quirky)
	for name, p := range spec.Personalities {
		if _, err := LookupPersonality(p); err != nil {
			return nil, fmt.Errorf("sim: fleet spec: %s: %w", name, err)
		}
	}
	for _, p := range spec.Quirky {
		if _, err := LookupPersonality(p); err != nil {
			return nil, fmt.Errorf("sim: fleet spec: quirky: %w", err)
		}
	}
	if spec.BasePort < 0 || spec.BasePort > 0 && spec.BasePort+total-1 > 65535 {
		return nil, fmt.Errorf("sim: fleet spec: base port %d does not leave room for %d instruments",
			spec.BasePort, total)
	}
	f := &Fleet{spec: spec, byName: make(map[string]*Instrument, total), done: make(chan struct{})}
	port := func() int {
		if spec.BasePort == 0 {
			return 0
		}
		return spec.BasePort + len(f.list)
	}
	add := func(i *Instrument, err error) error {
		if err != nil {
			return err
		}
		f.list = append(f.list, i)
		f.byName[i.name] = i
		return nil
	}
	var err error
	psuOpts := func(name, personality string) Options {
		opts := Options{Port: port(), Seed: spec.Seed}
		if personality != "" {
			opts.Personality, _ = LookupPersonality(personality)
			opts.PersonalityName = personality
		}
		return opts
	}
	for n := 1; n <= spec.SCPI && err == nil; n++ {
		name := instrumentName("psu", n, spec.SCPI)
		err = add(NewSCPI(name, psuOpts(name, spec.Personalities[name])))
	}
	for n := 1; n <= spec.Lines && err == nil; n++ {
		opts := Options{Port: port(), Seed: spec.Seed, PushHz: spec.PushHz}
		err = add(NewLines(instrumentName("env", n, spec.Lines), opts))
	}
	for n := 1; n <= spec.Modbus && err == nil; n++ {
		err = add(NewModbus(instrumentName("tc", n, spec.Modbus), Options{Port: port(), Seed: spec.Seed}))
	}
	for n := 1; n <= spec.Balances && err == nil; n++ {
		opts := Options{Port: port(), Seed: spec.Seed, PushHz: spec.PushHz}
		err = add(NewBalance(instrumentName("bal", n, spec.Balances), opts))
	}
	for n := 1; n <= spec.Thermometers && err == nil; n++ {
		opts := Options{Port: port(), Seed: spec.Seed, PushHz: spec.PushHz}
		err = add(NewThermometer(instrumentName("thermo", n, spec.Thermometers), opts))
	}
	for _, p := range spec.Quirky {
		if err != nil {
			break
		}
		name := p + "-01"
		err = add(NewSCPI(name, psuOpts(name, p)))
	}
	for name := range spec.Personalities {
		if i := f.byName[name]; err == nil && (i == nil || i.kind != KindSCPI) {
			err = fmt.Errorf("sim: fleet spec: personality for %q: no power supply of that name", name)
		}
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// instrumentName returns prefix-n with n zero-padded to the width of total, at least 2.
func instrumentName(prefix string, n, total int) string {
	width := max(2, len(strconv.Itoa(total)))
	s := strconv.Itoa(n)
	for len(s) < width {
		s = "0" + s
	}
	return prefix + "-" + s
}

// Instrument returns the instrument called name, or nil if there is none.
func (f *Fleet) Instrument(name string) *Instrument {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byName[name]
}

// Instruments returns every instrument: power supplies, line pushers, temperature
// controllers, balances, thermometers, each kind in name order, then those
// added since, in the order added. The caller may reorder the returned slice.
func (f *Fleet) Instruments() []*Instrument {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Instrument(nil), f.list...)
}

// Add creates an instrument of kind called name on a free port (the fleet's
// seed and push rate; personality names a power supply's personality, ""
// for none) and, if the fleet is being served, starts it. It fails for a
// name in use, an unknown kind or personality, or a closed fleet.
func (f *Fleet) Add(kind Kind, name, personality string) (*Instrument, error) {
	if name == "" {
		return nil, errors.New("sim: add: a name is required")
	}
	opts := Options{Seed: f.spec.Seed, PushHz: f.spec.PushHz}
	if personality != "" {
		if kind != KindSCPI {
			return nil, fmt.Errorf("sim: add %s: only a power supply (scpi) has a personality", name)
		}
		p, err := LookupPersonality(personality)
		if err != nil {
			return nil, fmt.Errorf("sim: add %s: %w", name, err)
		}
		opts.Personality, opts.PersonalityName = p, personality
	}
	if f.Instrument(name) != nil {
		return nil, fmt.Errorf("sim: add %s: %w", name, ErrExists)
	}
	var i *Instrument
	var err error
	switch kind {
	case KindSCPI:
		i, err = NewSCPI(name, opts)
	case KindLines:
		i, err = NewLines(name, opts)
	case KindModbus:
		i, err = NewModbus(name, opts)
	case KindBalance:
		i, err = NewBalance(name, opts)
	case KindThermometer:
		i, err = NewThermometer(name, opts)
	default:
		return nil, fmt.Errorf("sim: add %s: unknown kind %q (want %s, %s, %s, %s or %s)", name, kind,
			KindSCPI, KindLines, KindModbus, KindBalance, KindThermometer)
	}
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case isClosed(f.done):
		err = ErrClosed
	case f.byName[name] != nil:
		err = fmt.Errorf("sim: add %s: %w", name, ErrExists)
	case f.serving:
		err = i.start()
	}
	if err != nil {
		i.Close()
		return nil, err
	}
	f.list = append(f.list, i)
	f.byName[name] = i
	return i, nil
}

// Remove stops the instrument called name (its listener and connections
// close, as when it is switched off), waits for it and forgets it.
func (f *Fleet) Remove(name string) (*Instrument, error) {
	f.mu.Lock()
	i := f.byName[name]
	if i != nil {
		delete(f.byName, name)
		f.list = slices.DeleteFunc(f.list, func(x *Instrument) bool { return x == i })
	}
	f.mu.Unlock()
	if i == nil {
		return nil, fmt.Errorf("sim: remove %s: %w", name, ErrNotFound)
	}
	i.Close()
	return i, nil
}

// Serve serves every instrument until ctx ends or Close is called, then closes every
// listener and connection and waits for all goroutines. It returns nil after a clean
// stop and ErrClosed if the fleet was already closed or is already being served.
func (f *Fleet) Serve(ctx context.Context) error {
	// Starting under f.mu orders Serve with Close: either Close comes first and Serve
	// returns ErrClosed, or every instrument starts and Close then stops it.
	f.mu.Lock()
	if f.serving || isClosed(f.done) {
		f.mu.Unlock()
		return ErrClosed
	}
	f.serving = true
	var errs []error
	for _, i := range f.list {
		if err := i.start(); err != nil {
			errs = append(errs, fmt.Errorf("sim: %s: %w", i.name, err))
		}
	}
	f.mu.Unlock()

	select {
	case <-ctx.Done():
	case <-f.done:
	}
	f.Close()
	return errors.Join(errs...)
}

// Close stops every instrument and blocks until all their goroutines have returned.
// It is idempotent.
func (f *Fleet) Close() error {
	f.mu.Lock()
	f.stopOnce.Do(func() { close(f.done) })
	f.mu.Unlock()
	// Stop all first so that the instruments shut down in parallel, then wait.
	list := f.Instruments()
	for _, i := range list {
		i.stop()
	}
	for _, i := range list {
		i.wg.Wait()
	}
	return nil
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
