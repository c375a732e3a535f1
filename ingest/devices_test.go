package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

// quietWatch is a status watch that never says changes are waiting: its
// DeviceEvents takes them only when asked to (Sync) or when it stops.
type quietWatch struct{ devicemgr.StatusWatch }

func (quietWatch) Ready() <-chan struct{} { return nil }

// deviceArchive runs an EventWriter into a table of its own on the test
// QuestDB and a DeviceEvents fed by a quietWatch of feed. stop ends the
// DeviceEvents (then the writer); it is also called when the test ends.
func deviceArchive(t *testing.T, feed *devicemgr.StateFeed) (h *ingest.DeviceHistory, w *ingest.EventWriter, table string, stop func()) {
	t.Helper()
	addr := ingesttest.QuestDB(t)
	table = ingesttest.Table(t, addr)
	w, err := ingest.NewEventWriter(questDB(t, addr), ingest.Options{Table: table, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	de := ingest.NewDeviceEvents(quietWatch{devicemgr.StatusWatch{StateWatch: feed.Watch()}}, w)
	if h, err = ingest.NewDeviceHistory(addr, de); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(context.Background())
	dctx, dcancel := context.WithCancel(context.Background())
	wdone, ddone := make(chan error, 1), make(chan error, 1)
	go func() { wdone <- w.Serve(wctx) }()
	go func() { ddone <- de.Serve(dctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		dcancel()
		if err := <-ddone; err != nil {
			t.Error(err)
		}
		wcancel()
		if err := <-wdone; err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return h, w, table, stop
}

// TestDeviceHistory: the state changes DeviceEvents archives read back as
// the changes they were (state, time, error, address and identity, next
// attempt, the reconnection count where it grew), from since on, in order;
// Settle makes every change published before it readable; the states the
// archiver missed are counted.
func TestDeviceHistory(t *testing.T) {
	var feed devicemgr.StateFeed
	h, w, _, _ := deviceArchive(t, &feed)
	ctx := t.Context()
	base := time.Now().Truncate(time.Microsecond)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	next := at(5000).UTC()
	infos := []devicemgr.Info{
		{Name: "psu-1", State: devicemgr.Connecting, Address: "10.0.0.1:5025", ChangedAt: at(0)},
		{Name: "psu-1", State: devicemgr.Connected, Address: "10.0.0.1:5025", Identity: "ACME,PSU (rev 2),1", ChangedAt: at(1)},
		{Name: "psu-2", State: devicemgr.Connecting, Address: "10.0.0.2:5025", ChangedAt: at(2)},
		{Name: "psu-1", State: devicemgr.Backoff, Address: "10.0.0.1:5025", LastError: "read: connection reset",
			Restarts: 1, NextAttempt: next, ChangedAt: at(3)},
		{Name: "psu-1", State: devicemgr.Connecting, Address: "10.0.0.1:5025", LastError: "read: connection reset",
			Restarts: 1, ChangedAt: at(4)},
		{Name: "psu-2", State: devicemgr.Stopped, Address: "10.0.0.2:5025", ChangedAt: at(5)},
	}
	for i := range infos {
		feed.Publish(infos[i])
		if err := h.Settle(ctx); err != nil { // one at a time: nothing squashed
			t.Fatal(err)
		}
	}
	// What the archiver could not follow, recorded as such.
	if err := w.Record(ctx, ingest.Event{TimeNs: at(6).UnixNano(), Source: telemetry.SystemDevice, Kind: "squashed",
		Message: "3 device states were replaced by newer ones before they were archived"}); err != nil {
		t.Fatal(err)
	}
	// The last change is in the archive as soon as Settle returns, though the
	// archiver's watch never woke it.
	feed.Publish(devicemgr.Info{Name: "psu-2", State: devicemgr.Connecting, ChangedAt: at(7)})
	if err := h.Settle(ctx); err != nil {
		t.Fatal(err)
	}

	var got []string
	missed, err := h.Replay(ctx, at(1).UnixNano(), ingest.ReplayOptions{Page: 2}, func(cs []ingest.DeviceChange) error {
		for _, c := range cs {
			got = append(got, fmt.Sprintf("%d %s %s err=%q addr=%q id=%q next=%v restarts=%d/%v up=%v stopped=%v",
				c.ChangedAt.Sub(base).Milliseconds(), c.Device, c.State, c.LastError, c.Address, c.Identity,
				c.NextAttempt.Equal(next), c.Restarts, c.Reconnected, c.Up, c.Stopped))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`1 psu-1 CONNECTED err="" addr="10.0.0.1:5025" id="ACME,PSU (rev 2),1" next=false restarts=0/false up=true stopped=false`,
		`2 psu-2 CONNECTING err="" addr="" id="" next=false restarts=0/false up=false stopped=false`,
		`3 psu-1 BACKOFF err="read: connection reset" addr="" id="" next=true restarts=1/true up=false stopped=false`,
		`4 psu-1 CONNECTING err="read: connection reset" addr="" id="" next=false restarts=0/false up=false stopped=false`,
		`5 psu-2 STOPPED err="" addr="" id="" next=false restarts=0/false up=false stopped=true`,
		`7 psu-2 CONNECTING err="" addr="" id="" next=false restarts=0/false up=false stopped=false`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("replay:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if missed != 3 {
		t.Errorf("missed %d, want the 3 the archiver recorded as squashed", missed)
	}
}

// TestDeviceEventsRecordsTheLastStatesAtShutdown: the states published just
// before DeviceEvents stops (the devices' STOPPED at shutdown) are archived,
// although its watch never woke it for them.
func TestDeviceEventsRecordsTheLastStatesAtShutdown(t *testing.T) {
	var feed devicemgr.StateFeed
	h, _, table, stop := deviceArchive(t, &feed)
	if err := h.Settle(t.Context()); err != nil { // DeviceEvents runs and waits
		t.Fatal(err)
	}
	feed.Publish(devicemgr.Info{Name: "psu-1", State: devicemgr.Stopped, ChangedAt: time.Now()})
	stop()
	ingesttest.WaitCount(t, ingesttest.QuestDB(t), table, "source = 'psu-1' AND kind = 'stopped'", 1, waitTimeout)
}
