package telemetry_test

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/switchyard/switchyard/telemetry"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func samples(dev string, n int) []telemetry.Sample {
	out := make([]telemetry.Sample, n)
	for i := range out {
		out[i] = telemetry.Sample{Device: dev, Channel: "v", Seq: uint64(i + 1), Value: telemetry.Float(float64(i))}
	}
	return out
}

func TestFanOutKeepsOrderAndFilters(t *testing.T) {
	h := telemetry.NewHub(nil)
	all := h.Subscribe(telemetry.SubscribeOptions{Name: "all"})
	onlyB := h.Subscribe(telemetry.SubscribeOptions{Name: "b", Match: func(s *telemetry.Sample) bool { return s.Device == "b" }})
	defer all.Close()
	defer onlyB.Close()
	h.Publish(samples("a", 3)...)
	h.Publish(samples("b", 2)...)
	got := all.Drain(nil, 0)
	if len(got) != 5 || got[0].Device != "a" || got[3].Device != "b" || got[4].Seq != 2 {
		t.Fatalf("all got %v", got)
	}
	gotB := onlyB.Drain(nil, 0)
	if len(gotB) != 2 || gotB[0].Seq != 1 || gotB[1].Seq != 2 {
		t.Fatalf("b got %v", gotB)
	}
	select {
	case <-onlyB.Ready():
	default:
		t.Fatal("no wake-up was left for the subscriber")
	}
}

func TestDropOldestCountsAndKeepsNewest(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 4})
	defer s.Close()
	h.Publish(samples("a", 10)...) // nobody reads: the producer must not block
	if s.Dropped() != 6 {
		t.Fatalf("dropped = %d, want 6", s.Dropped())
	}
	got := s.Drain(nil, 0)
	if len(got) != 4 || got[0].Seq != 7 || got[3].Seq != 10 {
		t.Fatalf("got %v, want seq 7..10", got)
	}
}

func TestLosslessNeverDrops(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 4, Policy: telemetry.Lossless})
	defer s.Close()
	h.Publish(samples("a", 10000)...)
	if s.Dropped() != 0 || s.Len() != 10000 {
		t.Fatalf("dropped %d, len %d", s.Dropped(), s.Len())
	}
	first := s.Drain(nil, 100)
	rest := s.Drain(nil, 0)
	if len(first) != 100 || len(rest) != 9900 || rest[0].Seq != 101 || rest[9899].Seq != 10000 {
		t.Fatalf("drained %d then %d", len(first), len(rest))
	}
}

func TestConcurrentPublishersAllDelivered(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Lossless})
	defer s.Close()
	var wg sync.WaitGroup
	for p := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, smp := range samples(fmt.Sprint("d", p), 1000) {
				h.Publish(smp)
			}
		}()
	}
	wg.Wait()
	got := s.Drain(nil, 0)
	last := map[string]uint64{}
	for _, g := range got {
		if g.Seq != last[g.Device]+1 {
			t.Fatalf("%s: seq %d after %d", g.Device, g.Seq, last[g.Device])
		}
		last[g.Device] = g.Seq
	}
	if len(got) != 8000 {
		t.Fatalf("got %d samples, want 8000", len(got))
	}
}

func TestLatestAndClose(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{})
	h.Publish(samples("a", 3)...)
	h.Publish(samples("b", 1)...)
	lat := h.Latest(func(x *telemetry.Sample) bool { return x.Device == "a" })
	if len(lat) != 1 || lat[0].Seq != 3 {
		t.Fatalf("latest = %v", lat)
	}
	s.Close()
	s.Close()
	h.Publish(samples("c", 1)...)
	if got := s.Drain(nil, 0); len(got) != 4 {
		t.Fatalf("after close: %d queued, want the 4 from before", len(got))
	}
}

func BenchmarkPublish(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprint(n, "consumers"), func(b *testing.B) {
			h := telemetry.NewHub(nil)
			subs := make([]*telemetry.Subscription, n)
			for i := range subs {
				subs[i] = h.Subscribe(telemetry.SubscribeOptions{Capacity: 1 << 14})
			}
			batch := samples("a", 4)
			b.ReportAllocs()
			for b.Loop() {
				h.Publish(batch...)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(batch)), "ns/sample")
			for _, s := range subs {
				s.Close()
			}
		})
	}
}

