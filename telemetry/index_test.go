package telemetry_test

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard/switchyard/telemetry"
)

// TestChannelIndexConcurrent adds and looks up channels from several
// goroutines at once (run with -race): every channel gets exactly one value,
// made once, whoever asks first, and keeps it through the merges of the
// additions into the read-only map.
func TestChannelIndexConcurrent(t *testing.T) {
	var x telemetry.ChannelIndex[*int]
	var made atomic.Int64
	const devices, channels, workers = 300, 4, 4
	var wg sync.WaitGroup
	got := make([]map[string]*int, workers)
	for w := range workers {
		got[w] = map[string]*int{}
		wg.Go(func() {
			for round := range 3 {
				for d := range devices {
					dev := fmt.Sprintf("dev-%03d", (d+w*77)%devices)
					for c := range channels {
						ch := fmt.Sprint("ch", c)
						v := x.GetOrAdd(dev, ch, func() *int { made.Add(1); return new(int) })
						key := dev + "/" + ch
						if prev, ok := got[w][key]; ok && prev != v {
							t.Errorf("round %d: %s changed its value", round, key)
						}
						got[w][key] = v
						if g, ok := x.Get(dev, ch); !ok || g != v {
							t.Errorf("Get(%s) = %v, %v after GetOrAdd gave %v", key, g, ok, v)
						}
					}
				}
			}
		})
	}
	wg.Wait()
	if n := made.Load(); n != devices*channels {
		t.Errorf("values made %d times, want %d (once per channel)", n, devices*channels)
	}
	for w := 1; w < workers; w++ {
		for k, v := range got[0] {
			if got[w][k] != v {
				t.Fatalf("worker %d sees another value for %s", w, k)
			}
		}
	}
	if n := x.Len(); n != devices*channels {
		t.Errorf("Len = %d, want %d", n, devices*channels)
	}
	var keys []string
	x.Range(func(dev, ch string, v *int) bool {
		if got[0][dev+"/"+ch] != v {
			t.Errorf("Range gives %s another value", dev+"/"+ch)
		}
		keys = append(keys, dev+"/"+ch)
		return true
	})
	slices.Sort(keys)
	if len(keys) != devices*channels || len(slices.Compact(keys)) != devices*channels {
		t.Errorf("Range visited %d channels (%d distinct), want %d", len(keys), len(slices.Compact(keys)), devices*channels)
	}
	if _, ok := x.Get("nope", "ch0"); ok {
		t.Error("Get of a channel never added: found")
	}
}

// TestChannelIndexDeleteFunc removes the channels of some devices, both from
// the read-only map and from the recent additions: they are gone from Get,
// Range and Len, the others keep their values, and a removed channel added
// again gets a new value.
func TestChannelIndexDeleteFunc(t *testing.T) {
	var x telemetry.ChannelIndex[*int]
	vals := map[string]*int{}
	// 100 channels merge into the read-only map; the last 10 stay additions.
	for d := range 110 {
		dev := fmt.Sprintf("dev-%03d", d)
		vals[dev] = x.GetOrAdd(dev, "ch", func() *int { return new(int) })
	}
	gone := func(dev string) bool { return dev[len(dev)-1] == '7' } // dev-007, dev-017, … dev-107
	x.DeleteFunc(func(dev, ch string, v *int) bool {
		if vals[dev] != v || ch != "ch" {
			t.Errorf("DeleteFunc offered %s/%s with another value", dev, ch)
		}
		return gone(dev)
	})
	if n := x.Len(); n != 99 {
		t.Errorf("Len after deleting 11 of 110 = %d, want 99", n)
	}
	for dev, v := range vals {
		g, ok := x.Get(dev, "ch")
		switch {
		case gone(dev) && ok:
			t.Errorf("%s still found after DeleteFunc", dev)
		case !gone(dev) && (!ok || g != v):
			t.Errorf("%s: Get = %v, %v, want its value %v", dev, g, ok, v)
		}
	}
	x.Range(func(dev, _ string, _ *int) bool {
		if gone(dev) {
			t.Errorf("Range visits deleted %s", dev)
		}
		return true
	})
	if v := x.GetOrAdd("dev-107", "ch", func() *int { return new(int) }); v == vals["dev-107"] {
		t.Error("a deleted channel added again got its old value back")
	}
}

// BenchmarkPublishFleet publishes polls of four channels from 1000 devices in
// turn (as a fleet does, each poll a fresh device's) to one subscription
// whose Match keeps nothing (the alarm engine's, with no alarms), and
// reports the cost per sample: the latest-value bookkeeping and the
// subscription's match.
func BenchmarkPublishFleet(b *testing.B) {
	h := telemetry.NewHub(nil)
	in := func(*telemetry.Sample) bool { return false }
	sub := h.Subscribe(telemetry.SubscribeOptions{Match: in})
	defer sub.Close()
	batches := make([][]telemetry.Sample, 1000)
	for i := range batches {
		dev := fmt.Sprintf("psu-%04d", i)
		for _, ch := range []string{"voltage", "current", "setpoint", "output"} {
			batches[i] = append(batches[i], telemetry.Sample{Device: dev, Channel: ch, Value: telemetry.Float(1)})
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		h.Publish(batches[i%len(batches)]...)
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*4), "ns/sample")
}
