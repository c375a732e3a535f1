package alarm

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Errors of operator actions. They are wrapped with detail; test with errors.Is.
var (
	// ErrNotFound: no alarm-configured channel has that name.
	ErrNotFound = errors.New("no alarm on that channel")
	// ErrBadRequest: an operator action was malformed (empty who, shelf time in the
	// past, invalid limits).
	ErrBadRequest = errors.New("bad alarm request")
	// ErrNotRunning: the engine's Serve is not running.
	ErrNotRunning = errors.New("alarm engine not running")
)

// Alarm is the state of one channel's alarm, as operators see it.
type Alarm struct {
	Device, Channel string
	// Group is the rule's group ("vacuum", "line3"), for panels that show a group.
	Group string
	// Condition and Severity are what holds now.
	Condition Condition
	Severity  Severity
	// Latched is the highest severity since the last acknowledgement.
	Latched Severity
	// Acked: the latched alarm has been acknowledged.
	Acked bool
	// Since is when the current condition began.
	Since time.Time
	// Value is the last numeric value (HasValue false for none or a non-numeric one).
	Value    float64
	HasValue bool
	Quality  telemetry.Quality
	// Message says what is wrong in words ("value 41.2 >= HIGH 40").
	Message string

	AckedBy, AckComment string
	AckedAt             time.Time

	ShelvedUntil             time.Time // zero when not shelved
	ShelvedBy, ShelveComment string

	// Limits are the limits in force.
	Limits Limits
}

// Key returns "device/channel".
func (a *Alarm) Key() string { return a.Device + "/" + a.Channel }

// Active reports whether the alarm belongs on an alarm panel: its condition holds
// or it is latched and not yet acknowledged.
func (a *Alarm) Active() bool {
	return a.Severity > NoAlarm || (a.Latched > NoAlarm && !a.Acked)
}

// Shelved reports whether the alarm is shelved at now.
func (a *Alarm) Shelved(now time.Time) bool {
	return !a.ShelvedUntil.IsZero() && now.Before(a.ShelvedUntil)
}

// Transition is one change of an alarm: what happened and the state after it.
type Transition struct {
	// Time is when it happened. An Engine makes it unique among its
	// transitions and increasing, at microsecond precision (Engine.emit), so
	// it may lie a few microseconds after the Alarm's own times.
	Time  time.Time
	Event Event
	Alarm Alarm
	// Who and Comment are set for operator actions.
	Who, Comment string
}

// Machine is the alarm state machine of one channel. It is not safe for concurrent
// use (Engine serialises it); every method takes the current time.
type Machine struct {
	a Alarm

	valueCond    Condition // accepted value condition, after hysteresis and delay
	pending      Condition // a more severe value condition waiting out the delay
	pendingSince time.Time
	pendingN     int

	lastSample time.Time
	seen       bool
	deviceDown bool
	downReason string
	badReason  string

	setpoint    float64
	hasSetpoint bool
	rbSince     time.Time // when the read-back difference began; zero when none
}

// NewMachine returns the machine of one channel with its limits, in NO_ALARM.
func NewMachine(device, channel, group string, limits Limits) *Machine {
	return &Machine{a: Alarm{Device: device, Channel: channel, Group: group, Limits: limits}}
}

// State returns a copy of the alarm's state.
func (m *Machine) State() Alarm { return m.a }

// Sample feeds one sample of the machine's channel.
func (m *Machine) Sample(now time.Time, s *telemetry.Sample) []Transition {
	ts := now
	if s.TimeNs > 0 {
		ts = time.Unix(0, s.TimeNs)
	}
	m.lastSample, m.seen = now, true
	m.a.Quality = s.Quality
	m.badReason = ""
	if s.Quality != telemetry.Good {
		m.badReason = s.Quality.String()
		if s.Err != "" {
			m.badReason += ": " + s.Err
		}
		m.a.HasValue = false
		m.valueCond, m.pending = None, None
		return m.update(ts, now)
	}
	v, ok := numeric(s.Value)
	m.a.Value, m.a.HasValue = v, ok
	if ok {
		m.stepValue(now, v, true)
	}
	return m.update(ts, now)
}

