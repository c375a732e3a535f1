package ingest

import (
	"math"
	"sync/atomic"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// ChannelFilter is one channel's archive filter, separate from what live
// subscribers see (EPICS ADEL, Tango archive events). The zero value archives
// every sample.
type ChannelFilter struct {
	// Deadband: a numeric sample whose value differs from the last archived one by
	// no more than this is not archived. Zero: every change is archived.
	Deadband float64
	// Relative makes Deadband a fraction of the last archived value's magnitude
	// (0.01 = 1%).
	Relative bool
	// Heartbeat archives a sample anyway when the last archived one is at least
	// this old, so an unchanged value still shows up every Heartbeat. Zero: no
	// heartbeat (an unchanged value is archived once).
	Heartbeat time.Duration
}

// Filter decides which samples reach the archive, per channel. Channels without
// a ChannelFilter are archived in full. A sample is always archived when it is
// the channel's first, when its quality, error text or value type differs from
// the last archived one, when a non-numeric value changed, when a numeric value
// moved past the deadband, or when the heartbeat is due. It is owned by the
// Writer's goroutine (not safe for concurrent use), except SetSpecs.
type Filter struct {
	specs atomic.Pointer[map[string]ChannelFilter] // by "device/channel"; replaced whole by SetSpecs
	last  map[string]telemetry.Sample
}

// NewFilter returns a Filter with the given channel filters, keyed by
// "device/channel" (telemetry.Sample.Key).
func NewFilter(specs map[string]ChannelFilter) *Filter {
	f := &Filter{last: make(map[string]telemetry.Sample)}
	f.specs.Store(&specs)
	return f
}

// SetSpecs replaces the channel filters as a whole, at once (a configuration
// reload); it is safe from any goroutine, and the writer applies the new ones
// from its next sample on. A channel filtered before and after goes on from
// its last archived sample; one filtered only from now on starts afresh.
func (f *Filter) SetSpecs(specs map[string]ChannelFilter) { f.specs.Store(&specs) }

// Keep reports whether s is archived, and remembers it if so.
func (f *Filter) Keep(s *telemetry.Sample) bool {
	specs := *f.specs.Load()
	if len(specs) == 0 {
		return true
	}
	key := s.Key()
	spec, ok := specs[key]
	if !ok {
		delete(f.last, key) // not filtered (any more): a filter set later starts afresh
		return true
	}
	last, seen := f.last[key]
	if !seen || f.changed(spec, &last, s) ||
		(spec.Heartbeat > 0 && s.TimeNs-last.TimeNs >= int64(spec.Heartbeat)) {
		f.last[key] = *s
		return true
	}
	return false
}

func (f *Filter) changed(spec ChannelFilter, last, s *telemetry.Sample) bool {
	if s.Quality != last.Quality || s.Err != last.Err || s.Value.Kind != last.Value.Kind {
		return true
	}
	var a, b float64
	switch s.Value.Kind {
	case telemetry.KindFloat:
		a, b = last.Value.F, s.Value.F
	case telemetry.KindInt:
		a, b = float64(last.Value.I), float64(s.Value.I)
	default:
		return s.Value != last.Value
	}
	if math.IsNaN(a) != math.IsNaN(b) {
		return true
	}
	band := spec.Deadband
	if spec.Relative {
		band *= math.Abs(a)
	}
	return math.Abs(b-a) > band
}

// filter removes from batch, in place, the samples f does not keep.
func (f *Filter) filter(batch []telemetry.Sample) (kept []telemetry.Sample, dropped int) {
	if f == nil {
		return batch, 0
	}
	kept = batch[:0]
	for i := range batch {
		if f.Keep(&batch[i]) {
			kept = append(kept, batch[i])
		}
	}
	clear(batch[len(kept):])
	return kept, len(batch) - len(kept)
}
