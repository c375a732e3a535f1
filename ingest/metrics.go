package ingest

import "github.com/prometheus/client_golang/prometheus"

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
	spoolWrites   prometheus.Counter
	spoolBytes    prometheus.Gauge
	spoolRows     prometheus.Gauge
	spoolLevel    prometheus.Gauge
	spoolErrors   prometheus.Counter
	spoolTorn     prometheus.Counter
	spoolCorrupt  prometheus.Counter
	spoolDamaged  prometheus.Counter
	notArchived   prometheus.Counter
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
			Help:        "Records taken from the source and not yet acknowledged by QuestDB (in the spool, or in memory without one).",
			ConstLabels: labels,
		}),
		badRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_bad_rows_total",
			Help:        "Records QuestDB rejected as malformed (HTTP 400), logged and not archived.",
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
			Help:        "Records written to the durable spool.",
			ConstLabels: labels,
		}),
		spoolWrites: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spool_writes_total",
			Help:        "Writes of records into the spool, each made durable with one fsync unless spool_fsync is off: one per take from the source (group commit).",
			ConstLabels: labels,
		}),
		spoolBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_bytes",
			Help:        "Disk space the spool's segments take.",
			ConstLabels: labels,
		}),
		spoolRows: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_rows",
			Help:        "Spooled records QuestDB has not acknowledged (spool depth).",
			ConstLabels: labels,
		}),
		spoolLevel: prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_spool_level",
			Help:        "Spool fill alarm: 0 ok, 1 above 80% of its bound, 2 full (records wait in the source queue).",
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
			Help:        "Bytes of damaged spool data skipped (the records in them are not archived; a copy of the segment is under quarantine/).",
			ConstLabels: labels,
		}),
		spoolDamaged: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_spool_damage_total",
			Help:        "Damage found in the spool: damaged ranges skipped inside segments, and stray files moved aside.",
			ConstLabels: labels,
		}),
		notArchived: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_not_archived_total",
			Help:        "Records taken from the source and not archived because archiving was stopped (the spool could not be used).",
			ConstLabels: labels,
		}),
		filtered: prometheus.NewCounter(prometheus.CounterOpts{
			Name:        "switchyard_ingest_filtered_total",
			Help:        "Samples the archive filter (deadband, heartbeat) did not archive.",
			ConstLabels: labels,
		}),
		oldestAge: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name:        "switchyard_ingest_oldest_unacked_age_seconds",
			Help:        "Age, by its timestamp, of the oldest record not yet acknowledged by QuestDB (0 when none).",
			ConstLabels: labels,
		}, oldest),
	}
	for _, r := range []string{ReasonTransport, ReasonServer, ReasonBadRequest, ReasonTooLarge, ReasonOtherStatus, reasonEncode, reasonCreateTable} {
		m.flushFailures.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.written, m.flushes, m.flushFailures, m.pending, m.badRows,
			m.retries, m.deadLetters, m.spooled, m.spoolWrites, m.spoolBytes, m.spoolRows, m.spoolLevel,
			m.spoolErrors, m.spoolTorn, m.spoolCorrupt, m.spoolDamaged, m.notArchived, m.oldestAge, m.filtered)
	}
	return m
}