func TestSquashKeepsLatestPerChannelAndCounts(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 4, Policy: telemetry.Squash})
	defer s.Close()
	// Two channels, 10 samples each, interleaved; nobody reads.
	for i := range 10 {
		h.Publish(
			telemetry.Sample{Device: "a", Channel: "v", Seq: uint64(i + 1)},
			telemetry.Sample{Device: "b", Channel: "v", Seq: uint64(i + 1)},
		)
	}
	got := s.Drain(nil, 0)
	if s.Dropped() != 0 {
		t.Fatalf("dropped %d, want 0", s.Dropped())
	}
	if uint64(len(got))+s.Squashed() != 20 {
		t.Fatalf("delivered %d + squashed %d != 20 published", len(got), s.Squashed())
	}
	last := map[string]uint64{}
	for _, g := range got {
		if g.Seq <= last[g.Device] {
			t.Fatalf("out of order: %v", got)
		}
		last[g.Device] = g.Seq
	}
	if last["a"] != 10 || last["b"] != 10 {
		t.Fatalf("did not end on the latest values: %v", got)
	}
	// Under capacity nothing is squashed.
	h.Publish(samples("a", 3)...)
	if got := s.Drain(nil, 0); len(got) != 3 {
		t.Fatalf("got %d, want 3", len(got))
	}
}

func TestSquashDropsOnlyWhenChannelsExceedCapacity(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 2, Policy: telemetry.Squash})
	defer s.Close()
	for _, d := range []string{"a", "b", "c"} {
		h.Publish(telemetry.Sample{Device: d, Channel: "v", Seq: 1})
	}
	got := s.Drain(nil, 0)
	if s.Dropped() != 1 || len(got) != 2 || got[0].Device != "b" {
		t.Fatalf("dropped %d, got %v", s.Dropped(), got)
	}
}

// TestSlowSquashesWhileFiftyGetAll: one subscriber that never reads squashes and
// counts; 50 that keep up receive every sample, in order.
func TestSlowSquashesWhileFiftyGetAll(t *testing.T) {
	h := telemetry.NewHub(nil)
	const consumers, channels, rounds = 50, 20, 500
	slow := h.Subscribe(telemetry.SubscribeOptions{Name: "slow", Capacity: 1024, Policy: telemetry.Squash})
	defer slow.Close()
	fast := make([]*telemetry.Subscription, consumers)
	got := make([]int, consumers)
	for i := range fast {
		fast[i] = h.Subscribe(telemetry.SubscribeOptions{Capacity: 1024, Policy: telemetry.Squash})
		defer fast[i].Close()
	}
	batch := make([]telemetry.Sample, channels)
	last := make([]map[string]uint64, consumers)
	for i := range last {
		last[i] = map[string]uint64{}
	}
	for r := range rounds {
		for c := range batch {
			batch[c] = telemetry.Sample{Device: fmt.Sprint("d", c), Channel: "v", Seq: uint64(r + 1)}
		}
		h.Publish(batch...)
		// The fast consumers read between bursts: each burst fits their queue.
		var wg sync.WaitGroup
		for i, s := range fast {
			wg.Go(func() {
				for _, smp := range s.Drain(nil, 0) {
					if smp.Seq != last[i][smp.Device]+1 {
						t.Errorf("consumer %d: %s seq %d after %d", i, smp.Device, smp.Seq, last[i][smp.Device])
					}
					last[i][smp.Device] = smp.Seq
					got[i]++
				}
			})
		}
		wg.Wait()
	}
	for i, s := range fast {
		if got[i] != channels*rounds || s.Squashed() != 0 || s.Dropped() != 0 {
			t.Fatalf("consumer %d: got %d of %d, squashed %d, dropped %d", i, got[i], channels*rounds, s.Squashed(), s.Dropped())
		}
	}
	tail := slow.Drain(nil, 0)
	if slow.Dropped() != 0 || uint64(len(tail))+slow.Squashed() != channels*rounds {
		t.Fatalf("slow: %d queued + %d squashed != %d (dropped %d)", len(tail), slow.Squashed(), channels*rounds, slow.Dropped())
	}
	latest := map[string]uint64{}
	for _, s := range tail {
		latest[s.Device] = s.Seq
	}
	for c := range channels {
		if latest[fmt.Sprint("d", c)] != rounds {
			t.Fatalf("slow subscriber does not end on the latest value of d%d: %d", c, latest[fmt.Sprint("d", c)])
		}
	}
}
