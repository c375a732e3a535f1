package config

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/switchyard/switchyard/alarm"
)

// Alarm is one entry of the top-level `alarms:` section: the limits of every channel
// its device and channel globs select, EPICS-style.
//
//	alarms:
//	  - {device: "psu-*", channel: voltage, group: power, hihi: 50, high: 40, low: 5, lolo: 1, hysteresis: 0.5, delay: 2s}
//
// Severities default to MAJOR for hihi/lolo and MINOR for high/low. The first entry
// that selects a channel applies.
type Alarm struct {
	Device  string `yaml:"device"`
	Channel string `yaml:"channel"`
	Group   string `yaml:"group,omitempty"`

	HiHi *float64 `yaml:"hihi,omitempty"`
	High *float64 `yaml:"high,omitempty"`
	Low  *float64 `yaml:"low,omitempty"`
	LoLo *float64 `yaml:"lolo,omitempty"`

	HiHiSeverity string `yaml:"hihi_severity,omitempty"`
	HighSeverity string `yaml:"high_severity,omitempty"`
	LowSeverity  string `yaml:"low_severity,omitempty"`
	LoLoSeverity string `yaml:"lolo_severity,omitempty"`

	Hysteresis   float64  `yaml:"hysteresis,omitempty"`
	Delay        Duration `yaml:"delay,omitempty"`
	DelaySamples int      `yaml:"delay_samples,omitempty"`
	StaleAfter   Duration `yaml:"stale_after,omitempty"`

	Setpoint         string   `yaml:"setpoint,omitempty"`
	Tolerance        float64  `yaml:"tolerance,omitempty"`
	ReadbackSeverity string   `yaml:"readback_severity,omitempty"`
	ReadbackDelay    Duration `yaml:"readback_delay,omitempty"`
}

// Rule converts the entry to an alarm rule.
func (a *Alarm) Rule() (alarm.Rule, error) {
	r := alarm.Rule{Group: a.Group}
	if a.Device != "" {
		r.Devices = []string{a.Device}
	}
	if a.Channel != "" {
		r.Channels = []string{a.Channel}
	}
	l := &r.Limits
	thr := func(name string, v *float64, sev string, def alarm.Severity) (alarm.Threshold, error) {
		if v == nil {
			if sev != "" {
				return alarm.Threshold{}, fmt.Errorf("%s_severity: set without %s", name, name)
			}
			return alarm.Threshold{}, nil
		}
		t := alarm.Threshold{Value: *v, Severity: def}
		if sev != "" {
			s, err := alarm.ParseSeverity(sev)
			if err != nil {
				return t, fmt.Errorf("%s_severity: %w", name, err)
			}
			t.Severity = s
		}
		return t, nil
	}
	var err error
	if l.HiHi, err = thr("hihi", a.HiHi, a.HiHiSeverity, alarm.Major); err != nil {
		return r, err
	}
	if l.High, err = thr("high", a.High, a.HighSeverity, alarm.Minor); err != nil {
		return r, err
	}
	if l.Low, err = thr("low", a.Low, a.LowSeverity, alarm.Minor); err != nil {
		return r, err
	}
	if l.LoLo, err = thr("lolo", a.LoLo, a.LoLoSeverity, alarm.Major); err != nil {
		return r, err
	}
	l.Hysteresis, l.Delay, l.DelaySamples = a.Hysteresis, time.Duration(a.Delay), a.DelaySamples
	l.StaleAfter = time.Duration(a.StaleAfter)
	l.Setpoint, l.Tolerance, l.ReadbackDelay = a.Setpoint, a.Tolerance, time.Duration(a.ReadbackDelay)
	if a.ReadbackSeverity != "" {
		if l.ReadbackSeverity, err = alarm.ParseSeverity(a.ReadbackSeverity); err != nil {
			return r, fmt.Errorf("readback_severity: %w", err)
		}
	}
	return r, nil
}

// checkAlarms validates the alarms section; add reports an error at a YAML path.
func (c *Config) checkAlarms(add func(path, format string, args ...any)) {
	for i := range c.Alarms {
		a := &c.Alarms[i]
		at := fmt.Sprintf("alarms[%d]", i)
		for _, g := range []struct{ field, v string }{{"device", a.Device}, {"channel", a.Channel}} {
			if g.v == "" {
				add(at+"."+g.field, "required (a glob such as \"*\")")
			} else if _, err := path.Match(g.v, ""); err != nil {
				add(at+"."+g.field, "bad glob pattern %q", g.v)
			}
		}
		r, err := a.Rule()
		if err == nil {
			err = r.Limits.Validate()
		}
		if err != nil {
			for _, e := range splitJoined(err) {
				field, msg, _ := strings.Cut(e.Error(), ": ")
				add(at+"."+field, "%s", msg)
			}
		}
	}
}

// splitJoined returns the errors of an errors.Join, or err itself.
func splitJoined(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// AlarmRules converts the alarms section; call it on a Config that Parse accepted.
func (c *Config) AlarmRules() []alarm.Rule {
	out := make([]alarm.Rule, 0, len(c.Alarms))
	for i := range c.Alarms {
		r, _ := c.Alarms[i].Rule()
		out = append(out, r)
	}
	return out
}
