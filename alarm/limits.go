package alarm

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Threshold is one alarm limit. The zero value is disabled.
type Threshold struct {
	Value float64
	// Severity raised when the limit is crossed; NoAlarm disables the limit.
	Severity Severity
}

// Enabled reports whether the limit is in use.
func (t Threshold) Enabled() bool { return t.Severity != NoAlarm }

// Limits are the alarm settings of one channel, EPICS-style. The zero value raises
// only the comm-failure alarm.
type Limits struct {
	// HiHi and High raise their severity when value >= limit; Low and LoLo when
	// value <= limit. Conventional severities: HIHI/LOLO MAJOR, HIGH/LOW MINOR.
	HiHi, High, Low, LoLo Threshold
	// Hysteresis (HYST): an alarm on a limit ends only once the value is back past
	// the limit by more than this. Default 0.
	Hysteresis float64
	// Delay: a value condition must hold this long before it is raised (it clears
	// at once). Default 0: raised at once.
	Delay time.Duration
	// DelaySamples: a value condition must hold for this many consecutive samples
	// before it is raised. Default 0. With both Delay and DelaySamples, both apply.
	DelaySamples int
	// StaleAfter raises STALE (INVALID) when the channel published nothing for this
	// long. Default 0: off.
	StaleAfter time.Duration
	// Setpoint names a channel of the same device that holds the set-point this
	// channel reads back. When set, READBACK is raised while
	// |value - setpoint| > Tolerance.
	Setpoint string
	// Tolerance of the read-back check; must be > 0 when Setpoint is set.
	Tolerance float64
	// ReadbackSeverity of the READBACK alarm. Default (NoAlarm) means MINOR.
	ReadbackSeverity Severity
	// ReadbackDelay: the read-back difference must hold this long before READBACK
	// is raised, so a ramp to a new set-point does not alarm. Default 0.
	ReadbackDelay time.Duration
}

// Validate checks the limits. Errors name the field ("high: must be <= hihi ...").
func (l *Limits) Validate() error {
	var errs []error
	named := []struct {
		name string
		t    Threshold
	}{{"lolo", l.LoLo}, {"low", l.Low}, {"high", l.High}, {"hihi", l.HiHi}}
	for _, n := range named {
		if n.t.Enabled() && (math.IsNaN(n.t.Value) || math.IsInf(n.t.Value, 0)) {
			errs = append(errs, fmt.Errorf("%s: must be a finite number, got %v", n.name, n.t.Value))
		}
		if n.t.Severity > Invalid {
			errs = append(errs, fmt.Errorf("%s_severity: unknown severity %d", n.name, n.t.Severity))
		}
	}
	// Enabled limits must be ordered lolo <= low <= high <= hihi.
	prev := -1
	for i, n := range named {
		if !n.t.Enabled() {
			continue
		}
		if prev >= 0 && n.t.Value < named[prev].t.Value {
			errs = append(errs, fmt.Errorf("%s: must be >= %s (%v), got %v", n.name, named[prev].name, named[prev].t.Value, n.t.Value))
		}
		prev = i
	}
	if l.Hysteresis < 0 || math.IsNaN(l.Hysteresis) || math.IsInf(l.Hysteresis, 0) {
		errs = append(errs, fmt.Errorf("hysteresis: must be a finite number >= 0, got %v", l.Hysteresis))
	}
	if l.Delay < 0 {
		errs = append(errs, fmt.Errorf("delay: must be >= 0, got %s", l.Delay))
	}
	if l.DelaySamples < 0 {
		errs = append(errs, fmt.Errorf("delay_samples: must be >= 0, got %d", l.DelaySamples))
	}
	if l.StaleAfter < 0 {
		errs = append(errs, fmt.Errorf("stale_after: must be >= 0, got %s", l.StaleAfter))
	}
	if l.ReadbackDelay < 0 {
		errs = append(errs, fmt.Errorf("readback_delay: must be >= 0, got %s", l.ReadbackDelay))
	}
	if l.Setpoint != "" && !(l.Tolerance > 0) {
		errs = append(errs, fmt.Errorf("tolerance: must be > 0 with setpoint %q, got %v", l.Setpoint, l.Tolerance))
	}
	if l.Setpoint == "" && l.Tolerance != 0 {
		errs = append(errs, errors.New("tolerance: set without setpoint"))
	}
	if l.ReadbackSeverity > Invalid {
		errs = append(errs, fmt.Errorf("readback_severity: unknown severity %d", l.ReadbackSeverity))
	}
	return errors.Join(errs...)
}

// threshold returns the limit behind a value condition.
func (l *Limits) threshold(c Condition) Threshold {
	switch c {
	case HiHi:
		return l.HiHi
	case High:
		return l.High
	case Low:
		return l.Low
	case LoLo:
		return l.LoLo
	}
	return Threshold{}
}

// classify returns the most severe value condition v is in, without hysteresis.
func (l *Limits) classify(v float64) Condition {
	best, sev := None, NoAlarm
	for _, c := range [...]Condition{HiHi, LoLo, High, Low} {
		t := l.threshold(c)
		if !t.Enabled() || t.Severity <= sev {
			continue
		}
		if (isHigh(c) && v >= t.Value) || (!isHigh(c) && v <= t.Value) {
			best, sev = c, t.Severity
		}
	}
	return best
}

// holds reports whether v is still inside condition c once hysteresis is allowed for.
func (l *Limits) holds(c Condition, v float64) bool {
	t := l.threshold(c)
	if !t.Enabled() {
		return false
	}
	if isHigh(c) {
		return v > t.Value-l.Hysteresis || v >= t.Value
	}
	return v < t.Value+l.Hysteresis || v <= t.Value
}

func isHigh(c Condition) bool { return c == HiHi || c == High }

// severityOf returns the severity of a condition under these limits.
func (l *Limits) severityOf(c Condition) Severity {
	switch c {
	case None:
		return NoAlarm
	case Comm, Stale:
		return Invalid
	case Readback:
		if l.ReadbackSeverity == NoAlarm {
			return Minor
		}
		return l.ReadbackSeverity
	}
	return l.threshold(c).Severity
}

// String formats the limits compactly for logs and the archive:
// "hihi=50(MAJOR) high=40(MINOR) hyst=0.5 delay=2s".
func (l Limits) String() string {
	var b []byte
	add := func(s string) {
		if len(b) > 0 {
			b = append(b, ' ')
		}
		b = append(b, s...)
	}
	for _, n := range []struct {
		name string
		t    Threshold
	}{{"hihi", l.HiHi}, {"high", l.High}, {"low", l.Low}, {"lolo", l.LoLo}} {
		if n.t.Enabled() {
			add(fmt.Sprintf("%s=%s(%s)", n.name, fmtNum(n.t.Value), n.t.Severity))
		}
	}
	if l.Hysteresis != 0 {
		add("hyst=" + fmtNum(l.Hysteresis))
	}
	if l.Delay != 0 {
		add("delay=" + l.Delay.String())
	}
	if l.DelaySamples != 0 {
		add(fmt.Sprintf("delay_samples=%d", l.DelaySamples))
	}
	if l.StaleAfter != 0 {
		add("stale_after=" + l.StaleAfter.String())
	}
	if l.Setpoint != "" {
		add(fmt.Sprintf("setpoint=%s tolerance=%s(%s)", l.Setpoint, fmtNum(l.Tolerance), l.severityOf(Readback)))
	}
	if len(b) == 0 {
		return "comm-only"
	}
	return string(b)
}
