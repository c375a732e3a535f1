package main

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestSpoolFillRaisesAlarms: the spool monitor publishes the fill level, and the
// built-in rule turns 80 % into a MINOR alarm and a full spool into a MAJOR one.
func TestSpoolFillRaisesAlarms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
		eng, err := alarm.NewEngine([]alarm.Rule{spoolAlarmRule()}, sub, nil, alarm.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		status := ingest.SpoolStatus{Enabled: true, MaxBytes: 1000, Bytes: 100}
		set := func(f func(*ingest.SpoolStatus)) { mu.Lock(); f(&status); mu.Unlock() }
		get := func() ingest.SpoolStatus { mu.Lock(); defer mu.Unlock(); return status }
		mon := &spoolMonitor{status: get, pub: hub, period: time.Second}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{}, 2)
		go func() { eng.Serve(ctx); done <- struct{}{} }()
		go func() { mon.Serve(ctx); done <- struct{}{} }()

		severity := func() alarm.Severity {
			time.Sleep(1500 * time.Millisecond) // one more publish, then the engine settles
			synctest.Wait()
			list, err := eng.List(context.Background(), false)
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range list {
				if a.Device == systemDevice && a.Channel == spoolFillChannel {
					return a.Severity
				}
			}
			return alarm.NoAlarm
		}
		if s := severity(); s != alarm.NoAlarm {
			t.Fatalf("10 %% full: severity %v", s)
		}
		set(func(s *ingest.SpoolStatus) { s.Bytes = 850 })
		if s := severity(); s != alarm.Minor {
			t.Fatalf("85 %% full: severity %v, want MINOR", s)
		}
		set(func(s *ingest.SpoolStatus) { s.Full = true })
		if s := severity(); s != alarm.Major {
			t.Fatalf("full: severity %v, want MAJOR", s)
		}
		cancel()
		<-done
		<-done
	})
}
