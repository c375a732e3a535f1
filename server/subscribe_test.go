package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/telemetry"
)

func floatSample(dev, ch string, seq uint64, v float64) telemetry.Sample {
	s := sample(dev, ch, seq)
	s.Value = telemetry.Float(v)
	return s
}

// recvUntil receives until a sample of dev/ch with seq >= lastSeq arrives and returns
// the samples of dev/ch, in order.
func recvUntil(t *testing.T, recv func() (*pb.SubscribeResponse, error), dev, ch string, lastSeq uint64) []*pb.Sample {
	t.Helper()
	var got []*pb.Sample
	for {
		resp, err := recv()
		if err != nil {
			t.Fatalf("waiting for %s/%s seq %d: %v (got %v)", dev, ch, lastSeq, err, got)
		}
		for _, s := range resp.GetSamples() {
			if s.GetDevice() == dev && s.GetChannel() == ch {
				got = append(got, s)
				if s.GetSeq() >= lastSeq {
					return got
				}
			}
		}
	}
}

func seqsOf(ss []*pb.Sample) []uint64 {
	out := make([]uint64, len(ss))
	for i, s := range ss {
		out[i] = s.GetSeq()
	}
	return out
}

func TestSubscribeDeadband(t *testing.T) {
	e := startEnv(t)
	stream, err := e.telemetry.Subscribe(testCtx(t), &pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{"m"}}, DeadbandAbs: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("m", "warm", 1), stream.Recv)
	for i, v := range []float64{0, 0.5, 1.2, 1.5, 2.3, 2.0, 1.0} {
		e.hub.Publish(floatSample("m", "v", uint64(i+1), v))
	}
	// 0 · 0.5 within 1 · 1.2 · 1.5 within · 2.3 · 2.0 within · 1.0 more than 1 from 2.3
	got := seqsOf(recvUntil(t, stream.Recv, "m", "v", 7))
	if want := []uint64{1, 3, 5, 7}; !slices.Equal(got, want) {
		t.Fatalf("delivered seqs %v, want %v", got, want)
	}
}

func TestSubscribeRateCapEndsOnLatest(t *testing.T) {
	e := startEnv(t)
	stream, err := e.telemetry.Subscribe(testCtx(t), &pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{"m"}}, MaxRateHz: 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("m", "warm", 1), stream.Recv)
	// 50 samples in one burst: the first goes at once, the last when the channel's
	// 200 ms have passed, the 48 between are decimated.
	batch := make([]telemetry.Sample, 50)
	for i := range batch {
		batch[i] = sample("m", "v", uint64(i+1))
	}
	e.hub.Publish(batch...)
	got := seqsOf(recvUntil(t, stream.Recv, "m", "v", 50))
	if want := []uint64{1, 50}; !slices.Equal(got, want) {
		t.Fatalf("delivered seqs %v, want %v", got, want)
	}
}

func TestSubscribeInitialStatesHeartbeat(t *testing.T) {
	e := startEnv(t)
	e.hub.Publish(sample("psu1", "volt", 7), sample("psu2", "volt", 3))
	stream, err := e.telemetry.Subscribe(testCtx(t), &pb.SubscribeRequest{
		Selector:      &pb.Selector{Devices: []string{"psu*"}},
		InitialValues: true, DeviceStates: true, HeartbeatMs: 200,
	})
	if err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if !first.GetInitial() || len(first.GetSamples()) != 2 || first.GetSamples()[0].GetSeq() != 7 {
		t.Fatalf("initial values: %v", first)
	}
	devs, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if len(devs.GetDevices()) != 2 || devs.GetDevices()[0].GetName() != "psu1" {
		t.Fatalf("initial device states: %v", devs)
	}
	// A change travels in the same stream, after the samples published before it.
	e.hub.Publish(sample("psu1", "volt", 8))
	info := e.devices.info("psu1")
	info.State = devicemgr.Backoff
	e.devices.set(info)
	var sawSample bool
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetSamples()) > 0 {
			sawSample = true
		}
		if len(resp.GetDevices()) > 0 {
			if !sawSample || resp.GetDevices()[0].GetState() != pb.DeviceState_DEVICE_STATE_BACKOFF {
				t.Fatalf("state change %v (sample before it seen: %v)", resp, sawSample)
			}
			break
		}
	}
	// Idle: a heartbeat comes.
	for {
		resp, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetHeartbeat() {
			break
		}
	}
}

func TestSubscribeTagsSelectDevices(t *testing.T) {
	e := startEnv(t)
	info := e.devices.info("psu2")
	info.Tags = map[string]string{"line": "3"}
	e.devices.set(info)
	stream, err := e.telemetry.Subscribe(testCtx(t), &pb.SubscribeRequest{
		Selector: &pb.Selector{Tags: map[string]string{"line": "3"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("psu2", "warm", 1), stream.Recv)
	e.hub.Publish(sample("psu1", "volt", 1), sample("psu2", "volt", 1))
	got := recvUntil(t, stream.Recv, "psu2", "volt", 1)
	if len(got) != 1 {
		t.Fatalf("got %v", got)
	}
}

func TestSubscribeBadOptions(t *testing.T) {
	e := startEnv(t)
	for _, c := range []struct {
		req  *pb.SubscribeRequest
		want string
	}{
		{&pb.SubscribeRequest{DeadbandAbs: -1}, "deadband_abs: must be greater than or equal to 0"},
		{&pb.SubscribeRequest{DeadbandRel: math.NaN()}, "deadband_rel: must be finite"},
		{&pb.SubscribeRequest{MaxRateHz: 1e-9}, "max_rate_hz: must be 0 (unlimited) or >="},
		{&pb.SubscribeRequest{HeartbeatMs: 5}, "heartbeat_ms: must be 0 (none) or between"},
	} {
		stream, err := e.telemetry.Subscribe(testCtx(t), c.req)
		if err == nil {
			_, err = stream.Recv()
		}
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: got %v, want %q", c.req, err, c.want)
		}
	}
}

// TestStalledSubscriberIsNamedWithItsPeer: a gRPC client that subscribes and
// then stops reading blocks its stream once flow control fills; the hub's
// watchdog reports that subscription as stalled, naming the client's address,
// while publishing never blocks.
func TestStalledSubscriberIsNamedWithItsPeer(t *testing.T) {
	e := startEnv(t)
	statuses := make(chan string, 64)
	wd, err := telemetry.NewWatchdog(e.hub, telemetry.WatchdogOptions{
		Period: 50 * time.Millisecond, StallAfter: 300 * time.Millisecond,
		Logger:   slog.New(slog.DiscardHandler),
		OnStatus: func(_ context.Context, s string) { statuses <- s },
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	go func() { _ = wd.Serve(ctx) }()

	stream, err := e.telemetry.Subscribe(ctx, &pb.SubscribeRequest{Selector: &pb.Selector{Devices: []string{"flood"}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	// Never Recv: publish distinct channels until the server's sends block and
	// the subscription stops draining.
	batch := make([]telemetry.Sample, 500)
	seq := uint64(0)
	eventually.Truef(t, 30*time.Second, func() string { return fmt.Sprintf("no stall reported; health %+v", wd.Health()) }, func() bool {
		seq++
		for i := range batch {
			batch[i] = floatSample("flood", fmt.Sprintf("ch%03d", i), seq, float64(seq))
		}
		e.hub.Publish(batch...)
		select {
		case s := <-statuses:
			return strings.Contains(s, "1 stalled: api (squash, 127.0.0.1:")
		default:
			return false
		}
	})
}
