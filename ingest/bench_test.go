package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

// BenchmarkWriterToQuestDB measures the whole path, hub to acknowledged rows,
// against the test QuestDB (skipped without one): each iteration publishes a
// backlog of 50,000 samples at once (ten of the Writer's 5,000-row batches, like
// the drain after an outage) and waits until QuestDB has acknowledged all of it.
// The sub-benchmarks run without a spool, with one (fsync per spooled batch) and
// with one without fsync. Profile with
//
//	SWITCHYARD_TEST_QUESTDB=127.0.0.1:9000 go test ./ingest -run '^$' \
//	    -bench WriterToQuestDB -cpuprofile cpu.out -memprofile mem.out
func BenchmarkWriterToQuestDB(b *testing.B) {
	b.Run("nospool", func(b *testing.B) { benchWriter(b, ingest.Options{}) })
	b.Run("spool", func(b *testing.B) { benchWriter(b, ingest.Options{SpoolDir: b.TempDir()}) })
	b.Run("spool_nofsync", func(b *testing.B) {
		benchWriter(b, ingest.Options{SpoolDir: b.TempDir(), SpoolNoFsync: true})
	})
}

func benchWriter(b *testing.B, opts ingest.Options) {
	addr := ingesttest.QuestDB(b)
	opts.Table = ingesttest.Table(b, addr)
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	const backlog = 50000
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	defer sub.Close()
	w, err := ingest.NewSampleWriter(questDB(b, addr), sub, opts)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	// The table exists once the first row is acknowledged: keep that out of the
	// measurement.
	hub.Publish(makeSamples(1, time.Now().Add(-time.Hour))...)
	for w.Written() < 1 {
		time.Sleep(time.Millisecond)
	}

	base := time.Now()
	sent := uint64(1)
	template := makeSamples(backlog, base)
	batch := make([]telemetry.Sample, backlog)
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		copy(batch, template)
		for i := range batch {
			batch[i].Seq += sent
			batch[i].TimeNs += int64(sent) * 1000
		}
		b.StartTimer()
		hub.Publish(batch...)
		sent += backlog
		for w.Written() < sent {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(backlog)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
