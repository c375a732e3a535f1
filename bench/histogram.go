package bench

import (
	"math"
	"time"
)

// histBuckets bounds the histogram: bucket i holds values in [b^i, b^(i+1)) ns
// with b = 1.02, so every percentile is within 2 % of the truth, from 1 ns to
// beyond an hour.
const (
	histBase    = 1.02
	histBuckets = 1500
)

// Histogram is a fixed-size log-bucketed latency histogram: it can absorb an hour
// of samples at any rate in a few KB. The zero value is ready to use.
type Histogram struct {
	counts [histBuckets]uint64
	n      uint64
	max    time.Duration
	neg    uint64 // observations below zero (clock steps), counted in bucket 0
}

var logBase = math.Log(histBase)

// Observe records one latency.
func (h *Histogram) Observe(d time.Duration) {
	if d < 0 {
		h.neg++
		d = 0
	}
	i := 0
	if d > 1 {
		i = int(math.Log(float64(d)) / logBase)
	}
	if i >= histBuckets {
		i = histBuckets - 1
	}
	h.counts[i]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// Count returns the number of observations.
func (h *Histogram) Count() uint64 { return h.n }

// Max returns the largest observation.
func (h *Histogram) Max() time.Duration { return h.max }

// Merge adds o's observations to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.neg += o.neg
	h.max = max(h.max, o.max)
}

// Quantile returns the q-quantile (0 < q <= 1), the upper bound of its bucket but
// never above Max. It returns 0 without observations.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			d := time.Duration(math.Pow(histBase, float64(i+1)))
			return min(d, h.max)
		}
	}
	return h.max
}
