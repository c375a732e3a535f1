package supervisor_test

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/supervisor"
)

// TestSlowSubscriberDoesNotStall: a subscriber that never reads loses the
// oldest events (counted), and supervision goes on meanwhile.
func TestSlowSubscriberDoesNotStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		w := newWorker("w", &journal{})
		sup := supervisor.New("root", supervisor.Options{Rand: noJitter, MaxRestarts: 1000, Backoff: supervisor.Backoff{Min: -1}})
		mustAdd(t, sup, supervisor.ChildSpec{ID: "w", Service: w})
		slow := sup.Events(4)
		defer slow.Close()
		all := sup.Events(1000)
		defer all.Close()
		stop, _ := serve(t, sup)
		synctest.Wait()
		for range 20 {
			w.exit <- exitErr
		}
		synctest.Wait()
		if w.starts.Load() != 21 {
			t.Fatalf("starts %d: supervision stalled", w.starts.Load())
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		var total uint64
		for {
			ev, err := all.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			total++
			if ev.Kind == supervisor.EventStopped && ev.Child == "" {
				break
			}
		}
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		var got []supervisor.Event
		for {
			ev, err := slow.Next(ctx)
			if err != nil {
				break
			}
			got = append(got, ev)
		}
		if len(got) != 4 || slow.Dropped() != total-4 {
			t.Errorf("slow got %d events, dropped %d; total %d", len(got), slow.Dropped(), total)
		}
		if got[3].Kind != supervisor.EventStopped || got[0].Seq+3 != got[3].Seq {
			t.Errorf("slow kept %+v, want the newest 4", got)
		}
		slow.Close()
		if _, err := slow.Next(t.Context()); !errors.Is(err, supervisor.ErrClosed) {
			t.Errorf("Next after Close: %v", err)
		}
	})
}
