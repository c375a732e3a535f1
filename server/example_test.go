package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/telemetry"
)

// Serve the API on ports the system picks, ask it for the latest samples with a
// Connect client, then shut it down.
func Example() {
	hub := telemetry.NewHub(nil)
	hub.Publish(
		telemetry.Sample{Device: "psu1", Channel: "volt", Seq: 1, Value: telemetry.Float(12.5)},
		telemetry.Sample{Device: "psu1", Channel: "curr", Seq: 1, Quality: telemetry.Timeout, Err: "no reply"},
		telemetry.Sample{Device: "dmm1", Channel: "temp", Seq: 1, Value: telemetry.Float(21.5)},
	)
	srv := server.New(hub, newFakeDevices(), fakeTree{testTree}, server.Options{
		GRPCAddr: "127.0.0.1:0",
		HTTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err := srv.Listen(); err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()

	transport := &http.Transport{}
	client := switchyardv1connect.NewTelemetryServiceClient(&http.Client{Transport: transport}, "http://"+srv.HTTPAddr().String())
	resp, err := client.GetLatest(ctx, connect.NewRequest(&pb.GetLatestRequest{
		Selector: &pb.Selector{Devices: []string{"psu*"}},
	}))
	if err != nil {
		fmt.Println(err)
	} else {
		for _, s := range resp.Msg.GetSamples() {
			fmt.Printf("%s/%s %s value=%v error=%q\n", s.GetDevice(), s.GetChannel(), s.GetQuality(), s.GetValue().GetDoubleValue(), s.GetError())
		}
	}
	transport.CloseIdleConnections()
	stop()
	fmt.Println("Serve returned", <-served)
	_ = srv.Close() // releases the ports
	// Output:
	// psu1/curr QUALITY_TIMEOUT value=0 error="no reply"
	// psu1/volt QUALITY_GOOD value=12.5 error=""
	// Serve returned <nil>
}
