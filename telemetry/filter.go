package telemetry

import (
	"math"
	"time"
)

// FilterOptions configures a Filter. The zero value passes every sample.
type FilterOptions struct {
	// DeadbandAbs: a numeric sample is delivered only when it differs from the
	// channel's last delivered value by more than this (EPICS MDEL). 0 is off.
	DeadbandAbs float64
	// DeadbandRel: ... or by more than this fraction of the last delivered value's
	// magnitude (Tango's relative change). 0 is off. With both set, exceeding
	// either delivers.
	DeadbandRel float64
	// MaxRate caps the samples delivered per channel per second. A sample that
	// comes too soon is held, replaced by any later one, and delivered when the
	// channel's interval has passed, so the channel always ends on its latest value.
	// 0 is unlimited.
	MaxRate float64
}

// Filter applies a display deadband and a per-channel rate cap to one subscriber's
// samples. Samples whose quality differs from the last delivered one, and
// non-numeric samples whose value changed, always pass the deadband. Filter is not
// safe for concurrent use; time is passed in, so tests drive it with any clock.
type Filter struct {
	opts   FilterOptions
	minGap time.Duration
	chans  map[string]*filterChan
	held   int

	suppressed, decimated uint64
}

type filterChan struct {
	last      Sample // last delivered
	lastAt    time.Time
	pending   Sample
	isPending bool
}

// NewFilter returns a filter.
func NewFilter(opts FilterOptions) *Filter {
	f := &Filter{opts: opts, chans: make(map[string]*filterChan)}
	if opts.MaxRate > 0 {
		f.minGap = time.Duration(float64(time.Second) / opts.MaxRate)
	}
	return f
}

// Active reports whether the filter does anything.
func (f *Filter) Active() bool {
	return f.opts.DeadbandAbs > 0 || f.opts.DeadbandRel > 0 || f.minGap > 0
}

// Offer appends s to out if it is to be delivered now, and returns out.
func (f *Filter) Offer(now time.Time, s *Sample, out []Sample) []Sample {
	if !f.Active() {
		return append(out, *s)
	}
	key := s.Key()
	c := f.chans[key]
	if c == nil {
		c = &filterChan{}
		f.chans[key] = c
		c.last, c.lastAt = *s, now
		return append(out, *s)
	}
	if c.isPending {
		// A later sample replaces the held one: the channel ends on its latest value.
		c.pending = *s
		f.decimated++
		return out
	}
	if !f.changed(&c.last, s) {
		f.suppressed++
		return out
	}
	if f.minGap > 0 && now.Sub(c.lastAt) < f.minGap {
		c.pending, c.isPending = *s, true
		f.held++
		return out
	}
	c.last, c.lastAt = *s, now
	return append(out, *s)
}

// changed reports whether s passes the deadband against the last delivered sample.
func (f *Filter) changed(last, s *Sample) bool {
	if s.Quality != last.Quality {
		return true
	}
	if s.Quality != Good {
		return s.Err != last.Err
	}
	a, okA := numericValue(last.Value)
	b, okB := numericValue(s.Value)
	if !okA || !okB {
		return s.Value != last.Value
	}
	if f.opts.DeadbandAbs <= 0 && f.opts.DeadbandRel <= 0 {
		return true
	}
	d := math.Abs(b - a)
	if f.opts.DeadbandAbs > 0 && d > f.opts.DeadbandAbs {
		return true
	}
	return f.opts.DeadbandRel > 0 && d > f.opts.DeadbandRel*math.Abs(a)
}

// Due appends the held samples whose channel interval has passed at now.
func (f *Filter) Due(now time.Time, out []Sample) []Sample {
	if f.held == 0 {
		return out
	}
	for _, c := range f.chans {
		if c.isPending && now.Sub(c.lastAt) >= f.minGap {
			out = append(out, c.pending)
			c.last, c.lastAt, c.isPending = c.pending, now, false
			c.pending = Sample{}
			f.held--
		}
	}
	return out
}

// NextDue returns when the earliest held sample is due; ok is false when none is
// held.
func (f *Filter) NextDue() (t time.Time, ok bool) {
	if f.held == 0 {
		return time.Time{}, false
	}
	for _, c := range f.chans {
		if c.isPending {
			d := c.lastAt.Add(f.minGap)
			if !ok || d.Before(t) {
				t, ok = d, true
			}
		}
	}
	return t, ok
}

// Suppressed returns how many samples the deadband withheld.
func (f *Filter) Suppressed() uint64 { return f.suppressed }

// Decimated returns how many held samples the rate cap replaced by later ones.
func (f *Filter) Decimated() uint64 { return f.decimated }

func numericValue(v Value) (float64, bool) {
	switch v.Kind {
	case KindFloat:
		return v.F, true
	case KindInt:
		return float64(v.I), true
	}
	return 0, false
}
