package telemetry_test

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/switchyard/switchyard/telemetry"
)

// A published sample is encoded once for all its copies, even when subscribers
// race; a hand-built or detached sample is encoded on every call; the caller's
// batch is not touched.
func TestEncodedSharedByCopies(t *testing.T) {
	h := telemetry.NewHub(nil)
	var subs []*telemetry.Subscription
	for range 4 {
		s := h.Subscribe(telemetry.SubscribeOptions{Policy: telemetry.Squash, Capacity: 8})
		defer s.Close()
		subs = append(subs, s)
	}
	batch := []telemetry.Sample{{Device: "a", Channel: "v", Seq: 1}, {Device: "b", Channel: "v", Seq: 1}}
	h.Publish(batch...)

	var calls atomic.Int64
	encode := func(s *telemetry.Sample) []byte { calls.Add(1); return []byte(s.Key()) }
	var wg sync.WaitGroup
	for _, s := range subs {
		got := s.Drain(nil, 0)
		wg.Go(func() {
			for i := range got {
				if b := got[i].Encoded(encode); string(b) != got[i].Key() {
					t.Errorf("Encoded = %q, want %q", b, got[i].Key())
				}
			}
		})
	}
	wg.Wait()
	// Racing subscribers may each encode a fresh sample once; never more.
	if n := calls.Load(); n < 2 || n > 2*int64(len(subs)) {
		t.Fatalf("%d encodings of 2 samples for %d subscribers", n, len(subs))
	}
	calls.Store(0)
	for _, s := range h.Latest(nil) {
		s.Encoded(encode)
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("Latest copies encoded again %d times", n)
	}

	batch[0].Encoded(encode)
	batch[0].Encoded(encode)
	if n := calls.Load(); n != 2 {
		t.Fatalf("the caller's own sample: %d encodings for 2 calls, want no cache", n)
	}

	calls.Store(0)
	h.Publish(telemetry.Sample{Device: "a", Channel: "v", Seq: 2})
	got := subs[0].Drain(nil, 0)
	got[0].Encoded(encode)
	changed := got[0]
	changed.Detach()
	changed.Seq = 99
	if b := changed.Encoded(func(s *telemetry.Sample) []byte { calls.Add(1); return []byte{byte(s.Seq)} }); len(b) != 1 || b[0] != 99 {
		t.Fatalf("detached copy encoded as %v", b)
	}
}
