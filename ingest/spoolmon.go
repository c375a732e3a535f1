package ingest

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/telemetry"
)

// Suffixes of the channels a SpoolMonitor publishes for one archive, as
// channels of telemetry.SystemDevice named <archive><suffix>.
const (
	// SpoolFillSuffix: the spool's fill level, 0 to 1 (1 while it is full).
	SpoolFillSuffix = "_spool_fill"
	// SpoolDamageSuffix: damage found in the spool since the server started
	// (damaged ranges skipped, stray files moved aside; SpoolStatus.Damaged).
	SpoolDamageSuffix = "_spool_damage"
	// StoppedSuffix: 1 while archiving is stopped because the spool cannot be
	// used, else 0.
	StoppedSuffix = "_stopped"
)

// SpoolMonitor publishes the health of archives (see the suffixes) every
// period, like an instrument's readings, so the same archive, subscriptions and
// the alarm engine see it: alarm.SystemRules raise a full spool, damage, and a
// stopped archive. Add the archives before Serve; run Serve as a supervised
// process.
type SpoolMonitor struct {
	archives []monitored
	publish  func(...telemetry.Sample)
	period   time.Duration
	seq      uint64 // survives restarts of Serve, so a channel's seq never repeats
}

type monitored struct {
	name   string
	status func() SpoolStatus
}

// NewSpoolMonitor returns a monitor publishing with publish (the hub's
// PublishNoWait: the monitor must never wait for an archive it watches) every
// period (default 1s).
func NewSpoolMonitor(publish func(...telemetry.Sample), period time.Duration) *SpoolMonitor {
	if period <= 0 {
		period = time.Second
	}
	return &SpoolMonitor{publish: publish, period: period}
}

// Add watches the archive called name (the channels' prefix, such as
// "archive") whose state status returns (a Writer's SpoolStatus).
func (m *SpoolMonitor) Add(name string, status func() SpoolStatus) {
	m.archives = append(m.archives, monitored{name, status})
}

// Serve publishes at once and then every period until ctx ends; it returns nil.
func (m *SpoolMonitor) Serve(ctx context.Context) error {
	t := time.NewTicker(m.period)
	defer t.Stop()
	for {
		m.publishNow()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *SpoolMonitor) publishNow() {
	m.seq++
	now := time.Now().UnixNano()
	batch := make([]telemetry.Sample, 0, 3*len(m.archives))
	for _, a := range m.archives {
		st := a.status()
		fill := 0.0
		if st.MaxBytes > 0 {
			fill = float64(st.Bytes) / float64(st.MaxBytes)
		}
		if st.Full {
			fill = max(fill, 1)
		}
		stopped := 0.0
		if st.Stopped {
			stopped = 1
		}
		for _, c := range []struct {
			suffix string
			v      float64
		}{{SpoolFillSuffix, fill}, {SpoolDamageSuffix, float64(st.Damaged)}, {StoppedSuffix, stopped}} {
			batch = append(batch, telemetry.Sample{Device: telemetry.SystemDevice, Channel: a.name + c.suffix,
				TimeNs: now, Seq: m.seq, Value: telemetry.Float(c.v)})
		}
	}
	m.publish(batch...)
}
