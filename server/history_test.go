package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/ingest/ingesttest"
	"github.com/switchyard/switchyard/ingest/questdb"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/telemetry"
)

// archiveEnv is a server whose hub is archived by a Writer into a QuestDB table.
type archiveEnv struct {
	hub     *telemetry.Hub
	writer  *ingest.SampleWriter
	history pb.HistoryServiceClient
	tel     pb.TelemetryServiceClient
}

func startArchiveEnv(t *testing.T, addr string) *archiveEnv {
	t.Helper()
	table := ingesttest.Table(t, addr)
	hub := telemetry.NewHub(nil)
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless})
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := questdb.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	w, err := ingest.NewSampleWriter(app, sub, ingest.Options{
		Table: table, SpoolDir: t.TempDir(), Logger: quiet, FlushInterval: 20 * time.Millisecond,
		RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		sub.Close()
	})
	h, err := ingest.NewHistory(addr, table)
	if err != nil {
		t.Fatal(err)
	}
	run := servertest.Start(t, hub, newFakeDevices(), fakeTree{testTree}, server.Options{Archive: h.WithWriter(w), Logger: testLogger(t)})
	conn := run.Dial(t)
	return &archiveEnv{hub: hub, writer: w, history: pb.NewHistoryServiceClient(conn), tel: pb.NewTelemetryServiceClient(conn)}
}

func TestQueryHistory(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	e := startArchiveEnv(t, addr)
	base := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	for i := range 10 {
		e.hub.Publish(telemetry.Sample{Device: "psu", Channel: "v", Seq: uint64(i + 1),
			TimeNs: base.Add(time.Duration(i) * time.Second).UnixNano(), Value: telemetry.Float(float64(i))})
	}
	ctx := testCtx(t)
	var resp *pb.QueryHistoryResponse
	var err error
	eventually.Truef(t, 0, func() string {
		return fmt.Sprintf("QueryHistory: %v, %d samples; want 10", err, len(resp.GetSamples()))
	}, func() bool {
		resp, err = e.history.QueryHistory(ctx, &pb.QueryHistoryRequest{Device: "psu", Channel: "v", StartNs: base.UnixNano()})
		return err == nil && len(resp.GetSamples()) == 10
	})
	if s := resp.GetSamples()[3]; s.GetSeq() != 4 || s.GetValue().GetDoubleValue() != 3 || s.GetQuality() != pb.Quality_QUALITY_GOOD {
		t.Errorf("sample 3 = %v", s)
	}
	resp, err = e.history.QueryHistory(ctx, &pb.QueryHistoryRequest{Device: "psu", Channel: "v", StartNs: base.UnixNano(),
		Aggregate: pb.Aggregate_AGGREGATE_MAX, IntervalMs: 5000})
	if err != nil {
		t.Fatal(err)
	}
	if b := resp.GetBuckets(); len(b) != 2 || b[0].GetValue() != 4 || b[1].GetValue() != 9 || b[1].GetCount() != 5 {
		t.Errorf("max per 5 s = %v", b)
	}
	_, err = e.history.QueryHistory(ctx, &pb.QueryHistoryRequest{Device: "psu", Channel: "v", Aggregate: pb.Aggregate_AGGREGATE_AVG})
	wantCode(t, err, codes.InvalidArgument, "interval")
	_, err = e.history.QueryHistory(ctx, &pb.QueryHistoryRequest{Channel: "v"})
	wantCode(t, err, codes.InvalidArgument, "device")

	noArchive := startEnv(t)
	_, err = pb.NewHistoryServiceClient(noArchive.conn).QueryHistory(ctx, &pb.QueryHistoryRequest{Device: "psu", Channel: "v"})
	wantCode(t, err, codes.Unavailable, "does not archive")
	st, err := noArchive.telemetry.Subscribe(ctx, &pb.SubscribeRequest{SinceNs: 1})
	if err == nil {
		_, err = st.Recv()
	}
	wantCode(t, err, codes.Unavailable, "does not archive")
}

