package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

// BenchmarkPublish measures samples per second from a Publisher into the
// stream of an embedded server (file storage): 100 devices, 4 channels, one
// flush per 10 polls of every device.
func BenchmarkPublish(b *testing.B) {
	srv := clustertest.StartServer(b)
	c := openTest(b, srv.URL(), "a")
	p := NewPublisher(c, "a", PublisherOptions{Logger: quiet()})
	const devs, chans = 100, 4
	names := make([]string, devs)
	for d := range names {
		names[d] = fmt.Sprintf("dev-%03d", d)
		p.Begin(names[d], uint64(d+1))
	}
	batch := make([]telemetry.Sample, chans)
	n := 0
	start := time.Now()
	for b.Loop() {
		for _, dev := range names {
			for ch := range batch {
				batch[ch] = telemetry.Sample{Device: dev, Channel: fmt.Sprint("c", ch), TimeNs: time.Now().UnixNano(), Value: telemetry.Float(float64(n))}
			}
			p.Publish(batch...)
			n += chans
		}
		if n%(10*devs*chans) == 0 {
			p.Flush(context.Background())
		}
	}
	p.Flush(context.Background())
	b.ReportMetric(float64(p.Stats().Samples)/time.Since(start).Seconds(), "samples/s")
}

// BenchmarkRenewRound measures one renewal round of 1000 leases.
func BenchmarkRenewRound(b *testing.B) {
	srv := clustertest.StartServer(b)
	c := openTest(b, srv.URL(), "a")
	log := newConnLog()
	n, err := c.NewNode(devices{node: "a", log: log}, fleet(1000, nil), NodeOptions{Name: "a", Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	n.register(ctx, time.Now())
	n.acquire(ctx, time.Now(), func() []string {
		var out []string
		for _, d := range fleet(1000, nil) {
			out = append(out, d.Name)
		}
		return out
	}())
	if len(n.Owned()) != 1000 {
		b.Fatalf("acquired %d of 1000", len(n.Owned()))
	}
	for b.Loop() {
		n.renew(ctx, time.Now())
	}
}
