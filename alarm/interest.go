package alarm

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/switchyard/switchyard/telemetry"
)

// Interest says which samples an Engine can act on: those of a channel a rule
// selects, of a channel that is the set-point of such a rule on its device, or
// of a channel given limits (or a set-point) at run time through SetLimits.
// Subscribe the engine with Match: interest.Wants, so that samples it would
// ignore never reach its queue: a poll of a channel without alarms then costs
// the engine nothing, not even a wake-up. Wants may answer true for a sample
// the engine ignores (never the reverse, except for a sample published while
// the rules are being replaced), and it is safe for concurrent use: it runs on
// the publishers' goroutines.
type Interest struct {
	rules atomic.Pointer[[]Rule]
	// extra holds the channels given limits at run time (copy-on-write,
	// replaced under mu), so that a reload of the rules keeps them wanted.
	extra atomic.Pointer[map[chanKey]struct{}]
	mu    sync.Mutex // serializes the writers: add, setRules, forget
	// known holds, per channel seen, whether it is wanted. A channel's
	// answer changes only when limits are set at run time (false to true) and
	// when the rules are replaced, so a stale read is at worst a sample
	// published at that moment.
	known telemetry.ChannelIndex[*atomic.Bool]
}

type chanKey struct{ device, channel string }

// NewInterest returns the Interest of rules (the engine's rules). Pass it to
// the engine in Options.Interest; the engine's SetRules keeps it current.
func NewInterest(rules []Rule) *Interest {
	in := &Interest{}
	rules = slices.Clone(rules)
	in.rules.Store(&rules)
	in.extra.Store(&map[chanKey]struct{}{})
	return in
}

// Wants reports whether the engine may act on s.
func (in *Interest) Wants(s *telemetry.Sample) bool {
	return in.flag(s.Device, s.Channel).Load()
}

// flag returns the answer of device/channel, working it out the first time.
func (in *Interest) flag(device, channel string) *atomic.Bool {
	return in.known.GetOrAdd(device, channel, func() *atomic.Bool {
		b := new(atomic.Bool)
		b.Store(in.wants(device, channel))
		return b
	})
}

// wants works out whether device/channel is wanted: a rule selects it or names
// channel as the set-point of a rule whose devices include device, or it was
// given limits at run time.
func (in *Interest) wants(device, channel string) bool {
	if _, ok := (*in.extra.Load())[chanKey{device, channel}]; ok {
		return true
	}
	rules := *in.rules.Load()
	for i := range rules {
		r := &rules[i]
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
	in.mu.Lock()
	defer in.mu.Unlock()
	k := chanKey{device, channel}
	if _, ok := (*in.extra.Load())[k]; !ok {
		next := maps.Clone(*in.extra.Load())
		next[k] = struct{}{}
		in.extra.Store(&next)
	}
	in.flag(device, channel).Store(true)
}

// setRules replaces the rules (a configuration reload) and works out again the
// answer of every channel seen.
func (in *Interest) setRules(rules []Rule) {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	rules = slices.Clone(rules)
	in.rules.Store(&rules)
	in.known.Range(func(device, channel string, b *atomic.Bool) bool {
		b.Store(in.wants(device, channel))
		return true
	})
}

// forget drops what is known of device (removed from the configuration),
// limits set on its channels at run time included.
func (in *Interest) forget(device string) {
	if in == nil {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	next := maps.Clone(*in.extra.Load())
	maps.DeleteFunc(next, func(k chanKey, _ struct{}) bool { return k.device == device })
	in.extra.Store(&next)
	in.known.DeleteFunc(func(d, _ string, _ *atomic.Bool) bool { return d == device })
}
