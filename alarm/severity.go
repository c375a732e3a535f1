package alarm

import (
	"fmt"
	"strconv"
	"strings"
)

// Severity is how bad an alarm is, in EPICS terms. Higher is worse.
type Severity uint8

// Severities.
const (
	NoAlarm Severity = iota // the channel is within its limits
	Minor                   // a warning: HIGH or LOW by default
	Major                   // an alarm: HIHI or LOLO by default
	Invalid                 // the value cannot be trusted: comm failure, BAD reading, stale
)

var severityNames = [...]string{"NO_ALARM", "MINOR", "MAJOR", "INVALID"}

// String returns the severity's name as used in the API, the archive and YAML.
func (s Severity) String() string {
	if int(s) < len(severityNames) {
		return severityNames[s]
	}
	return "Severity(" + strconv.Itoa(int(s)) + ")"
}

// ParseSeverity parses a severity name (case-insensitive; "NONE" is NO_ALARM).
func ParseSeverity(s string) (Severity, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	if u == "NONE" {
		return NoAlarm, nil
	}
	for i, n := range severityNames {
		if n == u {
			return Severity(i), nil
		}
	}
	return 0, fmt.Errorf("unknown severity %q (want MINOR, MAJOR, INVALID or NO_ALARM)", s)
}

// Condition is why an alarm is raised.
type Condition uint8

// Conditions. When several hold at once the alarm shows the most severe (and, for
// equal severity, the one listed first here after None).
const (
	None     Condition = iota // no alarm
	Comm                      // device down or its reading BAD (quality not GOOD)
	Stale                     // no sample for longer than Limits.StaleAfter
	HiHi                      // value >= HiHi
	LoLo                      // value <= LoLo
	High                      // value >= High
	Low                       // value <= Low
	Readback                  // read-back differs from the set-point by more than the tolerance
)

var conditionNames = [...]string{"NONE", "COMM", "STALE", "HIHI", "LOLO", "HIGH", "LOW", "READBACK"}

// String returns the condition's name as used in the API and the archive.
func (c Condition) String() string {
	if int(c) < len(conditionNames) {
		return conditionNames[c]
	}
	return "Condition(" + strconv.Itoa(int(c)) + ")"
}

// Event is what happened in a Transition.
type Event uint8

// Events.
const (
	// Raised: the alarm's severity rose (from NO_ALARM or from a lower severity).
	Raised Event = iota + 1
	// Changed: the condition changed to another that is no more severe and is
	// still an alarm.
	Changed
	// Cleared: the condition ended. If unacknowledged, the alarm stays latched.
	Cleared
	// Acked: an operator acknowledged the alarm.
	Acked
	// Shelved: an operator shelved the alarm until a time.
	Shelved
	// Unshelved: the shelf time ran out or an operator unshelved the alarm.
	Unshelved
	// LimitsChanged: the channel's limits were changed at run time.
	LimitsChanged
)

var eventNames = [...]string{"", "RAISED", "CHANGED", "CLEARED", "ACKED", "SHELVED", "UNSHELVED", "LIMITS_CHANGED"}

// String returns the event's name as used in the API and the archive.
func (e Event) String() string {
	if int(e) < len(eventNames) && e != 0 {
		return eventNames[e]
	}
	return "Event(" + strconv.Itoa(int(e)) + ")"
}