// TestSubscribeSinceAcrossQuestDBRestart publishes steadily, stops a private
// QuestDB, subscribes with since_ns while it is down, starts it again: the stream
// carries every sequence number of every channel exactly once, replayed then live.
func TestSubscribeSinceAcrossQuestDBRestart(t *testing.T) {
	srv := ingesttest.StartServer(t)
	e := startArchiveEnv(t, srv.Addr)
	since := time.Now()
	stop := publishSteadily(e.hub, []string{"dev"}, []string{"a", "b", "c"})
	time.Sleep(time.Second)
	srv.Stop(t)
	time.Sleep(time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	stream, err := e.tel.Subscribe(ctx, &pb.SubscribeRequest{SinceNs: since.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	got := collectSeqs(stream)
	time.Sleep(2 * time.Second) // the stream waits for the archive meanwhile
	srv.Start(t)
	time.Sleep(2 * time.Second) // live samples after the replay
	want := stop()
	got.wait(t, 2*time.Minute, want)
	cancel()
	got.check(t, want)
	t.Logf("every seq of %v exactly once across a QuestDB restart", fmt.Sprint(want))
}

// testLogger logs to the test in verbose runs, nowhere otherwise.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tlog{t}, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

// startLayoutsEnv is startArchiveEnv with the devices of wide archived in the
// wide layout (a writer and table of their own) and the others narrow.
func startLayoutsEnv(t *testing.T, addr string, wide map[string]bool) *archiveEnv {
	t.Helper()
	table := ingesttest.Table(t, addr)
	t.Cleanup(func() {
		_, _, _ = ingest.Query(context.Background(), addr, "DROP TABLE IF EXISTS "+table+ingest.WideSuffix)
	})
	hub := telemetry.NewHub(nil)
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := questdb.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	opts := ingest.Options{Table: table, SpoolDir: t.TempDir(), Logger: quiet, FlushInterval: 20 * time.Millisecond,
		RetryBackoffMin: 50 * time.Millisecond, RetryBackoffMax: time.Second}
	sub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive", Policy: telemetry.Lossless,
		Match: func(s *telemetry.Sample) bool { return !wide[s.Device] }})
	w, err := ingest.NewSampleWriter(app, sub, opts)
	if err != nil {
		t.Fatal(err)
	}
	wsub := hub.Subscribe(telemetry.SubscribeOptions{Name: "archive_wide", Policy: telemetry.Lossless,
		Match: func(s *telemetry.Sample) bool { return wide[s.Device] }})
	opts.Table, opts.SpoolDir = table+ingest.WideSuffix, t.TempDir()
	ww, err := ingest.NewWideWriter(app, wsub, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 2)
	go func() { done <- w.Serve(ctx) }()
	go func() { done <- ww.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		<-done
		sub.Close()
		wsub.Close()
	})
	h, err := ingest.NewHistory(addr, table)
	if err != nil {
		t.Fatal(err)
	}
	run := servertest.Start(t, hub, newFakeDevices(), fakeTree{testTree}, server.Options{Archive: h.WithWriter(w).WithWide(ww), Logger: testLogger(t)})
	conn := run.Dial(t)
	return &archiveEnv{hub: hub, writer: w, history: pb.NewHistoryServiceClient(conn), tel: pb.NewTelemetryServiceClient(conn)}
}