// Setpoint feeds a sample of the channel named by Limits.Setpoint.
func (m *Machine) Setpoint(now time.Time, s *telemetry.Sample) []Transition {
	v, ok := numeric(s.Value)
	if s.Quality != telemetry.Good || !ok {
		return nil
	}
	m.setpoint, m.hasSetpoint = v, true
	return m.update(now, now)
}

// DeviceState tells the machine whether its device is connected. reason says why
// not ("BACKOFF: connection refused").
func (m *Machine) DeviceState(now time.Time, up bool, reason string) []Transition {
	m.deviceDown, m.downReason = !up, reason
	if !up {
		m.valueCond, m.pending = None, None
	}
	return m.update(now, now)
}

// Tick lets time pass: delays complete, values go stale, shelves expire.
func (m *Machine) Tick(now time.Time) []Transition {
	var out []Transition
	if !m.a.ShelvedUntil.IsZero() && !now.Before(m.a.ShelvedUntil) {
		m.a.ShelvedUntil, m.a.ShelvedBy, m.a.ShelveComment = time.Time{}, "", ""
		out = append(out, Transition{Time: now, Event: Unshelved, Alarm: m.a})
	}
	if m.pending != None && m.a.HasValue {
		m.stepValue(now, m.a.Value, false)
	}
	return append(out, m.update(now, now)...)
}

// Ack acknowledges the alarm. Acknowledging an alarm that is not latched is an
// error wrapping ErrBadRequest; acknowledging twice is harmless and returns nothing.
func (m *Machine) Ack(now time.Time, who, comment string) ([]Transition, error) {
	if who == "" {
		return nil, fmt.Errorf("%w: who is required", ErrBadRequest)
	}
	if m.a.Latched == NoAlarm && m.a.Severity == NoAlarm {
		return nil, fmt.Errorf("%w: %s is not in alarm", ErrBadRequest, m.a.Key())
	}
	if m.a.Acked {
		return nil, nil
	}
	m.a.Acked = true
	m.a.AckedBy, m.a.AckComment, m.a.AckedAt = who, comment, now
	m.a.Latched = m.a.Severity // the latch restarts from what holds now
	return []Transition{{Time: now, Event: Acked, Alarm: m.a, Who: who, Comment: comment}}, nil
}

// Shelve suppresses the alarm on panels until until; a zero until unshelves it.
func (m *Machine) Shelve(now, until time.Time, who, comment string) ([]Transition, error) {
	if who == "" {
		return nil, fmt.Errorf("%w: who is required", ErrBadRequest)
	}
	if until.IsZero() {
		if m.a.ShelvedUntil.IsZero() {
			return nil, nil
		}
		m.a.ShelvedUntil, m.a.ShelvedBy, m.a.ShelveComment = time.Time{}, "", ""
		return []Transition{{Time: now, Event: Unshelved, Alarm: m.a, Who: who, Comment: comment}}, nil
	}
	if !until.After(now) {
		return nil, fmt.Errorf("%w: shelve until %s is not in the future", ErrBadRequest, until.UTC().Format(time.RFC3339))
	}
	m.a.ShelvedUntil, m.a.ShelvedBy, m.a.ShelveComment = until, who, comment
	return []Transition{{Time: now, Event: Shelved, Alarm: m.a, Who: who, Comment: comment}}, nil
}

// SetLimits replaces the limits and re-evaluates the last value under them.
func (m *Machine) SetLimits(now time.Time, l Limits, who, comment string) ([]Transition, error) {
	if who == "" {
		return nil, fmt.Errorf("%w: who is required", ErrBadRequest)
	}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	m.a.Limits = l
	m.valueCond, m.pending, m.pendingN = None, None, 0
	if m.a.HasValue && !m.deviceDown && m.a.Quality == telemetry.Good {
		m.stepValue(now, m.a.Value, false)
	}
	out := []Transition{{Time: now, Event: LimitsChanged, Alarm: m.a, Who: who, Comment: comment}}
	tr := m.update(now, now)
	out[0].Alarm = m.a
	if len(tr) > 0 {
		out[0].Alarm = tr[0].Alarm
	}
	return append(out, tr...), nil
}

