package server_test

import (
	"context"
	"errors"
	"io"
	"math"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/telemetry"
)

// Subscribe sends batches built from cached encodings on the binary transports
// and marshals messages for JSON; every client must decode the same samples,
// equal to the ones published.
func TestSubscribeSameSamplesOnEveryTransport(t *testing.T) {
	e := startEnv(t)
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	req := &pb.SubscribeRequest{Selector: &pb.Selector{Devices: []string{"psu1"}}, MaxBatch: 3}

	type stream struct {
		name string
		recv func() (*pb.SubscribeResponse, error)
	}
	var streams []stream
	g, err := e.telemetry.Subscribe(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	streams = append(streams, stream{"grpc-go port", g.Recv})
	for _, tc := range []struct {
		name string
		h2c  bool
		opts []connect.ClientOption
	}{
		{"connect proto", false, nil},
		{"connect json", false, []connect.ClientOption{connect.WithProtoJSON()}},
		{"grpc-web", false, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc-web json", false, []connect.ClientOption{connect.WithGRPCWeb(), connect.WithProtoJSON()}},
		{"grpc over h2c", true, []connect.ClientOption{connect.WithGRPC()}},
	} {
		client := switchyardv1connect.NewTelemetryServiceClient(httpClient(t, tc.h2c), e.run.HTTPURL, tc.opts...)
		cs, err := client.Subscribe(ctx, connect.NewRequest(req))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		defer cs.Close()
		streams = append(streams, stream{tc.name, func() (*pb.SubscribeResponse, error) {
			if !cs.Receive() {
				return nil, errors.Join(cs.Err(), io.ErrUnexpectedEOF)
			}
			return cs.Msg(), nil
		}})
	}
	for _, s := range streams {
		warmUp(t, e.hub, telemetry.Sample{Device: "psu1", Channel: "warm"}, s.recv)
	}

	published := []telemetry.Sample{
		{Device: "psu1", Channel: "f", TimeNs: 1_795_694_400_000_000_000, Seq: 1, Value: telemetry.Float(-0.25)},
		{Device: "psu1", Channel: "f0", TimeNs: 2, Seq: 2, Value: telemetry.Float(0)},
		{Device: "psu1", Channel: "i", TimeNs: -3, Seq: math.MaxUint64, Value: telemetry.Int(math.MinInt64)},
		{Device: "psu1", Channel: "s", Seq: 4, Value: telemetry.String("Keysight 34465A – µV")},
		{Device: "psu1", Channel: "b", Seq: 5, Value: telemetry.Bool(false)},
		{Device: "psu1", Channel: "bad", Seq: 6, Quality: telemetry.Timeout, Err: "no reply within 500ms"},
		{Device: "psu1", Channel: "end", Seq: 7, Quality: telemetry.Disconnected},
	}
	want := []*pb.Sample{
		{Device: "psu1", Channel: "f", TimestampNs: 1_795_694_400_000_000_000, Seq: 1, Value: &pb.Value{Kind: &pb.Value_DoubleValue{DoubleValue: -0.25}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "f0", TimestampNs: 2, Seq: 2, Value: &pb.Value{Kind: &pb.Value_DoubleValue{}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "i", TimestampNs: -3, Seq: math.MaxUint64, Value: &pb.Value{Kind: &pb.Value_IntValue{IntValue: math.MinInt64}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "s", Seq: 4, Value: &pb.Value{Kind: &pb.Value_StringValue{StringValue: "Keysight 34465A – µV"}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "b", Seq: 5, Value: &pb.Value{Kind: &pb.Value_BoolValue{}}, Quality: pb.Quality_QUALITY_GOOD},
		{Device: "psu1", Channel: "bad", Seq: 6, Quality: pb.Quality_QUALITY_TIMEOUT, Error: "no reply within 500ms"},
		{Device: "psu1", Channel: "end", Seq: 7, Quality: pb.Quality_QUALITY_DISCONNECTED},
	}
	e.hub.Publish(published...)

	for _, s := range streams {
		var got []*pb.Sample
		for len(got) == 0 || got[len(got)-1].GetChannel() != "end" {
			resp, err := s.recv()
			if err != nil {
				t.Fatalf("%s: after %v: %v", s.name, got, err)
			}
			if len(resp.GetSamples()) > 3 {
				t.Fatalf("%s: batch of %d, max_batch 3", s.name, len(resp.GetSamples()))
			}
			for _, smp := range resp.GetSamples() {
				if smp.GetChannel() != "warm" {
					got = append(got, smp)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%s: got %d samples %v, want %v", s.name, len(got), got, want)
		}
		for i := range want {
			if !proto.Equal(got[i], want[i]) {
				t.Errorf("%s: sample %d = %v, want %v", s.name, i, got[i], want[i])
			}
		}
	}
}
