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
	retries       prometheus.Counter
	deadLetters   prometheus.Counter
	spooled       prometheus.Counter
	spoolBytes    prometheus.Gauge
	spoolRows     prometheus.Gauge
	spoolLevel    prometheus.Gauge
	spoolErrors   prometheus.Counter
	spoolTorn     prometheus.Counter
	spoolCorrupt  prometheus.Counter
	oldestAge     prometheus.GaugeFunc
	filtered      prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, table string, oldest func() float64) *metrics {
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
		retries: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_retries_total",
			Help:        "Failed write attempts that the Writer retries after a backoff.",
			ConstLabels: labels,
		}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_dead_letters_total",
			Help:        "Rejected rows written to the dead-letter file.",
			ConstLabels: labels,
		}),
		spooled: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spooled_rows_total",
			Help:        "Samples written to the durable spool.",
			ConstLabels: labels,
		}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_bytes",
			Help:        "Disk space the spool's segments take.",
			ConstLabels: labels,
		}),
		spoolRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_rows",
			Help:        "Spooled samples QuestDB has not acknowledged (spool depth).",
			ConstLabels: labels,
		}),
		spoolLevel: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_level",
			Help:        "Spool fill alarm: 0 ok, 1 above 80% of its bound, 2 full (samples wait in memory).",
			ConstLabels: labels,
		}),
		spoolErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spool_write_errors_total",
			Help:        "Spool writes that failed (disk errors), retried.",
			ConstLabels: labels,
		}),
		spoolTorn: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spool_torn_bytes_total",
			Help:        "Bytes of torn tail (an unfinished write before a crash) truncated at start.",
			ConstLabels: labels,
		}),
		spoolCorrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spool_corrupt_bytes_total",
			Help:        "Bytes of corrupt spool data skipped at start (lost).",
			ConstLabels: labels,
		}),
		filtered: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_filtered_total",
			Help:        "Samples the archive filter (deadband, heartbeat) did not archive.",
			ConstLabels: labels,
		}),
		oldestAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_oldest_unacked_age_seconds",
			Help:        "Age, by its timestamp, of the oldest sample not yet acknowledged by QuestDB (0 when none).",
			ConstLabels: labels,
		}, oldest),
	}
	for _, r := range []string{reasonTransport, reasonServer, reasonBadRequest, reasonTooLarge, reasonOtherStatus, reasonEncode, reasonCreateTable} {
		m.flushFailures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.written, m.flushes, m.flushFailures, m.pending, m.badRows,
			m.retries, m.deadLetters, m.spooled, m.spoolBytes, m.spoolRows, m.spoolLevel,
			m.spoolErrors, m.spoolTorn, m.spoolCorrupt, m.oldestAge, m.filtered)
	}
	return m
}