// stepValue moves the accepted value condition for value v: hysteresis on the way
// down, delay on the way up. sample is true when v just arrived (it counts toward
// DelaySamples) and false when time passed or the limits changed.
func (m *Machine) stepValue(now time.Time, v float64, sample bool) {
	l := &m.a.Limits
	cand := l.classify(v)
	curSev := l.severityOf(m.valueCond)
	if l.severityOf(cand) < curSev && l.holds(m.valueCond, v) {
		cand = m.valueCond // hysteresis keeps the current condition
	}
	if l.severityOf(cand) <= curSev {
		m.valueCond, m.pending, m.pendingN = cand, None, 0
		return
	}
	if l.Delay <= 0 && l.DelaySamples <= 0 {
		m.valueCond, m.pending, m.pendingN = cand, None, 0
		return
	}
	if m.pending != cand {
		m.pending, m.pendingSince, m.pendingN = cand, now, 0
	}
	if sample {
		m.pendingN++
	}
	if now.Sub(m.pendingSince) >= l.Delay && m.pendingN >= l.DelaySamples {
		m.valueCond, m.pending, m.pendingN = cand, None, 0
	}
}

// evaluate returns the condition that holds now and a message for it.
func (m *Machine) evaluate(now time.Time) (Condition, string) {
	l := &m.a.Limits
	switch {
	case m.deviceDown:
		return Comm, "device down: " + m.downReason
	case m.badReason != "":
		return Comm, "reading " + m.badReason
	case l.StaleAfter > 0 && m.seen && now.Sub(m.lastSample) > l.StaleAfter:
		return Stale, "no sample for " + now.Sub(m.lastSample).Truncate(time.Millisecond).String()
	}
	best, msg := m.valueCond, ""
	if best != None {
		op := ">="
		if !isHigh(best) {
			op = "<="
		}
		msg = fmt.Sprintf("value %s %s %s %s", fmtNum(m.a.Value), op, best, fmtNum(l.threshold(best).Value))
	}
	if l.Setpoint != "" && m.hasSetpoint && m.a.HasValue {
		diff := math.Abs(m.a.Value - m.setpoint)
		if diff > l.Tolerance {
			if m.rbSince.IsZero() {
				m.rbSince = now
			}
			if now.Sub(m.rbSince) >= l.ReadbackDelay && l.severityOf(Readback) > l.severityOf(best) {
				best = Readback
				msg = fmt.Sprintf("read-back %s differs from set-point %s by more than %s", fmtNum(m.a.Value), fmtNum(m.setpoint), fmtNum(l.Tolerance))
			}
		} else {
			m.rbSince = time.Time{}
		}
	}
	return best, msg
}

// update re-evaluates and returns the transition, if the condition changed.
func (m *Machine) update(ts, now time.Time) []Transition {
	cond, msg := m.evaluate(now)
	m.a.Message = msg
	if cond == m.a.Condition {
		return nil
	}
	old := m.a.Severity
	sev := m.a.Limits.severityOf(cond)
	m.a.Condition, m.a.Severity, m.a.Since = cond, sev, ts
	var ev Event
	switch {
	case sev > old:
		ev = Raised
		if sev > m.a.Latched || m.a.Acked {
			m.a.Latched = max(m.a.Latched, sev)
			m.a.Acked = false
			m.a.AckedBy, m.a.AckComment, m.a.AckedAt = "", "", time.Time{}
		}
	case sev == NoAlarm:
		ev = Cleared
		if m.a.Acked {
			m.a.Latched = NoAlarm
		}
	default:
		ev = Changed
	}
	return []Transition{{Time: ts, Event: ev, Alarm: m.a}}
}

// numeric returns a sample value as a float64, if it has one.
func numeric(v telemetry.Value) (float64, bool) {
	switch v.Kind {
	case telemetry.KindFloat:
		return v.F, !math.IsNaN(v.F)
	case telemetry.KindInt:
		return float64(v.I), true
	case telemetry.KindBool:
		if v.B {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
