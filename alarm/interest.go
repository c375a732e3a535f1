package alarm

import (
	"sync/atomic"

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
	// known holds, per channel seen, whether it is wanted. A channel's
	// answer only ever goes from false to true (SetLimits), so a stale read
	// is at worst a sample published as the limits were being set.
	known telemetry.ChannelIndex[*atomic.Bool]
}

type chanKey struct{ device, channel string }

// NewInterest returns the Interest of rules (the engine's rules, which must not
// change afterwards). Pass it to the engine in Options.Interest.
func NewInterest(rules []Rule) *Interest {
	return &Interest{rules: rules}
}

// Wants reports whether the engine may act on s.
func (in *Interest) Wants(s *telemetry.Sample) bool {
	return in.flag(s.Device, s.Channel).Load()
}

// flag returns the answer of device/channel, working it out from the rules
// the first time.
func (in *Interest) flag(device, channel string) *atomic.Bool {
	return in.known.GetOrAdd(device, channel, func() *atomic.Bool {
		b := new(atomic.Bool)
		b.Store(in.ruleWants(device, channel))
		return b
	})
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
	in.flag(device, channel).Store(true)
}
