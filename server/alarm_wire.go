package server

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/switchyard/switchyard/alarm"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/telemetry"
)

// The wire form of alarms between cluster nodes is the API's messages
// (Alarm, AlarmTransition, AlarmLimits) in their binary encoding: one
// definition for clients and nodes, and every float (an infinite reading, a
// NaN) survives it. A node routes an operator action to a device's owner with
// the limits encoded, and the owner answers with the alarm; owners publish
// transitions and save alarms for every node to list and watch.

// EncodeAlarm is an alarm's wire form.
func EncodeAlarm(a *alarm.Alarm) []byte {
	b, _ := proto.Marshal(alarmToProto(a)) // a message of plain fields always marshals
	return b
}

// DecodeAlarm reads an alarm's wire form.
func DecodeAlarm(b []byte) (alarm.Alarm, error) {
	var m pb.Alarm
	if err := proto.Unmarshal(b, &m); err != nil {
		return alarm.Alarm{}, fmt.Errorf("alarm: %w", err)
	}
	return alarmFromProto(&m)
}

// EncodeTransition is an alarm transition's wire form.
func EncodeTransition(t *alarm.Transition) []byte {
	b, _ := proto.Marshal(transitionToProto(t))
	return b
}

// DecodeTransition reads an alarm transition's wire form.
func DecodeTransition(b []byte) (alarm.Transition, error) {
	var m pb.AlarmTransition
	if err := proto.Unmarshal(b, &m); err != nil {
		return alarm.Transition{}, fmt.Errorf("alarm transition: %w", err)
	}
	if m.GetEvent() < pb.AlarmEvent_ALARM_EVENT_RAISED || m.GetEvent() > pb.AlarmEvent_ALARM_EVENT_LIMITS_CHANGED {
		return alarm.Transition{}, fmt.Errorf("alarm transition: unknown event %d", m.GetEvent())
	}
	a, err := alarmFromProto(m.GetAlarm())
	if err != nil {
		return alarm.Transition{}, fmt.Errorf("alarm transition: %w", err)
	}
	return alarm.Transition{Time: timeFromNs(m.GetTimestampNs()), Event: alarm.Event(m.GetEvent()), Alarm: a,
		Who: m.GetWho(), Comment: m.GetComment()}, nil
}

// EncodeLimits is alarm limits' wire form.
func EncodeLimits(l *alarm.Limits) []byte {
	b, _ := proto.Marshal(limitsToProto(l))
	return b
}

// DecodeLimits reads alarm limits' wire form and validates them.
func DecodeLimits(b []byte) (alarm.Limits, error) {
	var m pb.AlarmLimits
	if err := proto.Unmarshal(b, &m); err != nil {
		return alarm.Limits{}, fmt.Errorf("alarm limits: %w", err)
	}
	return limitsFromProto("limits", &m)
}

// alarmFromProto is alarmToProto's inverse.
func alarmFromProto(m *pb.Alarm) (alarm.Alarm, error) {
	if m == nil {
		return alarm.Alarm{}, fmt.Errorf("no alarm")
	}
	if m.GetCondition() < pb.AlarmCondition_ALARM_CONDITION_NONE || m.GetCondition() > pb.AlarmCondition_ALARM_CONDITION_READBACK {
		return alarm.Alarm{}, fmt.Errorf("%s/%s: unknown condition %d", m.GetDevice(), m.GetChannel(), m.GetCondition())
	}
	sev := func(field string, s pb.Severity) (alarm.Severity, error) {
		return severityFromProto(field, s, alarm.NoAlarm)
	}
	severity, err := sev("severity", m.GetSeverity())
	if err != nil {
		return alarm.Alarm{}, err
	}
	latched, err := sev("latched", m.GetLatched())
	if err != nil {
		return alarm.Alarm{}, err
	}
	if m.GetQuality() > pb.Quality_QUALITY_DISCONNECTED {
		return alarm.Alarm{}, fmt.Errorf("%s/%s: unknown quality %d", m.GetDevice(), m.GetChannel(), m.GetQuality())
	}
	var quality telemetry.Quality // unspecified: good, as alarmToProto never writes it for a known one
	if m.GetQuality() != pb.Quality_QUALITY_UNSPECIFIED {
		quality = telemetry.Quality(m.GetQuality() - 1)
	}
	a := alarm.Alarm{Device: m.GetDevice(), Channel: m.GetChannel(), Group: m.GetGroup(),
		Condition: alarm.Condition(m.GetCondition() - 1), Severity: severity, Latched: latched, Acked: m.GetAcked(),
		Since: timeFromNs(m.GetSinceNs()), Quality: quality, Message: m.GetMessage(),
		AckedBy: m.GetAckedBy(), AckComment: m.GetAckComment(), AckedAt: timeFromNs(m.GetAckedAtNs()),
		ShelvedUntil: timeFromNs(m.GetShelvedUntilNs()), ShelvedBy: m.GetShelvedBy(), ShelveComment: m.GetShelveComment()}
	if m.Value != nil {
		a.Value, a.HasValue = m.GetValue(), true
	}
	if m.GetLimits() != nil {
		if a.Limits, err = limitsFromProto("limits", m.GetLimits()); err != nil {
			return alarm.Alarm{}, err
		}
	}
	return a, nil
}

// timeFromNs is unixNano's inverse: zero is the zero time.
func timeFromNs(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}
