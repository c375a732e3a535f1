package ingest_test

import (
	"context"
	"testing"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
)

func TestEventWriter(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	w, err := ingest.NewEventWriter(addr, ingest.Options{Table: table, SpoolDir: t.TempDir(), Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	base := time.Now()
	for i, kind := range []string{"connected", "disconnected", "backoff", "connected"} {
		if err := w.Record(ingest.Event{TimeNs: base.Add(time.Duration(i) * time.Millisecond).UnixNano(),
			Source: "psu-01", Kind: kind, Message: "state " + kind, Detail: "why"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Record(ingest.Event{Kind: "x"}); err == nil {
		t.Error("an event without a source was accepted")
	}
	waitFor(t, "events written", func() bool { return w.Written() == 4 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, addr, table, "source = 'psu-01' AND kind = 'connected' AND detail = 'why'", 2, waitTimeout)
	ingesttest.WaitCount(t, addr, table, "seq = 4 AND message = 'state connected'", 1, waitTimeout)
}

func TestDeviceEvents(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	w, err := ingest.NewEventWriter(addr, ingest.Options{Table: table, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	var feed devicemgr.StateFeed
	de := ingest.NewDeviceEvents(feed.Watch(), w)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- w.Serve(ctx) }()
	go func() { done <- de.Serve(ctx) }()
	at := time.Now()
	for i, st := range []struct {
		state    devicemgr.State
		restarts int
	}{{devicemgr.Connecting, 0}, {devicemgr.Connected, 0}, {devicemgr.Backoff, 0}, {devicemgr.Connected, 1}} {
		feed.Publish(devicemgr.Info{Name: "psu-01", State: st.state, Restarts: st.restarts, LastError: "refused",
			ChangedAt: at.Add(time.Duration(i) * time.Millisecond)})
		time.Sleep(20 * time.Millisecond) // let the feed take each state (squashing is counted, not tested here)
	}
	ingesttest.WaitCount(t, addr, table, "source = 'psu-01'", 5, waitTimeout)
	ingesttest.WaitCount(t, addr, table, "kind = 'restarted'", 1, waitTimeout)
	ingesttest.WaitCount(t, addr, table, "kind = 'connected'", 2, waitTimeout)
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}
