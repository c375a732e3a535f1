package server

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's own Prometheus metrics. Per-subscription drops are
// counted by the hub (switchyard_hub_dropped_samples_total{subscriber="api"}).
type metrics struct {
	streams *prometheus.GaugeVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "switchyard_api_streams_active",
			Help: "Server streams (Subscribe, WatchDevices) open now, over both transports.",
		}, []string{"method"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams)
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
