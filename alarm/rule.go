package alarm

import (
	"fmt"
	"path"
)

// Rule gives the channels it selects their alarm limits.
type Rule struct {
	// Devices and Channels are glob patterns (path.Match syntax). A channel is
	// selected when its device matches any device pattern and its name any channel
	// pattern; an empty list matches everything.
	Devices, Channels []string
	// Group names the set of alarms this rule belongs to ("vacuum", "line3"), so a
	// panel can watch one group. Optional.
	Group string
	// Limits of every selected channel.
	Limits Limits
}

// Validate checks the rule; errors name the field.
func (r *Rule) Validate() error {
	for i, p := range r.Devices {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("device[%d]: bad glob pattern %q", i, p)
		}
	}
	for i, p := range r.Channels {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return fmt.Errorf("channel[%d]: bad glob pattern %q", i, p)
		}
	}
	return r.Limits.Validate()
}

// Matches reports whether the rule selects device/channel.
func (r *Rule) Matches(device, channel string) bool {
	return matchAny(r.Devices, device) && matchAny(r.Channels, channel)
}

func matchAny(patterns []string, name string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}
