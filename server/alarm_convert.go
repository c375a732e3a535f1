package server

import (
	"time"

	"github.com/switchyard/switchyard/alarm"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
)

// The alarm enums are numbered one above the domain's (zero is UNSPECIFIED).

func severityToProto(s alarm.Severity) pb.Severity { return pb.Severity(s + 1) }

func severityFromProto(field string, s pb.Severity, def alarm.Severity) (alarm.Severity, error) {
	switch {
	case s == pb.Severity_SEVERITY_UNSPECIFIED:
		return def, nil
	case s >= pb.Severity_SEVERITY_NO_ALARM && s <= pb.Severity_SEVERITY_INVALID:
		return alarm.Severity(s - 1), nil
	}
	return 0, errField(field, "unknown severity %d", s)
}

func thresholdToProto(t alarm.Threshold) *pb.Threshold {
	if !t.Enabled() {
		return nil
	}
	return &pb.Threshold{Value: t.Value, Severity: severityToProto(t.Severity)}
}

func limitsToProto(l *alarm.Limits) *pb.AlarmLimits {
	return &pb.AlarmLimits{
		Hihi: thresholdToProto(l.HiHi), High: thresholdToProto(l.High),
		Low: thresholdToProto(l.Low), Lolo: thresholdToProto(l.LoLo),
		Hysteresis:       l.Hysteresis,
		DelayMs:          uint32(l.Delay.Milliseconds()),
		DelaySamples:     uint32(l.DelaySamples),
		StaleAfterMs:     uint32(l.StaleAfter.Milliseconds()),
		Setpoint:         l.Setpoint,
		Tolerance:        l.Tolerance,
		ReadbackSeverity: readbackSeverityToProto(l),
		ReadbackDelayMs:  uint32(l.ReadbackDelay.Milliseconds()),
	}
}

// limitsFromProto converts and validates request limits; errors name the field.
func limitsFromProto(field string, p *pb.AlarmLimits) (alarm.Limits, error) {
	if p == nil {
		return alarm.Limits{}, errField(field, "required")
	}
	var l alarm.Limits
	thr := func(name string, t *pb.Threshold, def alarm.Severity) (alarm.Threshold, error) {
		if t == nil {
			return alarm.Threshold{}, nil
		}
		sev, err := severityFromProto(field+"."+name+".severity", t.GetSeverity(), def)
		if err != nil {
			return alarm.Threshold{}, err
		}
		if sev == alarm.NoAlarm {
			return alarm.Threshold{}, errField(field+"."+name+".severity", "NO_ALARM disables nothing; leave %s unset instead", name)
		}
		return alarm.Threshold{Value: t.GetValue(), Severity: sev}, nil
	}
	var err error
	if l.HiHi, err = thr("hihi", p.GetHihi(), alarm.Major); err != nil {
		return l, err
	}
	if l.High, err = thr("high", p.GetHigh(), alarm.Minor); err != nil {
		return l, err
	}
	if l.Low, err = thr("low", p.GetLow(), alarm.Minor); err != nil {
		return l, err
	}
	if l.LoLo, err = thr("lolo", p.GetLolo(), alarm.Major); err != nil {
		return l, err
	}
	if l.ReadbackSeverity, err = severityFromProto(field+".readback_severity", p.GetReadbackSeverity(), alarm.NoAlarm); err != nil {
		return l, err
	}
	l.Hysteresis = p.GetHysteresis()
	l.Delay = time.Duration(p.GetDelayMs()) * time.Millisecond
	l.DelaySamples = int(p.GetDelaySamples())
	l.StaleAfter = time.Duration(p.GetStaleAfterMs()) * time.Millisecond
	l.Setpoint, l.Tolerance = p.GetSetpoint(), p.GetTolerance()
	l.ReadbackDelay = time.Duration(p.GetReadbackDelayMs()) * time.Millisecond
	if err := l.Validate(); err != nil {
		return l, errField(field, "%v", err)
	}
	return l, nil
}

func alarmToProto(a *alarm.Alarm) *pb.Alarm {
	m := &pb.Alarm{
		Device: a.Device, Channel: a.Channel, Group: a.Group,
		Condition:      pb.AlarmCondition(a.Condition + 1),
		Severity:       severityToProto(a.Severity),
		Latched:        severityToProto(a.Latched),
		Acked:          a.Acked,
		SinceNs:        unixNano(a.Since),
		Quality:        qualityToProto(a.Quality),
		Message:        a.Message,
		AckedBy:        a.AckedBy,
		AckComment:     a.AckComment,
		AckedAtNs:      unixNano(a.AckedAt),
		ShelvedUntilNs: unixNano(a.ShelvedUntil),
		ShelvedBy:      a.ShelvedBy,
		ShelveComment:  a.ShelveComment,
		Limits:         limitsToProto(&a.Limits),
	}
	if a.HasValue {
		v := a.Value
		m.Value = &v
	}
	return m
}

func transitionToProto(t *alarm.Transition) *pb.AlarmTransition {
	return &pb.AlarmTransition{
		TimestampNs: unixNano(t.Time),
		Event:       pb.AlarmEvent(t.Event),
		Alarm:       alarmToProto(&t.Alarm),
		Who:         t.Who,
		Comment:     t.Comment,
	}
}

// readbackSeverityToProto leaves the default (and an unused read-back check)
// unspecified.
func readbackSeverityToProto(l *alarm.Limits) pb.Severity {
	if l.ReadbackSeverity == alarm.NoAlarm {
		return pb.Severity_SEVERITY_UNSPECIFIED
	}
	return severityToProto(l.ReadbackSeverity)
}
