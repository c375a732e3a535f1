package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/switchyard/switchyard/cluster/clustertest"
	"github.com/switchyard/switchyard/telemetry"
)

// historyFake is an archive of samples, asked for time ranges.
type historyFake struct {
	samples []telemetry.Sample
	asked   [][2]int64
	during  func() // runs during the first Replay
}

func (h *historyFake) Replay(_ context.Context, devices []string, fromNs, toNs int64, fn func([]telemetry.Sample) error) error {
	h.asked = append(h.asked, [2]int64{fromNs, toNs})
	if h.during != nil {
		h.during()
		h.during = nil
	}
	var out []telemetry.Sample
	for _, s := range h.samples {
		if s.TimeNs >= fromNs && s.TimeNs < toNs {
			out = append(out, s)
		}
	}
	return fn(out)
}

// A replay from before the stream's first message starts in the archive and
// goes on from the stream up to its end, then returns: each seq once (the
// stream's first batch overlaps the archive), the archive's marked as such,
// and the archive asked only for what the stream may not hold.
func TestReplayFallsBackToTheArchive(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	old := time.Now().Add(-time.Hour)
	var all []telemetry.Sample
	for seq := uint64(1); seq <= 8; seq++ {
		all = append(all, telemetry.Sample{Device: "d", Channel: "x", Seq: seq,
			TimeNs: old.Add(time.Duration(seq) * time.Second).UnixNano(), Value: telemetry.Float(float64(seq))})
	}
	hist := &historyFake{samples: all[:5]} // seq 1..5 archived
	// The stream holds seq 4..8, in two batches; another device's batch
	// between them is not asked for.
	publish := func(dev string, ss []telemetry.Sample) {
		b := Batch{Device: dev, Owner: "a", Epoch: 1, Samples: ss}
		if _, err := c.JS.Publish(context.Background(), c.Names.SampleSubject(dev), b.Encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	publish("d", all[3:5])
	publish("other", []telemetry.Sample{{Device: "other", Channel: "x", Seq: 1, TimeNs: old.UnixNano()}})
	publish("d", all[5:])
	info, err := c.stream.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	err = NewReader(c, hist).Replay(context.Background(), []string{"d"}, old.UnixNano(), func(u Update) error {
		for _, s := range u.Samples {
			got = append(got, fmt.Sprintf("%d%s", s.Seq, map[bool]string{true: "a", false: "s"}[u.Archived]))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1a 2a 3a 4a 5a 6s 7s 8s]" {
		t.Errorf("replay %v, want 1..5 from the archive, then 6..8 from the stream", got)
	}
	if len(hist.asked) != 1 || hist.asked[0][0] != old.UnixNano() || hist.asked[0][1] != info.State.FirstTime.Add(replaySkew).UnixNano() {
		t.Errorf("archive asked for %v, want one range from the replay's start to the stream's first message (plus %v)", hist.asked, replaySkew)
	}

	// From a time the stream holds: the archive is not asked, and samples
	// older than the start are left out.
	hist.asked = nil
	got = nil
	err = NewReader(c, hist).Replay(context.Background(), []string{"d"}, all[6].TimeNs, func(u Update) error {
		for _, s := range u.Samples {
			got = append(got, fmt.Sprint(s.Seq))
		}
		return nil
	})
	if err != nil || fmt.Sprint(got) != "[7 8]" {
		t.Errorf("replay from seq 7's time: %v, %v; want [7 8]", got, err)
	}
	// A device the stream holds nothing of: the replay ends at once.
	if err := NewReader(c, nil).Replay(context.Background(), []string{"none"}, old.UnixNano(), func(u Update) error {
		t.Errorf("replay of a device without samples gave %+v", u)
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// The stream drops its oldest messages (retention) while the archive is
// read: the archive is asked again for what the stream no longer holds, so
// nothing falls between the two.
func TestReplayArchiveCatchesUpWithTheStream(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	var all []telemetry.Sample
	var seqs []uint64 // the stream sequence of each batch
	for b := range 3 {
		var ss []telemetry.Sample
		for i := range 3 {
			ss = append(ss, telemetry.Sample{Device: "d", Channel: "x", Seq: uint64(3*b + i + 1), TimeNs: time.Now().UnixNano()})
		}
		all = append(all, ss...)
		time.Sleep(5 * time.Millisecond) // stored after its samples were taken
		ack, err := c.JS.Publish(context.Background(), c.Names.SampleSubject("d"), (&Batch{Device: "d", Owner: "a", Epoch: 1, Samples: ss}).Encode(nil))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, ack.Sequence)
		time.Sleep(5 * time.Millisecond)
	}
	// The first two batches expire while the archive is read.
	hist := &historyFake{samples: all, during: func() {
		for _, seq := range seqs[:2] {
			if err := c.stream.DeleteMsg(context.Background(), seq); err != nil {
				t.Error(err)
			}
		}
	}}
	r := NewReader(c, hist)
	r.skew = 0 // exact store times: the test's samples are taken milliseconds apart
	var got []uint64
	if err := r.Replay(context.Background(), nil, all[0].TimeNs, func(u Update) error {
		for _, s := range u.Samples {
			got = append(got, s.Seq)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1 2 3 4 5 6 7 8 9]" || len(hist.asked) != 2 {
		t.Errorf("replay gave %v after asking the archive for %d ranges; want 1..9, the archive asked again for 4..6", got, len(hist.asked))
	}
}

// seenSamples tells a repeat (the archive and the stream overlap) from a
// channel whose numbering started again: a repeat is neither newer by seq nor
// by time.
func TestReplayRepeatsAndRenumbering(t *testing.T) {
	seen := seenSamples{}
	s := func(seq uint64, us int64) telemetry.Sample {
		return telemetry.Sample{Device: "d", Channel: "x", Seq: seq, TimeNs: us*1000 + 123}
	}
	var got []string
	for _, batch := range [][]telemetry.Sample{
		{s(1, 10), s(2, 20), s(3, 30)}, // from the archive
		{s(2, 20), s(3, 30), s(4, 40)}, // the stream's first batch overlaps
		{s(1, 50), s(2, 60)},           // numbering started again (a damaged last batch)
		{s(2, 60)},                     // and that repeated
		{s(9, 5)},                      // older than the start
	} {
		for _, k := range seen.fresh(batch, 10_000) {
			got = append(got, fmt.Sprintf("%d@%d", k.Seq, k.TimeNs/1000))
		}
	}
	if want := "[1@10 2@20 3@30 4@40 1@50 2@60]"; fmt.Sprint(got) != want {
		t.Errorf("fresh gave %v, want %s", got, want)
	}
}
