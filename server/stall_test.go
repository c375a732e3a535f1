package server_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/internal/metrictest"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/server/servertest"
	"github.com/switchyard/switchyard/telemetry"
)

// TestStalledStreamsStayWithinBudget: 500 Subscribe streams on one HTTP/2
// connection whose client never reads, while a publisher pushes load. What the
// server holds for them, by its own accounting (switchyard_api_stream_held_bytes:
// the queues, the batches taken out of them, the responses being sent), stays
// within 500 times the per-stream bound the limits give (3 ×
// subscriber_queue_bytes and two samples), and once their queues stayed full
// for the stall limit every stream is ended (switchyard_api_streams_stalled_total
// 500, none open, nothing held) although its handler was stuck in a send. On
// the gRPC port the client, once it reads again, gets the data it had been sent
// and then RESOURCE_EXHAUSTED / STREAM_STALLED; on the HTTP port (gRPC over h2c
// to connect-go) the stream is reset (no status can pass the unread data there).
func TestStalledStreamsStayWithinBudget(t *testing.T) {
	t.Run("grpc", func(t *testing.T) { testStalledStreams(t, "grpc", 500) })
	t.Run("http", func(t *testing.T) { testStalledStreams(t, "http", 500) })
}

func testStalledStreams(t *testing.T, port string, streams int) {
	const (
		queueBytes = 8 << 10
		channels   = 20
	)
	reg := prometheus.NewRegistry()
	hub := telemetry.NewHub(reg)
	run := servertest.Start(t, hub, newFakeDevices(), fakeTree{testTree}, server.Options{
		Gatherer: reg, Registerer: reg,
		Limits: server.Limits{
			StreamsPerConnection: streams, StreamsPerIdentity: streams, Streams: streams,
			SubscriberQueueBytes: queueBytes, StreamStallTimeout: time.Second,
		},
	})
	addr := run.GRPCAddr
	if port == "http" {
		addr = strings.TrimPrefix(run.HTTPURL, "http://") // gRPC over h2c, served by connect-go
	}
	// A client whose streams never read: grpc-go's static windows (64 KiB a
	// stream) rather than its dynamic ones, which grow with the traffic.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	client := pb.NewTelemetryServiceClient(conn)
	var subs []grpc.ServerStreamingClient[pb.SubscribeResponse]
	for i := range streams {
		s, err := client.Subscribe(ctx, &pb.SubscribeRequest{Selector: &pb.Selector{Devices: []string{"load"}}})
		if err == nil {
			_, err = s.Header() // the stream's hub subscription exists
		}
		if err != nil {
			t.Fatalf("stream %d: %v", i, err)
		}
		subs = append(subs, s)
	}

	// The load: samples of 1 KB on 20 channels, as fast as the hub takes them.
	// Their values do not compress (a transport may gzip the responses: the
	// flow-control windows would then hold many more of them).
	rng := rand.New(rand.NewPCG(1, 2))
	values := make([]telemetry.Value, 64)
	for i := range values {
		b := make([]byte, 500)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		values[i] = telemetry.String(hex.EncodeToString(b))
	}
	smp := func(ch int, seq uint64) telemetry.Sample {
		return telemetry.Sample{Device: "load", Channel: fmt.Sprintf("ch%02d", ch), Seq: seq, TimeNs: time.Now().UnixNano(),
			Value: values[(int(seq)*channels+ch)%len(values)]}
	}
	one := smp(0, 1)
	size := telemetry.SampleSize(&one)
	budget := float64(int64(streams) * (3*queueBytes + 2*size))
	var peak float64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		batch := make([]telemetry.Sample, channels)
		for seq := uint64(1); ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			for ch := range batch {
				batch[ch] = smp(ch, seq)
			}
			hub.Publish(batch...)
			if held := metrictest.Sum(t, reg, "switchyard_api_stream_held_bytes"); held > peak {
				peak = held
			}
		}
	})
	want := float64(streams)
	eventually.Truef(t, 2*time.Minute, func() string {
		return fmt.Sprintf("%v streams stalled, %v open, %v bytes held", metrictest.Sum(t, reg, "switchyard_api_streams_stalled_total"),
			metrictest.Sum(t, reg, "switchyard_api_streams_active"), metrictest.Sum(t, reg, "switchyard_api_stream_held_bytes"))
	}, func() bool {
		return metrictest.Sum(t, reg, "switchyard_api_streams_stalled_total") == want &&
			metrictest.Sum(t, reg, "switchyard_api_streams_active") == 0 && metrictest.Sum(t, reg, "switchyard_api_stream_held_bytes") == 0
	})
	close(stop)
	wg.Wait()
	// For the record: the heap holds the transports' buffers too, the
	// client's among them (it shares this process).
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	t.Logf("%s port: peak held %.0f bytes (%.0f a stream), budget %.0f (%.0f a stream); heap after the stall %d MB",
		port, peak, peak/float64(streams), budget, budget/float64(streams), ms.HeapAlloc>>20)
	if peak > budget {
		t.Errorf("the streams held %.0f bytes at the peak, over the budget of %.0f (%d streams × (3 × %d + 2 × %d))",
			peak, budget, streams, queueBytes, size)
	}
	if peak < float64(streams*queueBytes) {
		t.Errorf("peak held %.0f bytes: the streams' queues never filled (the accounting counts nothing?)", peak)
	}

	// The client reads again: each stream ends.
	for i, s := range subs {
		got := 0
		for {
			if _, err = s.Recv(); err != nil {
				break
			}
			got++
		}
		switch port {
		case "grpc":
			if codeOf(err) != codes.ResourceExhausted || reasonOf(err) != "STREAM_STALLED" || got == 0 {
				t.Fatalf("stream %d: %d responses, then %v; want some, then RESOURCE_EXHAUSTED STREAM_STALLED", i, got, err)
			}
		case "http":
			if codeOf(err) != codes.Internal || !strings.Contains(err.Error(), "RST_STREAM") {
				t.Fatalf("stream %d: %d responses, then %v; want a reset stream", i, got, err)
			}
		}
	}
}
