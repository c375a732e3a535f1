package alarm_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

// systemEnv is an alarm engine with the system rules, fed by a hub.
type systemEnv struct {
	hub *telemetry.Hub
	eng *alarm.Engine
}

func newSystemEnv(t *testing.T) *systemEnv {
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "alarms", Policy: telemetry.Lossless})
	t.Cleanup(sub.Close)
	eng, err := alarm.NewEngine(alarm.SystemRules(), sub, nil, alarm.Options{Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { _ = eng.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return &systemEnv{hub: hub, eng: eng}
}

// severity returns the alarm severity of a system channel after the monitor
// published once more.
func (e *systemEnv) severity(t *testing.T, channel string) alarm.Severity {
	t.Helper()
	time.Sleep(1500 * time.Millisecond) // one more publish, then the engine settles
	synctest.Wait()
	list, err := e.eng.List(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.Device == telemetry.SystemDevice && a.Channel == channel {
			return a.Severity
		}
	}
	return alarm.NoAlarm
}

// TestSystemRules: the spool monitor's channels and the hub's back-pressure
// channel raise the system alarms: 80 % full MINOR, full MAJOR, damage MAJOR,
// archiving stopped MAJOR, publishers held back MAJOR.
func TestSystemRules(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newSystemEnv(t)
		var mu sync.Mutex
		status := ingest.SpoolStatus{Enabled: true, MaxBytes: 1000, Bytes: 100}
		set := func(f func(*ingest.SpoolStatus)) { mu.Lock(); f(&status); mu.Unlock() }
		get := func() ingest.SpoolStatus { mu.Lock(); defer mu.Unlock(); return status }
		mon := ingest.NewSpoolMonitor(e.hub.PublishNoWait, time.Second)
		mon.Add("archive", get)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = mon.Serve(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		fill, damage, stopped := "archive"+ingest.SpoolFillSuffix, "archive"+ingest.SpoolDamageSuffix, "archive"+ingest.StoppedSuffix
		for _, step := range []struct {
			what    string
			change  func(*ingest.SpoolStatus)
			channel string
			want    alarm.Severity
		}{
			{"10 % full", func(*ingest.SpoolStatus) {}, fill, alarm.NoAlarm},
			{"no damage", func(*ingest.SpoolStatus) {}, damage, alarm.NoAlarm},
			{"running", func(*ingest.SpoolStatus) {}, stopped, alarm.NoAlarm},
			{"85 % full", func(s *ingest.SpoolStatus) { s.Bytes = 850 }, fill, alarm.Minor},
			{"full", func(s *ingest.SpoolStatus) { s.Full = true }, fill, alarm.Major},
			{"damage found", func(s *ingest.SpoolStatus) { s.Damaged = 1 }, damage, alarm.Major},
			{"archiving stopped", func(s *ingest.SpoolStatus) { s.Stopped = true }, stopped, alarm.Major},
		} {
			set(step.change)
			if got := e.severity(t, step.channel); got != step.want {
				t.Fatalf("%s: %s severity %v, want %v", step.what, step.channel, got, step.want)
			}
		}
		e.hub.PublishNoWait(telemetry.Sample{Device: telemetry.SystemDevice, Channel: telemetry.BackpressureChannel,
			Seq: 1, TimeNs: time.Now().UnixNano(), Value: telemetry.Float(1)})
		if got := e.severity(t, telemetry.BackpressureChannel); got != alarm.Major {
			t.Fatalf("publishers held back: severity %v, want MAJOR", got)
		}
	})
}

// TestSpoolDamageRaisesAlarm: the whole chain from a flipped byte in the
// middle of a spooled segment to a MAJOR system alarm: the Writer skips and
// quarantines the damage and archives the rest, its status counts it, the
// monitor publishes it, the engine raises it.
func TestSpoolDamageRaisesAlarm(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		db := ingesttest.NewFakeDB()
		db.SetDown(errors.New("refused"))
		opts := ingest.Options{SpoolDir: dir, Logger: discard(), ShutdownTimeout: time.Second}
		run := func(hub *telemetry.Hub) (*ingest.SampleWriter, func()) {
			sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
			w, err := ingest.NewSampleWriter(db, sub, opts)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- w.Serve(ctx) }()
			return w, func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
				sub.Close()
			}
		}
		hub := telemetry.NewHub(nil)
		_, stop := run(hub)
		hub.Publish(ingesttest.Samples(500, time.Now())...)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		stop()
		segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
		data, err := os.ReadFile(segs[0])
		if err != nil {
			t.Fatal(err)
		}
		data[len(data)/2] ^= 1
		if err := os.WriteFile(segs[0], data, 0o644); err != nil {
			t.Fatal(err)
		}

		db.SetDown(nil)
		e := newSystemEnv(t)
		w, stop := run(e.hub)
		defer stop()
		mon := ingest.NewSpoolMonitor(e.hub.PublishNoWait, time.Second)
		mon.Add("archive", w.SpoolStatus)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { _ = mon.Serve(ctx); close(done) }()
		defer func() { cancel(); <-done }()
		if got := e.severity(t, "archive"+ingest.SpoolDamageSuffix); got != alarm.Major {
			t.Fatalf("damage in the spool: alarm severity %v, want MAJOR", got)
		}
		n := 0
		for _, r := range db.Stored(ingest.DefaultTable) {
			if r.Str("device") != telemetry.SystemDevice { // the monitor's own are archived too
				n++
			}
		}
		if n != 499 {
			t.Fatalf("%d samples archived, want the 499 undamaged ones", n)
		}
		if q, _ := filepath.Glob(filepath.Join(dir, "quarantine", "*")); len(q) != 1 {
			t.Fatalf("quarantine %v, want the damaged segment", q)
		}
	})
}
