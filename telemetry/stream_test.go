package telemetry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/switchyard/switchyard/backoff"
	"github.com/switchyard/switchyard/telemetry"
)

// state is a test device state.
type state struct{ name, state string }

// states is a device state watch the test drives.
type states struct {
	ready   chan struct{}
	pending []state
	closed  bool
}

func newStates() *states { return &states{ready: make(chan struct{}, 1)} }

func (s *states) Ready() <-chan struct{} { return s.ready }
func (s *states) Take() []state {
	out := s.pending
	s.pending = nil
	return out
}
func (s *states) Close() { s.closed = true }
func (s *states) publish(st state) {
	s.pending = append(s.pending, st)
	select {
	case s.ready <- struct{}{}:
	default:
	}
}

// next returns the stream's next batch and how long it took, in the bubble's time.
func next(t *testing.T, st *telemetry.Stream[state]) (telemetry.Batch[state], time.Duration) {
	t.Helper()
	start := time.Now()
	b, err := st.Next(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return b, time.Since(start)
}

func show(b telemetry.Batch[state]) string {
	var parts []string
	if b.Initial {
		parts = append(parts, "initial")
	}
	if b.Heartbeat {
		parts = append(parts, "heartbeat")
	}
	for _, s := range b.Samples {
		parts = append(parts, fmt.Sprintf("%s/%s#%d", s.Device, s.Channel, s.Seq))
	}
	for _, s := range b.States {
		parts = append(parts, s.name+"="+s.state)
	}
	return strings.Join(parts, " ")
}

func smp(dev, ch string, seq uint64, v float64) telemetry.Sample {
	return telemetry.Sample{Device: dev, Channel: ch, Seq: seq, TimeNs: time.Now().UnixNano(), Value: telemetry.Float(v)}
}

func TestStreamBatching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Window: 100 * time.Millisecond, MaxBatch: 100})
		defer st.Close()
		// A few samples: one batch when the window after the first has passed.
		go func() {
			hub.Publish(smp("a", "v", 1, 0))
			time.Sleep(30 * time.Millisecond)
			hub.Publish(smp("a", "v", 2, 0), smp("b", "v", 1, 0))
		}()
		b, took := next(t, st)
		if show(b) != "a/v#1 a/v#2 b/v#1" || took != 100*time.Millisecond {
			t.Fatalf("first batch %q after %v, want a/v#1 a/v#2 b/v#1 after the 100ms window", show(b), took)
		}
		// A burst larger than MaxBatch: full batches at once, the rest after the window.
		burst := make([]telemetry.Sample, 250)
		for i := range burst {
			burst[i] = smp("c", "v", uint64(i+1), 0)
		}
		hub.Publish(burst...)
		for _, want := range []struct {
			n    int
			took time.Duration
		}{{100, 0}, {100, 0}, {50, 100 * time.Millisecond}} {
			b, took := next(t, st)
			if len(b.Samples) != want.n || took != want.took {
				t.Fatalf("burst: batch of %d after %v, want %d after %v", len(b.Samples), took, want.n, want.took)
			}
		}
	})
}

func TestStreamHeartbeat(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Heartbeat: time.Second, Window: 50 * time.Millisecond})
		defer st.Close()
		b, took := next(t, st)
		if !b.Heartbeat || len(b.Samples) != 0 || took != time.Second {
			t.Fatalf("idle stream: %q after %v, want a heartbeat after 1s", show(b), took)
		}
		// Something sent resets the heartbeat's clock.
		go func() {
			time.Sleep(400 * time.Millisecond)
			hub.Publish(smp("a", "v", 1, 0))
		}()
		b, took = next(t, st)
		if show(b) != "a/v#1" || took != 450*time.Millisecond {
			t.Fatalf("%q after %v, want the sample after 400+50ms", show(b), took)
		}
		b, took = next(t, st)
		if !b.Heartbeat || took != time.Second {
			t.Fatalf("%q after %v, want a heartbeat 1s after the last batch", show(b), took)
		}
	})
}

