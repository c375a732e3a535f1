package alarm

import (
	"sync"

	"github.com/switchyard/switchyard/telemetry"
)

// Interest says which samples an Engine can act on: those of a channel a rule
// selects, of a channel that is the set-point of such a rule on its device, or
// of a channel given limits (or a set-point) at run time through SetLimits.
// Subscribe the engine with Match: interest.Wants, so that samples it would
// ignore never reach its queue: a poll of a channel without alarms then costs
// the engine nothing, not even a wake-up. Wants may answer true for a sample
// the engine ignores (never the reverse), and it is safe for concurrent use:
// it runs on the publishers' goroutines.
type Interest struct {
	rules []Rule
	// known caches, per channel, whether it is wanted. A channel's answer only
	// ever goes from false to true (SetLimits), so a stale read is at worst a
	// sample published as the limits were being set.
	known sync.Map // chanKey -> bool
	mu    sync.Mutex
	added map[chanKey]bool // channels given limits at run time; guarded by mu
}

type chanKey struct{ device, channel string }

// NewInterest returns the Interest of rules (the engine's rules, which must not
// change afterwards). Pass it to the engine in Options.Interest.
func NewInterest(rules []Rule) *Interest {
	return &Interest{rules: rules, added: map[chanKey]bool{}}
}

// Wants reports whether the engine may act on s.
func (in *Interest) Wants(s *telemetry.Sample) bool {
	k := chanKey{s.Device, s.Channel}
	if v, ok := in.known.Load(k); ok {
		return v.(bool)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	v := in.added[k] || in.ruleWants(s.Device, s.Channel)
	in.known.Store(k, v)
	return v
}

// ruleWants reports whether a rule selects device/channel or names channel as
// the set-point of a rule whose devices include device.
func (in *Interest) ruleWants(device, channel string) bool {
	for i := range in.rules {
		r := &in.rules[i]
		if r.Matches(device, channel) || r.Limits.Setpoint == channel && matchAny(r.Devices, device) {
			return true
		}
	}
	return false
}

// add makes the samples of device/channel wanted from now on.
func (in *Interest) add(device, channel string) {
	if in == nil || channel == "" {
		return
	}
	k := chanKey{device, channel}
	in.mu.Lock()
	defer in.mu.Unlock()
	in.added[k] = true
	in.known.Store(k, true)
}
