package ingest

import (
	"math"
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
// Writer's goroutine (not safe for concurrent use).
type Filter struct {
	specs map[string]ChannelFilter // by "device/channel"
	last  map[string]telemetry.Sample
}

// NewFilter returns a Filter with the given channel filters, keyed by
// "device/channel" (telemetry.Sample.Key).
func NewFilter(specs map[string]ChannelFilter) *Filter {
	return &Filter{specs: specs, last: make(map[string]telemetry.Sample)}
}

// Keep reports whether s is archived, and remembers it if so.
func (f *Filter) Keep(s *telemetry.Sample) bool {
	key := s.Key()
	spec, ok := f.specs[key]
	if !ok {
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

// filterSwap carries a filter SetFilter gave (nil: archive everything).
type filterSwap struct{ f *Filter }

// SetFilter replaces the archive filter (Options.Filter) as a whole, between
// two batches (a configuration reload); nil archives everything. It is safe
// from any goroutine. A channel filtered before and after keeps its last
// archived sample, so its deadband goes on from it.
func (w *Writer) SetFilter(f *Filter) { w.nextFilter.Store(&filterSwap{f}) }

// filter returns the filter in force, taking one SetFilter gave. Serve's
// goroutine only.
func (w *Writer) filter() *Filter {
	if s := w.nextFilter.Swap(nil); s != nil {
		if s.f != nil && w.opts.Filter != nil {
			for key, last := range w.opts.Filter.last {
				if _, ok := s.f.specs[key]; ok {
					s.f.last[key] = last
				}
			}
		}
		w.opts.Filter = s.f
	}
	return w.opts.Filter
}
