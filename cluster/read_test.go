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
}

func (h *historyFake) Replay(_ context.Context, devices []string, fromNs, toNs int64, fn func([]telemetry.Sample) error) error {
	h.asked = append(h.asked, [2]int64{fromNs, toNs})
	var out []telemetry.Sample
	for _, s := range h.samples {
		if s.TimeNs >= fromNs && s.TimeNs < toNs {
			out = append(out, s)
		}
	}
	return fn(out)
}

// A replay from before the stream's first message starts in the archive and
// goes on from the stream: each seq once, the archive's marked as such, and
// the archive asked only for what the stream does not hold.
func TestSubscribeFallsBackToTheArchive(t *testing.T) {
	srv := clustertest.StartServer(t)
	c := openTest(t, srv.URL(), "a")
	old := time.Now().Add(-time.Hour)
	hist := &historyFake{}
	for seq := uint64(1); seq <= 5; seq++ {
		hist.samples = append(hist.samples, telemetry.Sample{Device: "d", Channel: "x", Seq: seq,
			TimeNs: old.Add(time.Duration(seq) * time.Second).UnixNano(), Value: telemetry.Float(float64(seq))})
	}
	// The stream holds seq 4..8: its first batch overlaps the archive.
	var stream []telemetry.Sample
	for seq := uint64(4); seq <= 8; seq++ {
		stream = append(stream, telemetry.Sample{Device: "d", Channel: "x", Seq: seq, TimeNs: time.Now().UnixNano(), Value: telemetry.Float(float64(seq))})
	}
	for _, part := range [][]telemetry.Sample{stream[:2], stream[2:]} {
		b := Batch{Device: "d", Owner: "a", Epoch: 1, Samples: part}
		if _, err := c.JS.Publish(context.Background(), c.Names.SampleSubject("d"), b.Encode(nil)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	err := NewReader(c, hist).Subscribe(ctx, []string{"d"}, old.UnixNano(), func(u Update) error {
		for _, s := range u.Samples {
			got = append(got, fmt.Sprintf("%d%s", s.Seq, map[bool]string{true: "a", false: "s"}[u.Archived]))
		}
		if len(got) >= 8 {
			cancel()
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "[1a 2a 3a 4a 5a 6s 7s 8s]" {
		t.Errorf("replay %v, want 1..5 from the archive, then 6..8 from the stream", got)
	}
	if len(hist.asked) != 1 || hist.asked[0][0] != old.UnixNano() || hist.asked[0][1] > time.Now().UnixNano() {
		t.Errorf("archive asked for %v, want one range from the replay's start to the stream's first message", hist.asked)
	}
}
