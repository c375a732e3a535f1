package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

func openTest(t testing.TB, url, node string) *Cluster {
	t.Helper()
	nc, err := Connect(Config{URLs: []string{url}, Node: node}, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c, err := Open(context.Background(), nc, "t", natsTiming, Retention{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func smp(dev, ch string, v float64) telemetry.Sample {
	return telemetry.Sample{Device: dev, Channel: ch, TimeNs: time.Now().UnixNano(), Seq: 999, Value: telemetry.Float(v)}
}

// collector subscribes and keeps what arrives.
type collector struct {
	mu      sync.Mutex
	samples []telemetry.Sample
	events  []DeviceEvent
}

func (c *collector) add(u Update) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.samples = append(c.samples, u.Samples...)
	if u.Event != nil {
		c.events = append(c.events, *u.Event)
	}
	return nil
}

func (c *collector) seqs(key string) []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []uint64
	for _, s := range c.samples {
		if s.Key() == key {
			out = append(out, s.Seq)
		}
	}
	return out
}

func subscribe(t *testing.T, r *Reader, devices []string, since int64) *collector {
	t.Helper()
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Subscribe(ctx, devices, since, col.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("subscribe: %v", err)
		}
	})
	return col
}

func publishAll(t *testing.T, p *Publisher, ss ...telemetry.Sample) {
	t.Helper()
	p.Publish(ss...)
	p.Flush(context.Background())
}