// TestStreamFilters: the deadband drops small changes; the rate cap holds a
// sample that comes too soon and delivers the latest one when the channel's
// interval has passed (its due time), so the channel ends on its latest value.
func TestStreamFilters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{
			Window: 10 * time.Millisecond, Filter: telemetry.FilterOptions{DeadbandAbs: 1, MaxRate: 5},
		})
		defer st.Close()
		hub.Publish(smp("m", "v", 1, 0), smp("m", "v", 2, 0.5), smp("m", "v", 3, 5), smp("m", "v", 4, 7), smp("m", "v", 5, 7.5))
		b, took := next(t, st)
		if show(b) != "m/v#1" || took != 10*time.Millisecond {
			t.Fatalf("%q after %v, want m/v#1 after the window", show(b), took)
		}
		// #2 is within the deadband; #3 passed it but came too soon: held, and
		// replaced by #4 and #5 (a held sample is replaced by any later one), due
		// 200ms after #1 was taken.
		b, took = next(t, st)
		if show(b) != "m/v#5" || took != 200*time.Millisecond {
			t.Fatalf("%q after %v, want the latest held sample m/v#5 when due: 200ms after the first, less the window already passed, plus a window", show(b), took)
		}
	})
}

// TestStreamInterleavesStates: initial values, then the current device states,
// then live; a state change comes after every sample published before it,
// without waiting for the window.
func TestStreamInterleavesStates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		hub.Publish(smp("psu2", "v", 3, 0), smp("psu1", "v", 7, 0), smp("env1", "p", 1, 0))
		watch := newStates()
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{
			Match:   func(s *telemetry.Sample) bool { return strings.HasPrefix(s.Device, "psu") },
			Initial: true, Window: time.Second,
			States: telemetry.StateFeed[state]{
				Watch:   watch,
				Current: func() []state { return []state{{"psu2", "connected"}, {"env1", "connected"}, {"psu1", "connected"}} },
				Name:    func(s *state) string { return s.name },
				Match:   func(name string) bool { return strings.HasPrefix(name, "psu") },
			},
		})
		for _, want := range []string{"initial psu1/v#7 psu2/v#3", "psu1=connected psu2=connected"} {
			if b, took := next(t, st); show(b) != want || took != 0 {
				t.Fatalf("%q after %v, want %q at once", show(b), took, want)
			}
		}
		hub.Publish(smp("psu1", "v", 8, 0))
		watch.publish(state{"psu1", "backoff"})
		watch.publish(state{"env1", "backoff"})
		for _, want := range []string{"psu1/v#8", "psu1=backoff"} {
			if b, took := next(t, st); show(b) != want || took != 0 {
				t.Fatalf("%q after %v, want %q at once", show(b), took, want)
			}
		}
		st.Close()
		if !watch.closed {
			t.Fatal("Close left the state watch open")
		}
	})
}

// archive is a fake Archive of samples in time order.
type archive struct {
	samples  []telemetry.Sample
	settled  bool
	failures []error // returned by the next calls of Since, in order
	calls    int
}

func (a *archive) Settle(context.Context) error { a.settled = true; return nil }
func (a *archive) Since(_ context.Context, from int64, limit int) ([]telemetry.Sample, error) {
	a.calls++
	if len(a.failures) > 0 {
		err := a.failures[0]
		a.failures = a.failures[1:]
		return nil, err
	}
	var out []telemetry.Sample
	for _, s := range a.samples {
		if s.TimeNs/1000 >= from/1000 && len(out) < limit {
			out = append(out, s)
		}
	}
	return out, nil
}

