package ingest_test

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
)

func TestEventWriter(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	w, err := ingest.NewEventWriter(questDB(t, addr), ingest.Options{Table: table, SpoolDir: t.TempDir(), Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	base := time.Now()
	for i, kind := range []string{"connected", "disconnected", "backoff", "connected"} {
		if err := w.Record(ctx, ingest.Event{TimeNs: base.Add(time.Duration(i) * time.Millisecond).UnixNano(),
			Source: "psu-01", Kind: kind, Message: "state " + kind, Detail: "why"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Record(ctx, ingest.Event{Kind: "x"}); err == nil {
		t.Error("an event without a source was accepted")
	}
	eventually.True(t, waitTimeout, "events written", func() bool { return w.Written() == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "source = 'psu-01' AND kind = 'connected' AND detail = 'why'", 2, waitTimeout)
	ingesttest.WaitCount(t, addr, table, "seq = 4 AND message = 'state connected'", 1, waitTimeout)
}

// runDeviceEvents runs an EventWriter into a fake database and a DeviceEvents
// fed by watch (in a synctest bubble); stop ends both and checks they ended
// without an error.
func runDeviceEvents(t *testing.T, watch *devicemgr.StateWatch) (db *ingesttest.FakeDB, stop func()) {
	t.Helper()
	db = ingesttest.NewFakeDB()
	w, err := ingest.NewEventWriter(db, ingest.Options{Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	de := ingest.NewDeviceEvents(devicemgr.StatusWatch{StateWatch: watch}, w)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	go func() { done <- w.Serve(ctx) }()
	go func() { done <- de.Serve(ctx) }()
	return db, func() {
		cancel()
		for range 2 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestDeviceEvents: each state change a device goes through is one event
// (a reconnection adds "restarted"); states squashed by a reader that fell
// behind are recorded as such, never silently lost. No sleeping decides: the
// bubble's clock moves only when every goroutine waits.
func TestDeviceEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var feed devicemgr.StateFeed
		db, stop := runDeviceEvents(t, feed.Watch())
		at := time.Now()
		states := []struct {
			state    devicemgr.State
			restarts int
		}{{devicemgr.Connecting, 0}, {devicemgr.Connected, 0}, {devicemgr.Backoff, 0}, {devicemgr.Connected, 1}}
		for i, st := range states {
			feed.Publish(devicemgr.Info{Name: "psu-01", State: st.state, Restarts: st.restarts, LastError: "refused",
				Address: "10.0.0.1:5025", ChangedAt: at.Add(time.Duration(i) * time.Millisecond)})
			synctest.Wait() // DeviceEvents has taken it: nothing squashed
		}
		// A burst the reader cannot follow: three states replaced by the last.
		for _, st := range []devicemgr.State{devicemgr.Backoff, devicemgr.Connecting, devicemgr.Connected} {
			feed.Publish(devicemgr.Info{Name: "psu-02", State: st, ChangedAt: at})
		}
		time.Sleep(2 * ingest.DefaultFlushInterval) // past the flush interval
		synctest.Wait()
		var got []string
		for _, r := range db.Stored(ingest.DefaultEventTable) {
			got = append(got, r.Str("source")+" "+r.Str("kind")+" "+r.Str("message"))
		}
		want := []string{
			"psu-01 connecting CONNECTING",
			"psu-01 connected CONNECTED 10.0.0.1:5025",
			"psu-01 backoff BACKOFF",
			"psu-01 restarted reconnection 1 after a failure",
			"psu-01 connected CONNECTED 10.0.0.1:5025",
			"psu-02 connected CONNECTED ", // no address: the message keeps its blank
		}
		if len(got) != len(want)+1 || strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
			t.Fatalf("events:\n%s\nwant:\n%s\n(and a squashed event)", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if last := got[len(got)-1]; last != "switchyard squashed 2 device states were replaced by newer ones before they were archived" {
			t.Fatalf("last event %q, want the squashed count", last)
		}
		stop()
	})
}

// TestDeviceEventsKeepEveryChangeOfABurst: fed by a watch that keeps every
// change, DeviceEvents archives a device's quick succession of states (a
// restart: STOPPED, CONNECTING, CONNECTED) whole, with nothing squashed.
func TestDeviceEventsKeepEveryChangeOfABurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var feed devicemgr.StateFeed
		db, stop := runDeviceEvents(t, feed.WatchEvery(0))
		at := time.Now()
		for i, st := range []devicemgr.State{devicemgr.Connected, devicemgr.Stopped, devicemgr.Connecting, devicemgr.Connected} {
			feed.Publish(devicemgr.Info{Name: "psu-1", State: st, ChangedAt: at.Add(time.Duration(i) * time.Microsecond)})
		}
		time.Sleep(2 * ingest.DefaultFlushInterval) // past the flush interval
		synctest.Wait()
		var got []string
		for _, r := range db.Stored(ingest.DefaultEventTable) {
			got = append(got, r.Str("kind"))
		}
		if strings.Join(got, " ") != "connected stopped connecting connected" {
			t.Fatalf("archived %v, want every state of the burst", got)
		}
		stop()
	})
}