// TestQueryHistoryBothLayouts publishes the same readings of two devices, one
// archived narrow, one wide: QueryHistory answers the same for both, raw and
// downsampled, bad samples and every type of value included.
func TestQueryHistoryBothLayouts(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	e := startLayoutsEnv(t, addr, map[string]bool{"wpsu": true})
	base := time.Date(2026, 3, 4, 5, 6, 0, 0, time.UTC)
	for _, dev := range []string{"npsu", "wpsu"} {
		for i := range 10 {
			ts := base.Add(time.Duration(i) * time.Second).UnixNano()
			batch := []telemetry.Sample{
				{Device: dev, Channel: "v", Seq: uint64(i + 1), TimeNs: ts, Value: telemetry.Float(float64(i))},
				{Device: dev, Channel: "n", Seq: uint64(i + 1), TimeNs: ts, Value: telemetry.Int(int64(10 * i))},
				{Device: dev, Channel: "on", Seq: uint64(i + 1), TimeNs: ts, Value: telemetry.Bool(i%2 == 0)},
				{Device: dev, Channel: "mode", Seq: uint64(i + 1), TimeNs: ts, Value: telemetry.String(fmt.Sprint("m", i%3))},
			}
			if i == 6 {
				for j := range batch {
					batch[j].Value, batch[j].Quality, batch[j].Err = telemetry.Value{}, telemetry.Timeout, "no reply within 1s"
				}
			}
			if i == 8 {
				batch[1].Value, batch[1].Quality, batch[1].Err = telemetry.Value{}, telemetry.ParseError, "not an int"
			}
			e.hub.Publish(batch...)
		}
	}
	ctx := testCtx(t)
	query := func(dev, ch string, agg pb.Aggregate) (*pb.QueryHistoryResponse, error) {
		req := &pb.QueryHistoryRequest{Device: dev, Channel: ch, StartNs: base.UnixNano(), EndNs: base.Add(time.Minute).UnixNano()}
		if agg != pb.Aggregate_AGGREGATE_UNSPECIFIED {
			req.Aggregate, req.IntervalMs = agg, 3000
		}
		return e.history.QueryHistory(ctx, req)
	}
	for _, ch := range []string{"v", "n", "on", "mode"} {
		var narrow, wide *pb.QueryHistoryResponse
		var err error
		eventually.Truef(t, 0, func() string {
			return fmt.Sprintf("%s: %v; %d narrow and %d wide samples, want 10 each", ch, err, len(narrow.GetSamples()), len(wide.GetSamples()))
		}, func() bool {
			if narrow, err = query("npsu", ch, 0); err != nil {
				return false
			}
			wide, err = query("wpsu", ch, 0)
			return err == nil && len(narrow.GetSamples()) == 10 && len(wide.GetSamples()) == 10
		})
		for i, n := range narrow.GetSamples() {
			w := wide.GetSamples()[i]
			w.Device = n.GetDevice()
			if n.String() != w.String() {
				t.Errorf("%s sample %d: narrow %v, wide %v", ch, i, n, w)
			}
		}
		for _, agg := range []pb.Aggregate{pb.Aggregate_AGGREGATE_AVG, pb.Aggregate_AGGREGATE_MIN, pb.Aggregate_AGGREGATE_MAX,
			pb.Aggregate_AGGREGATE_FIRST, pb.Aggregate_AGGREGATE_LAST, pb.Aggregate_AGGREGATE_COUNT} {
			nb, err := query("npsu", ch, agg)
			if err != nil {
				t.Fatal(err)
			}
			wb, err := query("wpsu", ch, agg)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(nb.GetBuckets()) != fmt.Sprint(wb.GetBuckets()) {
				t.Errorf("%s %v: narrow %v, wide %v", ch, agg, nb.GetBuckets(), wb.GetBuckets())
			}
			if ch == "v" && agg == pb.Aggregate_AGGREGATE_COUNT && (len(wb.GetBuckets()) != 4 || wb.GetBuckets()[2].GetCount() != 2) {
				t.Errorf("v: count per 3 s = %v, want 4 buckets, the third of 2 (the 7th reading timed out)", wb.GetBuckets())
			}
		}
	}
}

