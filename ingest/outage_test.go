package ingest_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/telemetry"
)

// outageFor is how long TestQuestDBOutage keeps QuestDB stopped: 60 s as the
// archive's acceptance test demands; SWITCHYARD_TEST_OUTAGE shortens it for
// local runs.
func outageFor(t *testing.T) time.Duration {
	if v := os.Getenv("SWITCHYARD_TEST_OUTAGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SWITCHYARD_TEST_OUTAGE=%q: %v", v, err)
		}
		return d
	}
	return 60 * time.Second
}

// producer publishes samples at a steady pace until stopped, with per-channel
// sequence numbers like the device manager's.
type producer struct {
	hub  *telemetry.Hub
	stop chan struct{}
	done sync.WaitGroup
	n    int
}

func startProducer(hub *telemetry.Hub) *producer {
	p := &producer{hub: hub, stop: make(chan struct{})}
	p.done.Add(1)
	go func() {
		defer p.done.Done()
		seq := map[string]uint64{}
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			batch := make([]telemetry.Sample, 20)
			now := time.Now().UnixNano() / 1000 * 1000
			for i := range batch {
				ch := fmt.Sprintf("ch%d", i%10)
				dev := fmt.Sprintf("dev%d", i/10)
				seq[dev+ch]++
				batch[i] = telemetry.Sample{Device: dev, Channel: ch, TimeNs: now + int64(i)*1000,
					Seq: seq[dev+ch], Value: telemetry.Float(float64(p.n + i))}
			}
			p.hub.Publish(batch...)
			p.n += len(batch)
		}
	}()
	return p
}

// halt stops publishing and returns how many samples were published.
func (p *producer) halt() int {
	close(p.stop)
	p.done.Wait()
	return p.n
}

// TestQuestDBOutage stops a private QuestDB for a minute while samples keep
// coming (2,000/s), then starts it again: QuestDB ends up with exactly the
// samples published, none lost, none twice.
func TestQuestDBOutage(t *testing.T) {
	srv := ingesttest.StartServer(t)
	table := ingesttest.Table(t, srv.Addr)
	hub := telemetry.NewHub(nil)
	sub := archiveSub(hub)
	defer sub.Close()
	reg := prometheus.NewRegistry()
	w := startWriter(t, srv.Addr, sub, ingest.Options{
		Table: table, SpoolDir: t.TempDir(), Registerer: reg, BatchRows: 1000,
		RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: 2 * time.Second,
	})
	p := startProducer(hub)
	eventually.True(t, waitTimeout, "rows written before the outage", func() bool { return w.Written() > 2000 })

	srv.Stop(t)
	outage := outageFor(t)
	t.Logf("QuestDB stopped for %s under load", outage)
	time.Sleep(outage)
	if got := metrictest.Sum(t, reg, "switchyard_ingest_retries_total"); got == 0 {
		t.Error("no retries counted during the outage")
	}
	if st := w.SpoolStatus(); st.Rows == 0 {
		t.Errorf("spool empty during the outage: %+v", st)
	}
	srv.Start(t)
	time.Sleep(2 * time.Second) // more load after the restart
	published := p.halt()
	eventually.True(t, waitTimeout, "every sample written", func() bool { return w.Written() == uint64(published) })
	if err := w.stop(t); err != nil {
		t.Fatal(err)
	}
	ingesttest.WaitCount(t, srv.Addr, table, "", int64(published), waitTimeout)
	_, rows, err := ingest.Query(context.Background(), srv.Addr,
		`SELECT count() FROM (SELECT DISTINCT device, channel, seq FROM "`+table+`")`)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(rows[0][0]); got != fmt.Sprint(published) {
		t.Fatalf("%s distinct (device, channel, seq) in QuestDB, %d published", got, published)
	}
	t.Logf("published %d samples across a %s outage; QuestDB holds each once", published, outage)
}
