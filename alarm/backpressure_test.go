package alarm_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestEngineIsALosslessConsumer: the alarm engine must see every sample and
// archive every transition. When its archive cannot take more (the database
// hangs and the archive's queue is at its bound), the engine waits, its own
// queue in the hub fills to its bound, and the publisher waits too: nothing is
// dropped anywhere and no queue passes its bound. Once the database answers,
// every transition is archived and the publisher goes on.
func TestEngineIsALosslessConsumer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const samples, hubBound, intake = 300, 50, 5
		db := ingesttest.NewFakeDB()
		db.Block()
		arch, err := alarm.NewArchive(db, ingest.Options{IntakeCapacity: intake, BatchRows: 10, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		hub := telemetry.NewHub(nil)
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless, Capacity: hubBound})
		defer sub.Close()
		eng, err := alarm.NewEngine([]alarm.Rule{{Limits: alarm.Limits{High: alarm.Threshold{Value: 10, Severity: alarm.Minor}}}},
			sub, nil, alarm.Options{Sinks: []alarm.Sink{arch}, Logger: discard()})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 2)
		go func() { done <- arch.Serve(ctx) }()
		go func() { done <- eng.Serve(ctx) }()

		// Every sample crosses the limit: one transition each (RAISED, CLEARED...).
		published := make(chan struct{})
		go func() {
			for i := range samples {
				v := 0.0
				if i%2 == 0 {
					v = 20
				}
				hub.Publish(telemetry.Sample{Device: "psu", Channel: "v", Seq: uint64(i + 1), TimeNs: time.Now().UnixNano(), Value: telemetry.Float(v)})
				time.Sleep(time.Millisecond)
			}
			close(published)
		}()
		time.Sleep(time.Minute)
		synctest.Wait()
		select {
		case <-published:
			t.Fatal("every sample was published while the engine's archive hung")
		default:
		}
		if st := sub.Stats(); st.Len > hubBound || st.Dropped != 0 || st.Waits == 0 {
			t.Fatalf("the engine's hub queue %+v: want at most %d, a publisher waiting, nothing dropped", st, hubBound)
		}
		db.Unblock()
		<-published
		time.Sleep(time.Minute)
		synctest.Wait()
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		if n, _ := db.Count(alarm.DefaultEventsTable); n != samples {
			t.Fatalf("%d transitions archived, want %d (one per sample)", n, samples)
		}
	})
}