// TestStreamReplayJoin: a stream with Since sends the archive, then goes live
// with no gap and no repeat: live samples the archive already held are
// skipped, per channel, at microsecond precision. A failure that passes is
// retried with a backoff; any other ends the stream.
func TestStreamReplayJoin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now().UnixNano()
		at := func(s telemetry.Sample, us int64) telemetry.Sample { s.TimeNs = base + us*1000; return s }
		arch := &archive{
			samples: []telemetry.Sample{
				at(smp("a", "v", 1, 0), 1), at(smp("b", "v", 1, 0), 2), at(smp("a", "v", 2, 0), 3), at(smp("a", "v", 3, 0), 4),
			},
			failures: []error{backoff.Recoverable(errors.New("connection refused")), backoff.Recoverable(errors.New("503"))},
		}
		hub := telemetry.NewHub(nil)
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Since: base, Archive: arch, Initial: true, MaxBatch: 2, Window: time.Millisecond})
		defer st.Close()
		// Published after the subscription, before the replay read the archive:
		// a/v#3 is in both (skipped live), b/v#2 and a/v#4 only live.
		hub.Publish(at(smp("a", "v", 3, 0), 4), at(smp("b", "v", 2, 0), 5), at(smp("a", "v", 4, 0), 6))
		b, took := next(t, st)
		if show(b) != "a/v#1 b/v#1" || !arch.settled || arch.calls != 3 || took < 240*time.Millisecond || took > 300*time.Millisecond {
			t.Fatalf("first replay batch %q after %v (%d reads, settled %v); want a/v#1 b/v#1 after two retries (100+200ms, jittered)",
				show(b), took, arch.calls, arch.settled)
		}
		var got []string
		for len(got) < 2 {
			b, _ := next(t, st)
			if b.Initial {
				t.Fatal("a replaying stream sent initial values: the replay stands in for them")
			}
			got = append(got, show(b))
		}
		if want := "a/v#2 a/v#3|b/v#2 a/v#4"; strings.Join(got[:2], "|") != want {
			t.Fatalf("after the first batch: %q, want %q (a/v#3 once)", got, want)
		}

		// A permanent failure ends the stream at once.
		bad := errors.New("table does not exist in this form")
		st2 := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Since: base, Archive: &archive{failures: []error{bad}}})
		defer st2.Close()
		if _, err := st2.Next(t.Context()); !errors.Is(err, bad) {
			t.Fatalf("replay with a permanent failure: %v, want it", err)
		}
	})
}

// TestReadArchivePages: ReadArchive gives each archived sample in the range
// once, across a page boundary that falls inside a microsecond, and stops at
// the range's end.
func TestReadArchivePages(t *testing.T) {
	base := time.Now().UnixNano() / 1000 * 1000
	arch := &archive{}
	for i := range 12000 { // three channels a microsecond: 4000 µs
		arch.samples = append(arch.samples, telemetry.Sample{Device: "d", Channel: string(rune('a' + i%3)), Seq: uint64(i/3 + 1),
			TimeNs: base + int64(i/3)*1000})
	}
	for _, tc := range []struct {
		to   int64
		want int
	}{{0, 12000}, {base + 3500*1000, 3500 * 3}} {
		seen := map[string]int{}
		pages := 0
		err := telemetry.ReadArchive(t.Context(), arch, base, tc.to, nil, func(ss []telemetry.Sample) error {
			pages++
			for _, s := range ss {
				seen[fmt.Sprintf("%s#%d", s.Channel, s.Seq)]++
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for k, c := range seen {
			if c != 1 {
				t.Errorf("to %d: %s given %d times", tc.to, k, c)
			}
			n += c
		}
		if n != tc.want || pages != 2 {
			t.Errorf("to %d: %d samples in %d pages, want %d in 2", tc.to, n, pages, tc.want)
		}
	}
}

// replayer is a fake Replayer: it gives its samples in one call, and notes
// what it was asked.
type replayer struct {
	samples []telemetry.Sample
	devices []string
	from    int64
	err     error
}

func (r *replayer) Replay(_ context.Context, devices []string, from int64, fn func([]telemetry.Sample) error) error {
	r.devices, r.from = devices, from
	if r.err != nil {
		return r.err
	}
	return fn(r.samples)
}

// TestStreamReplayerJoinBySeq: a stream with Since and a Replayer sends the
// replay (only what Match selects, the replayer told the devices), then goes
// live joined by seq: a live sample the replay gave is skipped, a channel's
// next seq is not, and neither is a channel whose numbering started again
// (its times are newer), whatever the clock's precision.
func TestStreamReplayerJoinBySeq(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now().UnixNano()
		at := func(s telemetry.Sample, ns int64) telemetry.Sample { s.TimeNs = base + ns; return s }
		rp := &replayer{samples: []telemetry.Sample{
			at(smp("a", "v", 7, 0), 1), at(smp("a", "skip", 1, 0), 1), at(smp("b", "v", 3, 0), 2), at(smp("a", "v", 8, 0), 3),
		}}
		hub := telemetry.NewHub(nil)
		match := func(s *telemetry.Sample) bool { return s.Channel != "skip" }
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Since: base, Replay: rp, Devices: []string{"a", "b"},
			Match: match, Initial: true, Window: time.Millisecond})
		defer st.Close()
		// Published after the subscription, before the replay ended: a/v#8
		// was replayed too (skipped); a/v#9 is new, 4ns after #8; b/v#1 comes
		// from a numbering that started again, later than b/v#3.
		hub.Publish(at(smp("a", "v", 8, 0), 3), at(smp("a", "v", 9, 0), 4), at(smp("b", "v", 1, 0), 10))
		var got []string
		for len(got) < 2 {
			b, _ := next(t, st)
			if b.Initial {
				t.Fatal("a replaying stream sent initial values: the replay stands in for them")
			}
			got = append(got, show(b))
		}
		if want := "a/v#7 b/v#3 a/v#8|a/v#9 b/v#1"; strings.Join(got, "|") != want {
			t.Fatalf("replay then live: %q, want %q (a/v#8 once)", got, want)
		}
		if fmt.Sprint(rp.devices) != "[a b]" || rp.from != base {
			t.Errorf("replayer asked for devices %v from %d, want [a b] from %d", rp.devices, rp.from, base)
		}
		// The Replayer's error ends the stream.
		bad := errors.New("stream gone")
		st2 := telemetry.NewStream(hub, telemetry.StreamOptions[state]{Since: base, Replay: &replayer{err: bad}})
		defer st2.Close()
		if _, err := st2.Next(t.Context()); !errors.Is(err, bad) {
			t.Fatalf("replay failing: %v, want its error", err)
		}
	})
}

