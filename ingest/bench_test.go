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

// BenchmarkWriterToQuestDB measures the whole path, hub to acknowledged rows, in
// batches of 5,000 samples against the test QuestDB (skipped without one).
func BenchmarkWriterToQuestDB(b *testing.B) {
	addr := ingesttest.QuestDB(b)
	table := ingesttest.Table(b, addr)
	const n = 5000
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	defer sub.Close()
	w, err := ingest.NewWriter(addr, sub, ingest.Options{Table: table, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
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

	base := time.Now()
	var sent uint64
	for b.Loop() {
		batch := makeSamples(n, base.Add(time.Duration(sent)*time.Microsecond))
		for i := range batch {
			batch[i].Seq += sent
		}
		hub.Publish(batch...)
		sent += n
		for w.Written() < sent {
			time.Sleep(100 * time.Microsecond)
		}
	}
	b.ReportMetric(float64(sent)/b.Elapsed().Seconds(), "rows/s")
}
