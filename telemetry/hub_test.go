package telemetry_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// TestLosslessIsBoundedAndHoldsPublishersBack: a Lossless subscription never
// drops and never holds more than its bound; past it, Publish waits for the
// consumer (back-pressure), counted, and goes on once it drains.
func TestLosslessIsBoundedAndHoldsPublishersBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewPedanticRegistry()
		h := telemetry.NewHub(reg)
		s := h.Subscribe(telemetry.SubscribeOptions{Name: "archive", Capacity: 4, Policy: telemetry.Lossless})
		defer s.Close()
		viewer := h.Subscribe(telemetry.SubscribeOptions{Name: "viewer", Capacity: 100})
		defer viewer.Close()
		published := make(chan struct{})
		go func() {
			h.Publish(samples("a", 10)...)
			close(published)
		}()
		synctest.Wait()
		select {
		case <-published:
			t.Fatal("Publish of 10 into a lossless queue of 4 returned without waiting")
		default:
		}
		if st := s.Stats(); st.Len != 4 || st.Dropped != 0 {
			t.Fatalf("while full: %d queued, %d dropped; want 4 (the bound), 0", st.Len, st.Dropped)
		}
		var got []telemetry.Sample
		for len(got) < 10 {
			<-s.Ready()
			got = s.Drain(got, 3)
			synctest.Wait()
			if n := s.Len(); n > 4 {
				t.Fatalf("%d queued, bound 4", n)
			}
		}
		<-published
		for i, smp := range got {
			if smp.Seq != uint64(i+1) {
				t.Fatalf("sample %d has seq %d: %v", i, smp.Seq, got)
			}
		}
		if st := s.Stats(); st.Waits < 1 || st.Dropped != 0 {
			t.Fatalf("stats %+v: want back-pressure waits counted, nothing dropped", st)
		}
		if n, err := testutil.GatherAndCount(reg, "switchyard_hub_backpressure_waits_total"); err != nil || n != 1 {
			t.Fatalf("switchyard_hub_backpressure_waits_total: %d series (%v), want 1 for archive", n, err)
		}
		if viewer.Len() != 10 {
			t.Fatalf("the viewer after the lossless one got %d, want 10", viewer.Len())
		}

		// Closing the subscription releases a waiting publisher.
		h.Publish(samples("b", 4)...)
		published = make(chan struct{})
		go func() { h.Publish(samples("c", 1)...); close(published) }()
		synctest.Wait()
		s.Close()
		<-published
	})
}

// TestPublishNoWaitPassesTheBound: the server's own health samples never wait.
func TestPublishNoWaitPassesTheBound(t *testing.T) {
	h := telemetry.NewHub(nil)
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 2, Policy: telemetry.Lossless})
	defer s.Close()
	h.Publish(samples("a", 2)...)
	h.PublishNoWait(samples("switchyard", 3)...)
	if got := s.Drain(nil, 0); len(got) != 5 {
		t.Fatalf("got %d samples, want 5", len(got))
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

// TestForget drops the latest values of one device's channels: Latest no
// longer has them, the other device keeps its own, and a later publish of the
// forgotten device is its latest again.
func TestForget(t *testing.T) {
	h := telemetry.NewHub(nil)
	h.Publish(telemetry.Sample{Device: "a", Channel: "x", Seq: 1}, telemetry.Sample{Device: "a", Channel: "y", Seq: 1})
	h.Publish(telemetry.Sample{Device: "b", Channel: "x", Seq: 2})
	h.Forget(func(s *telemetry.Sample) bool { return s.Device == "a" })
	if lat := h.Latest(nil); len(lat) != 1 || lat[0].Device != "b" || lat[0].Seq != 2 {
		t.Fatalf("latest after forgetting a = %v, want b's only", lat)
	}
	h.Publish(telemetry.Sample{Device: "a", Channel: "x", Seq: 3})
	if lat := h.Latest(func(s *telemetry.Sample) bool { return s.Device == "a" }); len(lat) != 1 || lat[0].Seq != 3 {
		t.Fatalf("latest of a published again = %v, want seq 3", lat)
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

// TestByteBound: a subscription bounded in bytes applies its policy there,
// whatever its bound in samples.
func TestByteBound(t *testing.T) {
	h := telemetry.NewHub(nil)
	one := telemetry.SampleSize(&telemetry.Sample{Device: "a", Channel: "v"})
	s := h.Subscribe(telemetry.SubscribeOptions{Capacity: 1000, MaxBytes: 4 * one, Policy: telemetry.Squash})
	defer s.Close()
	for i := range 10 {
		h.Publish(telemetry.Sample{Device: "a", Channel: "v", Seq: uint64(i + 1)},
			telemetry.Sample{Device: "b", Channel: "v", Seq: uint64(i + 1)})
	}
	st := s.Stats()
	if st.Bytes > 4*one || st.Len > 4 || st.Len+int(st.Squashed) != 20 || st.Dropped != 0 {
		t.Fatalf("stats %+v: want at most 4 samples' bytes (%d), the rest squashed", st, 4*one)
	}
	got := s.Drain(nil, 0)
	if last := got[len(got)-1]; last.Seq != 10 {
		t.Fatalf("does not end on the latest: %v", got)
	}
	// A long error string counts.
	h.Publish(telemetry.Sample{Device: "c", Channel: "v", Err: strings.Repeat("x", 4096)})
	if st := s.Stats(); st.Bytes < 4096 {
		t.Fatalf("a 4 KiB error counted %d bytes", st.Bytes)
	}
}

// TestStalledSubscriptionEnds: a subscriber whose queue stays full and unread
// for StallAfter is ended with ErrStalled (OnStall once), leaves the hub, and
// no longer costs the publishers anything; one that reads is never ended.
func TestStalledSubscriptionEnds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := telemetry.NewHub(nil)
		stalls := 0
		opts := telemetry.SubscribeOptions{Name: "api", Capacity: 4, Policy: telemetry.Squash, StallAfter: time.Minute,
			OnStall: func() { stalls++ }}
		dead := h.Subscribe(opts)
		defer dead.Close()
		opts.OnStall = nil
		alive := h.Subscribe(opts)
		defer alive.Close()
		for range 130 { // a sample a second for over two minutes, each a new channel: full all the time
			h.Publish(telemetry.Sample{Device: "a", Channel: fmt.Sprint("c", time.Now().Unix()), Seq: 1})
			alive.Drain(nil, 0)
			time.Sleep(time.Second)
		}
		if !errors.Is(dead.Err(), telemetry.ErrStalled) || stalls != 1 {
			t.Fatalf("stalled subscriber: err %v, OnStall %d times; want ErrStalled, once", dead.Err(), stalls)
		}
		if alive.Err() != nil {
			t.Fatalf("a subscriber that reads was ended: %v", alive.Err())
		}
		// What it held stays drainable; nothing new arrives.
		if n := len(dead.Drain(nil, 0)); n == 0 || n > 4 {
			t.Fatalf("stalled subscriber kept %d samples", n)
		}
		h.Publish(samples("z", 1)...)
		if dead.Len() != 0 {
			t.Fatal("a stalled subscription still receives")
		}
	})
}