// TestStreamStall: a stream nobody reads, whose queue stays full for
// StallAfter, ends with ErrStalled and leaves the hub; its limits bound the
// queue in bytes meanwhile.
func TestStreamStall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		one := telemetry.SampleSize(&telemetry.Sample{Device: "d", Channel: "c000"})
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{MaxBytes: 100 * one, StallAfter: time.Minute})
		defer st.Close()
		for i := range 200 { // 200 channels, one sample a second: full from 100 s on
			hub.Publish(telemetry.Sample{Device: "d", Channel: fmt.Sprintf("c%03d", i), Seq: 1})
			time.Sleep(time.Second)
		}
		if _, err := st.Next(t.Context()); !errors.Is(err, telemetry.ErrStalled) {
			t.Fatalf("Next after the queue stayed full and unread for 100 s (StallAfter 60 s) = %v, want ErrStalled", err)
		}
	})
}

// TestStreamBytes: what a stream holds is counted (Bytes: its queue and the
// samples it took out of it until the batch they went in was sent), and
// bounded by MaxBytes: it takes no more than MaxBytes from its queue into a
// batch, so a batch of large samples is cut short of MaxBatch.
func TestStreamBytes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hub := telemetry.NewHub(nil)
		big := func(ch int, seq uint64) telemetry.Sample {
			return telemetry.Sample{Device: "d", Channel: fmt.Sprintf("c%03d", ch), Seq: seq, Value: telemetry.String(strings.Repeat("x", 1000))}
		}
		s0 := big(0, 1)
		one := telemetry.SampleSize(&s0)
		stalls := 0
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{
			MaxBytes: 10 * one, MaxBatch: 1000, Window: time.Hour, StallAfter: time.Minute, OnStall: func() { stalls++ },
		})
		defer st.Close()
		publish := func(seq uint64, n int) {
			for ch := range n {
				hub.Publish(big(ch, seq))
			}
		}
		publish(1, 25) // the queue keeps the last 10
		if got := st.Bytes(); got != 10*one {
			t.Fatalf("Bytes with a full queue = %d, want %d (10 samples)", got, 10*one)
		}
		b, _ := next(t, st)
		if len(b.Samples) != 10 || b.Samples[0].Channel != "c015" {
			t.Fatalf("first batch %q, want the 10 queued, c015 on", show(b))
		}
		// The batch is held until the next Next (its caller sends it), and
		// the queue fills again meanwhile.
		publish(2, 4)
		if got := st.Bytes(); got != 14*one {
			t.Fatalf("Bytes while sending a batch of 10 with 4 queued = %d, want %d", got, 14*one)
		}
		publish(3, 6)
		b, _ = next(t, st)
		if len(b.Samples) != 10 {
			t.Fatalf("second batch: %q, want 10 samples (MaxBytes)", show(b))
		}
		if got := st.Bytes(); got != 10*one {
			t.Fatalf("Bytes after the first batch was sent = %d, want %d (the second batch)", got, 10*one)
		}
		// A batch never takes more than MaxBytes out of the queue: with 4
		// waiting for the window, 6 more of the 10 queued complete it.
		done := make(chan telemetry.Batch[state])
		go func() { b, _ := next(t, st); done <- b }()
		publish(4, 4)
		synctest.Wait() // the 4 wait in the batch being made
		for ch := range 10 {
			hub.Publish(big(100+ch, 5))
		}
		b = <-done
		if want := "d/c000#4 d/c001#4 d/c002#4 d/c003#4 d/c100#5 d/c101#5 d/c102#5 d/c103#5 d/c104#5 d/c105#5"; show(b) != want {
			t.Fatalf("third batch: %q, want %q (MaxBytes)", show(b), want)
		}
		if got := st.Bytes(); got != 14*one {
			t.Fatalf("Bytes = %d with a batch of 10 sent and 4 queued, want %d", got, 14*one)
		}
		// The 4 left are in the queue, under its bound: the stream holds
		// twice MaxBytes at most (a full queue, a batch of MaxBytes).
		for ch := range 10 {
			hub.Publish(big(200+ch, 6))
		}
		if got := st.Bytes(); got != 20*one {
			t.Fatalf("Bytes = %d with a batch of 10 sent and a full queue, want %d", got, 20*one)
		}
		// Unread for StallAfter with its queue full: OnStall once.
		for range 70 {
			publish(7, 10)
			time.Sleep(time.Second)
		}
		if stalls != 1 {
			t.Fatalf("OnStall called %d times, want once", stalls)
		}
	})
}

