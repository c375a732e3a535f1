package ingest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
)

// eventLog runs an EventWriter into a table of its own on the test QuestDB
// (through via, a proxy, when not empty) and returns it with a Log of it.
func eventLog(t *testing.T, via string) (*ingest.EventWriter, *ingest.Log[ingest.Event], string) {
	t.Helper()
	addr := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, addr)
	w, err := ingest.NewEventWriter(questDB(t, addr), ingest.Options{Table: table, Logger: quietLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if via == "" {
		via = addr
	}
	l, err := ingest.NewLog(via, w.Writer)
	if err != nil {
		t.Fatal(err)
	}
	return w, l, table
}

// TestLogReplay: a replay hands over every record from since on exactly once,
// in time order, across page boundaries, including a run of records in one
// microsecond longer than a page; Settle makes what was recorded before it
// readable at once.
func TestLogReplay(t *testing.T) {
	w, l, _ := eventLog(t, "")
	ctx := t.Context()
	base := time.Now().Truncate(time.Millisecond)
	var all []ingest.Event
	add := func(at time.Time, seq uint64) {
		e := ingest.Event{TimeNs: at.UnixNano(), Source: "d", Kind: "k", Seq: seq, Message: fmt.Sprint(seq)}
		all = append(all, e)
		if err := w.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 10 {
		add(base.Add(time.Duration(i)*time.Millisecond), uint64(i+1))
	}
	for i := range 7 { // one microsecond, more than a page
		add(base.Add(20*time.Millisecond+300*time.Nanosecond), uint64(100+i))
	}
	for i := range 3 {
		add(base.Add(time.Duration(30+i)*time.Millisecond), uint64(200+i))
	}
	if err := l.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := l.Page(ctx, 0, 1000); err != nil || len(got) != len(all) {
		t.Fatalf("right after Settle: %d rows (%v), want %d", len(got), err, len(all))
	}

	since := base.Add(2*time.Millisecond + 500*time.Nanosecond) // in event 3's microsecond
	var got []ingest.Event
	var pages []int
	err := l.Replay(ctx, since.UnixNano(), ingest.ReplayOptions{Page: 4}, func(es []ingest.Event) error {
		got = append(got, es...)
		pages = append(pages, len(es))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(all[2:])
	for i := range want {
		want[i].TimeNs = want[i].TimeNs / 1000 * 1000 // QuestDB keeps microseconds
	}
	// Records of one microsecond may come in any order among themselves.
	order := func(a, b ingest.Event) int {
		if a.TimeNs != b.TimeNs {
			return int(a.TimeNs - b.TimeNs)
		}
		return int(a.Seq) - int(b.Seq)
	}
	if !slices.IsSortedFunc(got, func(a, b ingest.Event) int { return int(a.TimeNs - b.TimeNs) }) {
		t.Errorf("replay not in time order: %v", got)
	}
	slices.SortFunc(got, order)
	if !slices.Equal(got, want) {
		t.Fatalf("replay from %v in pages %v:\n got %v\nwant %v", since, pages, got, want)
	}
	if !slices.Equal(pages, []int{3, 3, 2, 7, 3}) {
		t.Errorf("pages %v, want [3 3 2 7 3] (each page ends before its last microsecond)", pages)
	}
	// From after the end: nothing.
	if err := l.Replay(ctx, base.Add(time.Second).UnixNano(), ingest.ReplayOptions{}, func(es []ingest.Event) error {
		return fmt.Errorf("got %v", es)
	}); err != nil {
		t.Fatal(err)
	}
}

// stepClock is a backoff.Clock whose waits end when the test says so.
type stepClock struct{ waits chan chan time.Time }

func (c stepClock) Now() time.Time { return time.Now() }

func (c stepClock) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.waits <- ch
	return ch
}

// TestLogReplayRetriesAnOutage: a replay started while QuestDB is down waits
// (backoff) and completes once it is back; an error that will not pass (a
// statement QuestDB refuses) ends it at once.
func TestLogReplayRetriesAnOutage(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	proxy := ingesttest.NewProxy(t, addr)
	w, l, _ := eventLog(t, proxy.Addr())
	ctx := t.Context()
	at := time.Now()
	if err := w.Record(ctx, ingest.Event{TimeNs: at.UnixNano(), Source: "d", Kind: "k", Seq: 1}); err != nil {
		t.Fatal(err)
	}
	if err := l.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	proxy.Set(ingesttest.Unavailable)
	clock := stepClock{waits: make(chan chan time.Time)}
	done := make(chan error, 1)
	var got []ingest.Event
	go func() {
		done <- l.Replay(ctx, at.UnixNano(), ingest.ReplayOptions{Clock: clock}, func(es []ingest.Event) error {
			got = append(got, es...)
			return nil
		})
	}()
	wait := <-clock.waits // the first query failed: the replay waits to retry
	proxy.Set(ingesttest.Up)
	wait <- time.Now()
	if err := <-done; err != nil || len(got) != 1 || got[0].Seq != 1 {
		t.Fatalf("after the outage: %v, %v", got, err)
	}

	bad, err := ingest.NewLog(addr, badColumns(t, w))
	if err != nil {
		t.Fatal(err)
	}
	err = bad.Replay(ctx, 0, ingest.ReplayOptions{Clock: clock}, func([]ingest.Event) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "nonexistent") {
		t.Fatalf("a statement QuestDB refuses: %v, want its error at once", err)
	}
}

// badColumns is a Writer of w's table whose Columns name a column it lacks.
func badColumns(t *testing.T, w *ingest.EventWriter) *ingest.Writer[ingest.Event] {
	t.Helper()
	table := ingest.EventTable()
	table.Columns = append(slices.Clone(table.Columns), "nonexistent")
	r, err := ingest.NewRecorder(ingesttest.NewFakeDB(), table, ingest.Options{Table: w.Table()})
	if err != nil {
		t.Fatal(err)
	}
	return r.Writer
}
