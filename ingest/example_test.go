package ingest_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/telemetry"
)

// The archive subscribes losslessly to the hub and runs until its context ends;
// Serve's error says whether every sample reached QuestDB.
func ExampleNewSampleWriter() {
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	defer sub.Close()

	app, err := questdb.New("127.0.0.1:9000")
	if err != nil {
		log.Fatal(err)
	}
	w, err := ingest.NewSampleWriter(app, sub, ingest.Options{Logger: slog.Default()})
	if err != nil {
		log.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()

	hub.Publish(telemetry.Sample{Device: "psu1", Channel: "volts", TimeNs: 1, Seq: 1, Value: telemetry.Float(12.0)})

	cancel() // stop producers first, then the archive: Serve flushes what it holds
	if err := <-done; err != nil {
		log.Printf("archive: %v", err)
	}
}