// TestStreamReplaysPageByPage: a replay reads the archive one page at a time,
// each once the batches of the page before were returned, so the stream holds
// one page however long the history; the device states follow the last page.
func TestStreamReplaysPageByPage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		base := time.Now().UnixNano()
		arch := &archive{}
		const n = 25000 // two full pages of 10,000 and a last one
		for i := range n {
			arch.samples = append(arch.samples, telemetry.Sample{Device: "a", Channel: "v", Seq: uint64(i + 1), TimeNs: base + int64(i+1)*1000})
		}
		hub := telemetry.NewHub(nil)
		watch := newStates()
		st := telemetry.NewStream(hub, telemetry.StreamOptions[state]{
			Since: base, Archive: arch, MaxBatch: 1000,
			States: telemetry.StateFeed[state]{
				Watch: watch, Current: func() []state { return []state{{"a", "connected"}} },
				Name: func(s *state) string { return s.name },
			},
		})
		defer st.Close()
		one := telemetry.SampleSize(&arch.samples[0])
		seq := uint64(0)
		for seq < n {
			b, _ := next(t, st)
			if len(b.States) > 0 {
				t.Fatalf("device states at seq %d, before the replay's end", seq)
			}
			for _, s := range b.Samples {
				if seq++; s.Seq != seq {
					t.Fatalf("replayed seq %d, want %d", s.Seq, seq)
				}
			}
			if pages := int(seq-1)/10000 + 1; arch.calls != pages {
				t.Fatalf("after seq %d the archive was read %d times, want %d (one page at a time)", seq, arch.calls, pages)
			}
			if got := st.Bytes(); got > 10000*one {
				t.Fatalf("Bytes = %d during the replay, more than a page (%d)", got, 10000*one)
			}
		}
		if b, _ := next(t, st); show(b) != "a=connected" {
			t.Fatalf("after the replay: %q, want the device states", show(b))
		}
	})
}
