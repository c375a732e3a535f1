package alarm_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestQuestDBSinkKeepsTransitionsThroughAnOutage: transitions recorded while
// QuestDB answers 503 or drops connections are kept and land once it is back,
// each exactly once; what is queued at shutdown is delivered before Serve returns.
func TestQuestDBSinkKeepsTransitionsThroughAnOutage(t *testing.T) {
	qdb := ingesttest.QuestDB(t)
	table := ingesttest.Table(t, qdb)
	proxy := ingesttest.NewProxy(t, qdb)
	failures := make(chan string, 100)
	sink := alarm.NewQuestDBSink(proxy.Addr(), table, slog.New(failureHandler{failures}))
	waitFailure := func() {
		t.Helper()
		select {
		case <-failures:
		case <-time.After(60 * time.Second):
			t.Fatal("the sink reported no failed delivery during the outage")
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = sink.Serve(ctx) })

	m := alarm.NewMachine("psu-1", "voltage", "power", lim())
	now := time.Now()
	record := func(v float64) {
		now = now.Add(time.Millisecond)
		for _, tr := range m.Sample(now, &telemetry.Sample{Value: telemetry.Float(v), TimeNs: now.UnixNano()}) {
			sink.Record(tr)
		}
	}
	record(45) // RAISED HIGH
	ingesttest.WaitCount(t, qdb, table, "", 1, 60*time.Second)

	proxy.Set(ingesttest.Unavailable)
	record(55) // RAISED HIHI
	record(20) // CLEARED
	waitFailure()
	proxy.Set(ingesttest.Drop)
	record(0) // RAISED LOLO
	waitFailure()
	proxy.Set(ingesttest.Up)
	ingesttest.WaitCount(t, qdb, table, "", 4, 60*time.Second)

	// Queued while stopping: delivered before Serve returns.
	record(20)
	cancel()
	wg.Wait()
	ingesttest.WaitCount(t, qdb, table, "", 5, 60*time.Second)
	ingesttest.WaitCount(t, qdb, table, "event = 'RAISED' AND cond = 'LOLO' AND lolo = 1 AND latched = 'MAJOR'", 1, 10*time.Second)
}

// failureHandler sends the message of every warning or error to a channel.
type failureHandler struct{ c chan<- string }

func (h failureHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h failureHandler) Handle(_ context.Context, r slog.Record) error {
	select {
	case h.c <- r.Message:
	default:
	}
	return nil
}

func (h failureHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h failureHandler) WithGroup(string) slog.Handler      { return h }
