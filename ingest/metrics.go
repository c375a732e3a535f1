package ingest

import "github.com/prometheus/client_golang/prometheus"

// Reasons a flush (or table creation) failed, the "reason" label of
// switchyard_ingest_flush_failures_total.
const (
	reasonTransport   = "transport"    // no HTTP answer: refused, reset, timeout
	reasonServer      = "server_error" // 5xx or 421: retried
	reasonBadRequest  = "bad_request"  // 400: a row is malformed; the batch is split
	reasonTooLarge    = "too_large"    // 413: the batch is split
	reasonOtherStatus = "other_status" // any other HTTP status (401, 403, 404...): retried
	reasonEncode      = "encode"       // the client refused to encode a row
	reasonCreateTable = "create_table" // CREATE TABLE did not succeed: retried
)

// metrics is the Writer's Prometheus instrumentation. Each series carries a
// constant "table" label so that writers for different tables can share a registry.
type metrics struct {
	written       prometheus.Counter
	flushes       prometheus.Counter
	flushFailures *prometheus.CounterVec
	pending       prometheus.Gauge
	badRows       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, table string) *metrics {
	labels := prometheus.Labels{"table": table}
	m := &metrics{
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_rows_written_total",
			Help:        "Rows QuestDB acknowledged.",
			ConstLabels: labels,
		}),
		flushes: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_flushes_total",
			Help:        "ILP/HTTP requests QuestDB acknowledged.",
			ConstLabels: labels,
		}),
		flushFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "switchyard_ingest_flush_failures_total",
			Help:        "Failed ILP/HTTP requests and table creations, by reason.",
			ConstLabels: labels,
		}, []string{"reason"}),
		pending: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_pending_rows",
			Help:        "Samples drained from the hub and held in memory until QuestDB acknowledges them.",
			ConstLabels: labels,
		}),
		badRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_bad_rows_total",
			Help:        "Samples QuestDB rejected as malformed (HTTP 400), logged and not archived.",
			ConstLabels: labels,
		}),
	}
	for _, r := range []string{reasonTransport, reasonServer, reasonBadRequest, reasonTooLarge, reasonOtherStatus, reasonEncode, reasonCreateTable} {
		m.flushFailures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.written, m.flushes, m.flushFailures, m.pending, m.badRows)
	}
	return m
}
