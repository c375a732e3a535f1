package sim

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Sweep turns a power supply's set-point by itself, as a person at its knob
// would: from Min up to Max and back over Period (a cosine), changed in steps
// of Step. The demo sweeps one supply through every alarm limit of its voltage
// so that its alarms fire and clear.
//
// Like the readings, the sweep is computed when the instrument is asked (no
// goroutine): the set-point takes a step's value the first time the
// instrument runs a command in that step, from the time since the instrument
// started. A VOLTage command in between holds until the next step.
type Sweep struct {
	Min, Max float64       // volts, 0..MaxVolts
	Period   time.Duration // of a whole sweep, up and down
	Step     time.Duration // between two changes of the set-point
}

// At is the sweep's set-point at t since the start: the value at the start of
// t's step, rounded to 10 mV.
func (s Sweep) At(t time.Duration) float64 {
	start := t - t%s.Step
	v := s.Min + (s.Max-s.Min)*(1-math.Cos(2*math.Pi*start.Seconds()/s.Period.Seconds()))/2
	return math.Round(v*100) / 100
}

func (s Sweep) check() error {
	switch {
	case s.Min < 0 || s.Max > MaxVolts || s.Min > s.Max:
		return fmt.Errorf("sim: sweep %g..%g V: want 0 <= min <= max <= %g", s.Min, s.Max, float64(MaxVolts))
	case s.Period <= 0 || s.Step <= 0:
		return fmt.Errorf("sim: sweep period %v, step %v: both must be > 0", s.Period, s.Step)
	}
	return nil
}

// SetSweep makes a power supply sweep its set-point from now on (nil stops
// the sweep; the set-point stays where it is). It is an error on an
// instrument that is no power supply, or for a sweep out of range.
func (i *Instrument) SetSweep(s *Sweep) error {
	if i.psu == nil {
		return errors.New("sim: " + i.name + " is no power supply: it has no set-point to sweep")
	}
	if s != nil {
		if err := s.check(); err != nil {
			return err
		}
	}
	p := i.psu
	p.mu.Lock()
	defer p.mu.Unlock()
	p.sweep, p.sweepStep = s, -1
	p.swept(i.elapsedDuration())
	return nil
}

// swept moves the set-point to the sweep's value when a new step has begun.
// p.mu held.
func (p *psu) swept(t time.Duration) {
	if p.sweep == nil {
		return
	}
	if step := int64(t / p.sweep.Step); step != p.sweepStep {
		p.sweepStep = step
		p.setPoint = p.sweep.At(t)
	}
}