// A device moves from node a to node b: each channel's numbering continues
// where a stopped, a subscriber on a third connection sees every seq once, and
// the last batch alone gives every channel's latest value.
func TestSequenceContinuesAcrossOwners(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb, cr := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b"), openTest(t, srv.URL(), "r")
	pa, pb := NewPublisher(ca, "a", PublisherOptions{Logger: quiet()}), NewPublisher(cb, "b", PublisherOptions{Logger: quiet()})
	reader := NewReader(cr, nil)
	// From a moment before the first publish: no race with the consumer's start.
	live := subscribe(t, reader, []string{"psu.1"}, time.Now().UnixNano())

	pa.Begin("psu.1", 10)
	publishAll(t, pa, smp("psu.1", "v", 1), smp("psu.1", "v", 2), smp("psu.1", "i", 0.5))
	publishAll(t, pa, smp("psu.1", "v", 3))
	pa.End("psu.1")
	pa.Flush(context.Background())
	pb.Begin("psu.1", 20)
	publishAll(t, pb, smp("psu.1", "v", 4), smp("psu.1", "v", 5))

	latest, err := reader.Latest(context.Background(), []string{"psu.1", "none"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(latest); got != "[psu.1/i#1 0.5 psu.1/v#5 5]" {
		t.Errorf("latest %s, want i#1 and v#5", got)
	}
	eventually(t, 5*time.Second, "live subscriber sees 5 v samples", func() bool { return len(live.seqs("psu.1/v")) == 5 })
	if got := fmt.Sprint(live.seqs("psu.1/v")); got != "[1 2 3 4 5]" {
		t.Errorf("live v seqs %s, want 1..5 once each", got)
	}
	// A replay from the beginning on another subscription: the same.
	replay := subscribe(t, reader, nil, 1)
	eventually(t, 5*time.Second, "replay sees 6 samples", func() bool {
		return len(replay.seqs("psu.1/v")) == 5 && len(replay.seqs("psu.1/i")) == 1
	})
	if s := pa.Stats(); s.Samples != 4 || s.Discarded != 0 {
		t.Errorf("a's stats %+v", s)
	}
}

// A node that lost a device while cut off cannot append its late samples
// behind the new owner: they are discarded and counted; samples it publishes
// before anyone else are numbered on from them.
func TestStaleOwnerCannotAppend(t *testing.T) {
	srv := clustertest.StartServer(t)
	ca, cb := openTest(t, srv.URL(), "a"), openTest(t, srv.URL(), "b")
	pa, pb := NewPublisher(ca, "a", PublisherOptions{Logger: quiet()}), NewPublisher(cb, "b", PublisherOptions{Logger: quiet()})
	reader := NewReader(cb, nil)

	pa.Begin("d", 5)
	publishAll(t, pa, smp("d", "x", 1))
	pa.Publish(smp("d", "x", 2), smp("d", "x", 3)) // polled, not yet published
	pa.End("d")                                    // a lost the lease meanwhile
	pb.Begin("d", 9)
	publishAll(t, pb, smp("d", "x", 10))
	pa.Flush(context.Background())
	if s := pa.Stats(); s.Discarded != 2 {
		t.Errorf("a's stats %+v, want its 2 late samples discarded", s)
	}
	latest, err := reader.Latest(context.Background(), []string{"d"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(latest); got != "[d/x#2 10]" {
		t.Errorf("latest %s, want b's x#2 = 10", got)
	}

	// The other order: a's late batch lands before b's first one; b numbers on.
	pa.Begin("e", 11)
	pa.Publish(smp("e", "x", 1))
	pa.End("e")
	pb.Begin("e", 12)
	pb.Flush(context.Background()) // b reads the (empty) subject
	pa.Flush(context.Background()) // then a's late batch lands
	publishAll(t, pb, smp("e", "x", 2))
	latest, err = reader.Latest(context.Background(), []string{"e"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(latest); got != "[e/x#2 2]" {
		t.Errorf("latest %s, want x#2 = 2 from b after a's x#1", got)
	}
	if s := pb.Stats(); s.Conflicts == 0 {
		t.Errorf("b's stats %+v: want the conflict it resolved", s)
	}
}

// A damaged last batch (written by something else on the subject) does not stop
// the device's telemetry: numbering starts again after it.
func TestDamagedLastBatch(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	if _, err := c.JS.Publish(context.Background(), c.Names.SampleSubject("d"), []byte{0x0a, 0xff}); err != nil {
		t.Fatal(err)
	}
	p := NewPublisher(c, "a", PublisherOptions{Logger: quiet()})
	p.Begin("d", 1)
	publishAll(t, p, smp("d", "x", 7))
	latest, err := NewReader(c, nil).Latest(context.Background(), []string{"d"})
	if err != nil || fmt.Sprint(latest) != "[d/x#1 7]" {
		t.Errorf("latest %v, %v: want x#1 = 7 after the damaged batch", latest, err)
	}
}

// The publisher holds at most MaxPending samples: Publish takes what fits and
// says how many; WaitRoom waits until a publish made room. A stream that is
// down or slow so holds samples back in the caller's queue, not here.
func TestPublisherPendingIsBounded(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	p := NewPublisher(c, "a", PublisherOptions{Logger: quiet(), MaxPending: 5})
	p.Begin("psu.1", 10)
	batch := []telemetry.Sample{smp("psu.1", "v", 1), smp("psu.1", "v", 2), smp("psu.1", "v", 3), smp("psu.1", "v", 4),
		smp("psu.1", "v", 5), smp("psu.1", "v", 6), smp("psu.1", "v", 7)}
	if n := p.Publish(batch...); n != 5 || p.Room() != 0 {
		t.Fatalf("Publish of 7 with room for 5 took %d, room left %d", n, p.Room())
	}
	if n := p.Publish(smp("other", "v", 1)); n != 1 {
		t.Fatalf("a sample of a device not owned: taken %d (dropped, counted), want 1", n)
	}
	if n := p.Publish(batch[5:]...); n != 0 {
		t.Fatalf("Publish with no room took %d", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.WaitRoom(ctx); err == nil {
		t.Fatal("WaitRoom returned with nothing published")
	}
	waited := make(chan error, 1)
	go func() { waited <- p.WaitRoom(context.Background()) }()
	p.Flush(context.Background())
	select {
	case err := <-waited:
		if err != nil || p.Room() != 5 {
			t.Fatalf("after the flush: WaitRoom %v, room %d; want nil, 5", err, p.Room())
		}
	case <-time.After(30 * time.Second): // bounds a broken run only
		t.Fatalf("WaitRoom still waiting after the flush published everything (room %d)", p.Room())
	}
	p.Publish(batch[5:]...)
	p.Flush(context.Background())
	if s := p.Stats(); s.Samples != 7 || s.Unowned != 1 {
		t.Fatalf("stats %+v: want the 7 samples published, one unowned", s)
	}
}