// TestSubscribeSinceBothLayouts publishes steadily to a narrow and a wide
// device, then subscribes with since_ns: every seq of every channel of both
// arrives exactly once, replayed from both tables and then live.
func TestSubscribeSinceBothLayouts(t *testing.T) {
	addr := ingesttest.QuestDB(t)
	e := startLayoutsEnv(t, addr, map[string]bool{"w": true})
	since := time.Now()
	stop := publishSteadily(e.hub, []string{"n", "w"}, []string{"a", "b", "c"})
	time.Sleep(1500 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stream, err := e.tel.Subscribe(ctx, &pb.SubscribeRequest{SinceNs: since.UnixNano()})
	if err != nil {
		t.Fatal(err)
	}
	got := collectSeqs(stream)
	time.Sleep(time.Second) // live samples after the replay
	want := stop()
	got.wait(t, 0, want)
	cancel()
	got.check(t, want)
}

// publishSteadily publishes a sample of every channel of every device, one
// batch every 5 ms, each channel numbered from seq 1, until stop is called;
// stop returns how many it published of each "device/channel".
func publishSteadily(hub *telemetry.Hub, devices, channels []string) (stop func() map[string]uint64) {
	published := map[string]uint64{}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			ts := time.Now().UnixNano()
			for _, dev := range devices {
				batch := make([]telemetry.Sample, 0, len(channels))
				for _, ch := range channels {
					k := dev + "/" + ch
					published[k]++
					batch = append(batch, telemetry.Sample{Device: dev, Channel: ch, Seq: published[k], TimeNs: ts,
						Value: telemetry.Float(float64(published[k]))})
				}
				hub.Publish(batch...)
			}
		}
	})
	return func() map[string]uint64 {
		close(done)
		wg.Wait()
		return published
	}
}

// seqs counts, in the background, how often each seq of each "device/channel"
// arrives on a Subscribe stream.
type seqs struct {
	mu   sync.Mutex
	got  map[string]map[uint64]int
	err  error // the stream's end, once it ended
	done chan struct{}
}

func collectSeqs(stream grpc.ServerStreamingClient[pb.SubscribeResponse]) *seqs {
	c := &seqs{got: map[string]map[uint64]int{}, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		for {
			resp, err := stream.Recv()
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			for _, s := range resp.GetSamples() {
				k := s.GetDevice() + "/" + s.GetChannel()
				if c.got[k] == nil {
					c.got[k] = map[uint64]int{}
				}
				c.got[k][s.GetSeq()]++
			}
			c.mu.Unlock()
		}
	}()
	return c
}

// wait waits until every seq of want (published per key) arrived at least
// once; a stream that ends first fails the test at once.
func (c *seqs) wait(t *testing.T, timeout time.Duration, want map[string]uint64) {
	t.Helper()
	eventually.Truef(t, timeout, func() string {
		c.mu.Lock()
		defer c.mu.Unlock()
		var lines []string
		for k, n := range want {
			var missing []uint64
			for seq := uint64(1); seq <= n && len(missing) < 10; seq++ {
				if c.got[k][seq] == 0 {
					missing = append(missing, seq)
				}
			}
			if len(missing) > 0 {
				lines = append(lines, fmt.Sprintf("%s: %d of %d seqs, first missing %v", k, len(c.got[k]), n, missing))
			}
		}
		return fmt.Sprintf("stream did not deliver every published sample (stream end: %v): %s", c.err, strings.Join(lines, "; "))
	}, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.err != nil {
			t.Fatalf("stream ended: %v", c.err)
		}
		for k, n := range want {
			if len(c.got[k]) < int(n) {
				return false
			}
		}
		return true
	})
}

// check waits for the stream to end (its context cancelled) and fails unless
// every seq of want arrived exactly once.
func (c *seqs) check(t *testing.T, want map[string]uint64) {
	t.Helper()
	<-c.done
	everySeqOnce(t, c.got, want)
}

// everySeqOnce fails unless got (times each seq was delivered, by channel)
// holds every seq 1..want[channel] of every channel exactly once.
func everySeqOnce(t *testing.T, got map[string]map[uint64]int, want map[string]uint64) {
	t.Helper()
	for ch, n := range want {
		for seq := uint64(1); seq <= n; seq++ {
			if c := got[ch][seq]; c != 1 {
				t.Fatalf("%s seq %d delivered %d times (published 1..%d)", ch, seq, c, n)
			}
		}
		if len(got[ch]) != int(n) {
			t.Fatalf("%s: %d distinct seqs, published %d", ch, len(got[ch]), n)
		}
	}
}
