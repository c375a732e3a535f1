package server

import (
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's own Prometheus metrics. Per-subscription drops are
// counted by the hub (switchyard_hub_dropped_samples_total{subscriber="api"}).
type metrics struct {
	streams *prometheus.GaugeVec
	stalled prometheus.Counter
	held    heldStreams
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_api_streams_active",
			Help: "Server streams (Subscribe, WatchDevices) open now, over both transports.",
		}, []string{"method"}),
		stalled: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "switchyard_api_streams_stalled_total",
			Help: "Subscribe streams ended with STREAM_STALLED: their queue stayed full and unread for limits.stream_stall_timeout.",
		}),
		held: heldStreams{all: map[*heldStream]struct{}{}},
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.stalled, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "switchyard_api_stream_held_bytes",
			Help: "Bytes the Subscribe streams hold now, over both transports: their queues in the hub and the samples taken out of them " +
				"not yet sent (telemetry.SampleSize), and the encoded responses being sent. A transport's own buffer comes on top " +
				"(on the gRPC port up to 64 KiB of responses and one more per stream, in pooled buffers of up to twice their size).",
		}, func() float64 { return float64(m.held.bytes()) }))
	}
	return m
}

// streamStarted counts a stream as open and returns the function that counts it
// closed.
func (m *metrics) streamStarted(method string) func() {
	g := m.streams.WithLabelValues(method)
	g.Inc()
	return g.Dec
}

// heldStreams are the open Subscribe streams, for their held bytes.
type heldStreams struct {
	mu  sync.Mutex
	all map[*heldStream]struct{}
}

// heldStream is one stream's share of switchyard_api_stream_held_bytes.
type heldStream struct {
	stream  interface{ Bytes() int64 } // a telemetry.Stream: its queue and batches
	sending atomic.Int64               // the response being sent
}

// hold adds a stream to the count; the returned function takes it out.
func (h *heldStreams) hold(s *heldStream) func() {
	h.mu.Lock()
	h.all[s] = struct{}{}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		delete(h.all, s)
		h.mu.Unlock()
	}
}

// bytes is what every open stream holds now.
func (h *heldStreams) bytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var n int64
	for s := range h.all {
		n += s.stream.Bytes() + s.sending.Load()
	}
	return n
}
