package main

import (
	"context"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// The server's own health is published like an instrument's readings, so the same
// archive, subscriptions and alarm engine see it.
const (
	systemDevice     = "switchyard"
	spoolFillChannel = "archive_spool_fill"
)

// spoolAlarmRule raises a MINOR alarm when the archive spool is 80 % full (the
// writer warns there) and a MAJOR one when it is full (new samples then wait in
// memory until QuestDB takes the backlog). Group "system".
func spoolAlarmRule() alarm.Rule {
	return alarm.Rule{
		Devices: []string{systemDevice}, Channels: []string{spoolFillChannel}, Group: "system",
		Limits: alarm.Limits{
			High:       alarm.Threshold{Value: 0.8, Severity: alarm.Minor},
			HiHi:       alarm.Threshold{Value: 1.0, Severity: alarm.Major},
			Hysteresis: 0.02,
		},
	}
}

// spoolMonitor publishes the archive spool's fill level (0…1, or 1 while the
// spool is refusing samples) every period.
type spoolMonitor struct {
	status func() ingest.SpoolStatus
	pub    interface{ Publish(...telemetry.Sample) }
	period time.Duration
	seq    uint64 // survives restarts of Serve, so the channel's seq never repeats
}

// Serve publishes until ctx ends.
func (m *spoolMonitor) Serve(ctx context.Context) error {
	t := time.NewTicker(m.period)
	defer t.Stop()
	for {
		m.publish()
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (m *spoolMonitor) publish() {
	st := m.status()
	fill := 0.0
	if st.MaxBytes > 0 {
		fill = float64(st.Bytes) / float64(st.MaxBytes)
	}
	if st.Full {
		fill = max(fill, 1)
	}
	m.seq++
	m.pub.Publish(telemetry.Sample{
		Device: systemDevice, Channel: spoolFillChannel, TimeNs: time.Now().UnixNano(),
		Seq: m.seq, Value: telemetry.Float(fill),
	})
}
