package supervisor

import (
	"errors"
	"fmt"
	"time"
)

// Strategy decides which children restart when one of them must restart.
type Strategy uint8

// Restart strategies, with OTP's meaning. The zero value is OneForOne.
const (
	// OneForOne restarts only the child that exited.
	OneForOne Strategy = iota
	// OneForAll stops all other children (in reverse order) and restarts
	// them all (in order).
	OneForAll
	// RestForOne stops the children started after the one that exited
	// (in reverse order) and restarts it and them (in order).
	RestForOne
)

var strategyNames = [...]string{"one_for_one", "one_for_all", "rest_for_one"}

// String returns OTP's name: "one_for_one", "one_for_all" or "rest_for_one".
func (s Strategy) String() string {
	if int(s) < len(strategyNames) {
		return strategyNames[s]
	}
	return "unknown"
}

// group returns, in start order, the children that restart together with c.
func (s *Supervisor) group(c *child) []*child {
	switch s.opts.Strategy {
	case OneForAll:
		return s.snapshotChildren()
	case RestForOne:
		all := s.snapshotChildren()
		for i, x := range all {
			if x == c {
				return all[i:]
			}
		}
	}
	return []*child{c}
}

// onExit accounts for an incarnation that ended by itself (or, for a
// leaked one, finally ended).
func (s *Supervisor) onExit(c *child, inst *instance) {
	if inst.handled || inst != c.inst || c.removed {
		return
	}
	inst.handled = true
	inst.cancel()
	c.deadline = time.Time{}
	if inst.stopping {
		// A leaked incarnation finally ended.
		s.mu.Lock()
		c.lastExit = "shutdown (after leaking)"
		switch {
		case c.pending:
			c.state = BackingOff
			c.nextShown = c.next
		default:
			c.state = Stopped
		}
		s.mu.Unlock()
		s.emit(Event{Kind: EventStopped, Child: c.spec.ID, Reason: c.lastExit})
		if c.removing {
			s.mu.Lock()
			s.dropLocked(c)
			s.mu.Unlock()
			s.emit(Event{Kind: EventRemoved, Child: c.spec.ID})
		}
		return
	}
	abnormal := inst.err != nil
	text := exitText(inst.err)
	s.mu.Lock()
	c.state = Stopped
	c.lastExit = text
	s.mu.Unlock()
	s.emit(Event{Kind: EventExited, Child: c.spec.ID, Reason: text, Restarts: c.restarts})
	var p *PanicError
	switch {
	case errors.As(inst.err, &p):
		s.log.Error("child panicked", "child", c.spec.ID, "panic", p.Value, "stack", string(p.Stack))
	case abnormal:
		s.log.Warn("child failed", "child", c.spec.ID, "err", inst.err)
	default:
		s.log.Debug("child exited normally", "child", c.spec.ID)
	}
	s.afterExit(c, abnormal, inst.err)
}

// afterExit applies the restart type, intensity, strategy and backoff to a
// child that has just exited by itself.
func (s *Supervisor) afterExit(c *child, abnormal bool, cause error) {
	restart := c.spec.Restart == Permanent || (c.spec.Restart == Transient && abnormal)
	if !restart {
		s.closeMailbox(c, ErrStopped)
		if c.spec.Restart == Temporary {
			s.mu.Lock()
			s.dropLocked(c)
			s.mu.Unlock()
		}
		if c.spec.Significant {
			s.autoShutdown()
		}
		return
	}
	s.closeMailbox(c, ErrRestarted)
	now := time.Now()
	if s.intensityExceeded(now) {
		s.term = &EscalationError{
			Supervisor:  s.id,
			MaxRestarts: max(s.opts.MaxRestarts, 0),
			MaxTime:     s.opts.MaxTime,
			Child:       c.spec.ID,
			Cause:       cause,
		}
		s.log.Error("restart intensity exceeded; escalating", "child", c.spec.ID, "err", cause)
		return
	}
	group := s.group(c)
	for i := len(group) - 1; i >= 0; i-- {
		if m := group[i]; m != c {
			m.pending = false
			why := ErrRestarted
			if m.spec.Restart == Temporary {
				why = ErrStopped
			}
			s.stop(m, why)
		}
	}
	b := s.opts.Backoff
	if c.spec.Backoff != nil {
		b = restartBackoff(*c.spec.Backoff)
	}
	if now.Sub(c.started) >= b.ResetAfter {
		c.failures = 0
	}
	c.failures++
	delay := b.Delay(c.failures, s.opts.Rand())
	next := now.Add(delay)
	for _, m := range group {
		if m != c && m.spec.Restart == Temporary {
			s.mu.Lock()
			s.dropLocked(m)
			s.mu.Unlock()
			continue
		}
		m.pending = true
		m.next = next
		m.async = len(group) == 1 && s.opts.Strategy == OneForOne
		s.mu.Lock()
		if m.state != Leaked {
			m.state = BackingOff
		}
		m.nextShown = next
		s.mu.Unlock()
	}
	s.emit(Event{Kind: EventRestartScheduled, Child: c.spec.ID, NextRestart: next, Restarts: c.restarts})
}

func (s *Supervisor) closeMailbox(c *child, why error) {
	if c.spec.Mailbox != nil {
		c.spec.Mailbox.shut(fmt.Errorf("process %q: %w", c.spec.ID, why))
	}
}

func (s *Supervisor) intensityExceeded(now time.Time) bool {
	if s.opts.MaxRestarts < 0 {
		return true
	}
	cutoff := now.Add(-s.opts.MaxTime)
	kept := s.restartLog[:0]
	for _, t := range s.restartLog {
		if t.After(cutoff) {
			kept = append(kept, t)
		}
	}
	s.restartLog = append(kept, now)
	return len(s.restartLog) > s.opts.MaxRestarts
}

func (s *Supervisor) autoShutdown() {
	switch s.opts.AutoShutdown {
	case AnySignificant:
		s.term = errNormalStop
	case AllSignificant:
		for _, c := range s.snapshotChildren() {
			if c.spec.Significant && (c.alive() || c.pending) {
				return
			}
		}
		s.term = errNormalStop
	default:
		return
	}
	s.log.Info("auto-shutdown: significant children exited")
	s.emit(Event{Kind: EventAutoShutdown})
}
