package ingest_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestPipelinedBacklogSurvivesFailures sends a backlog of many batches, so that
// the next batch is encoded while a request is in flight, through a connection
// that fails (dropped, then 503) while the backlog waits: the batch encoded ahead
// must be dropped, the failed one re-sent, and every sample land once, with and
// without a spool (whose acknowledged position must end at its end).
func TestPipelinedBacklogSurvivesFailures(t *testing.T) {
	for _, withSpool := range []bool{false, true} {
		name := "memory"
		if withSpool {
			name = "spool"
		}
		t.Run(name, func(t *testing.T) {
			addr := ingesttest.QuestDB(t)
			table := ingesttest.Table(t, addr)
			proxy := ingesttest.NewProxy(t, addr)
			const per = 2000
			samples := makeSamples(3*per, testBase())

			hub := telemetry.NewHub(nil)
			sub := archiveSub(hub)
			defer sub.Close()
			reg := prometheus.NewRegistry()
			opts := ingest.Options{
				Table: table, Registerer: reg, BatchRows: 250,
				RetryBackoffMin: 10 * time.Millisecond, RetryBackoffMax: 100 * time.Millisecond,
			}
			if withSpool {
				opts.SpoolDir = t.TempDir()
			}
			w := startWriter(t, proxy.Addr(), sub, opts)
			hub.Publish(samples[:per]...)
			eventually.True(t, waitTimeout, "the first backlog written", func() bool { return w.Written() == per })

			for i, phase := range []struct {
				mode   ingesttest.Mode
				reason string
			}{
				{ingesttest.Drop, "transport"},
				{ingesttest.Unavailable, "server_error"},
			} {
				proxy.Set(phase.mode)
				hub.Publish(samples[(i+1)*per : (i+2)*per]...)
				eventually.True(t, waitTimeout, phase.reason+" failure counted", func() bool {
					return metrictest.Sum(t, reg, "switchyard_ingest_flush_failures_total", "reason", phase.reason) > 0
				})
				proxy.Set(ingesttest.Up)
				eventually.True(t, waitTimeout, "the backlog written after "+phase.reason, func() bool {
					return w.Written() == uint64((i+2)*per)
				})
			}
			if err := w.stop(t); err != nil {
				t.Fatal(err)
			}
			ingesttest.WaitCount(t, addr, table, "", 3*per, waitTimeout)
			if withSpool {
				left, err := ingest.ReadSpool(opts.SpoolDir, ingest.DecodeSample)
				if err != nil {
					t.Fatal(err)
				}
				if len(left) != 0 {
					t.Fatalf("%d samples left unacknowledged in the spool after a clean stop", len(left))
				}
			}
		})
	}
}
