package alarm

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Operator is the part of an alarm's state that must outlive the process that
// evaluates it: the condition it is in, what it latched and what operators did.
// In a cluster the device's owner saves it after every transition and the next
// owner restores it (Engine.Restore), so an acknowledgement or a shelf
// survives a failover, and a condition that still holds is not raised again.
type Operator struct {
	Device, Channel string
	Condition       Condition
	Severity        Severity
	Since           time.Time
	Latched         Severity
	Acked           bool

	AckedBy, AckComment string
	AckedAt             time.Time

	ShelvedUntil             time.Time
	ShelvedBy, ShelveComment string
}

// OperatorOf is the operator state of an alarm.
func OperatorOf(a *Alarm) Operator {
	return Operator{Device: a.Device, Channel: a.Channel, Condition: a.Condition, Severity: a.Severity, Since: a.Since,
		Latched: a.Latched, Acked: a.Acked, AckedBy: a.AckedBy, AckComment: a.AckComment, AckedAt: a.AckedAt,
		ShelvedUntil: a.ShelvedUntil, ShelvedBy: a.ShelvedBy, ShelveComment: a.ShelveComment}
}

// ParseCondition parses a condition's name ("HIGH"), case-insensitively.
func ParseCondition(s string) (Condition, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for i, n := range conditionNames {
		if n == u {
			return Condition(i), nil
		}
	}
	return 0, fmt.Errorf("unknown alarm condition %q", s)
}

// Restore adopts saved states: each alarm's condition, latch, acknowledgement
// and shelf become the saved ones (a channel no rule selects is skipped). The
// samples that follow are judged from there, so a condition that still holds
// raises nothing and its acknowledgement stands. It emits no transition.
func (e *Engine) Restore(ctx context.Context, states []Operator) error {
	return e.do(ctx, func() {
		for _, s := range states {
			m := e.machine(s.Device, s.Channel)
			if m == nil {
				continue
			}
			m.a.Condition, m.a.Severity, m.a.Since = s.Condition, s.Severity, s.Since
			switch s.Condition {
			case HiHi, LoLo, High, Low:
				m.valueCond = s.Condition // accepted already: no new delay
			}
			m.a.Latched, m.a.Acked = s.Latched, s.Acked
			m.a.AckedBy, m.a.AckComment, m.a.AckedAt = s.AckedBy, s.AckComment, s.AckedAt
			m.a.ShelvedUntil, m.a.ShelvedBy, m.a.ShelveComment = s.ShelvedUntil, s.ShelvedBy, s.ShelveComment
		}
		e.countActive()
	})
}
