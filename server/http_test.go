package server_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/server"
	"github.com/switchyard/switchyard/telemetry"
)

// httpClient returns an HTTP/1.1 client (h2c when h2c is true) closed with the test.
func httpClient(t *testing.T, h2c bool) *http.Client {
	tr := &http.Transport{}
	if h2c {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// connectSubscribe checks a Subscribe over one client configuration.
func connectSubscribe(t *testing.T, e *env, client switchyardv1connect.TelemetryServiceClient) {
	t.Helper()
	ctx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	stream, err := client.Subscribe(ctx, connect.NewRequest(&pb.SubscribeRequest{
		Selector: &pb.Selector{Devices: []string{"psu1"}, Channels: []string{"volt"}},
		MaxBatch: 2,
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	recv := func() (*pb.SubscribeResponse, error) {
		if !stream.Receive() {
			return nil, errors.Join(stream.Err(), io.ErrUnexpectedEOF)
		}
		return stream.Msg(), nil
	}
	warmUp(t, e.hub, telemetry.Sample{Device: "psu1", Channel: "volt", Seq: 0}, recv)
	e.hub.Publish(sample("psu1", "curr", 1), sample("psu1", "volt", 1), sample("psu2", "volt", 1), sample("psu1", "volt", 2), sample("psu1", "volt", 3))
	var seqs []uint64
	for len(seqs) < 3 {
		resp, err := recv()
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.GetSamples()) > 2 {
			t.Fatalf("batch of %d, max_batch 2", len(resp.GetSamples()))
		}
		for _, s := range resp.GetSamples() {
			if s.GetSeq() != 0 {
				seqs = append(seqs, s.GetSeq())
			}
		}
	}
	if seqs[0] != 1 || seqs[1] != 2 || seqs[2] != 3 {
		t.Fatalf("seqs = %v, want [1 2 3]", seqs)
	}
}

func TestHTTPConnectProtocols(t *testing.T) {
	e := startEnv(t)
	e.hub.Publish(sample("psu1", "latest", 7), sample("dmm1", "latest", 7))

	for _, tc := range []struct {
		name string
		h2c  bool
		opts []connect.ClientOption
	}{
		{"connect", false, nil},
		{"grpc-web", false, []connect.ClientOption{connect.WithGRPCWeb()}},
		{"grpc over h2c", true, []connect.ClientOption{connect.WithGRPC()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := httpClient(t, tc.h2c)
			tel := switchyardv1connect.NewTelemetryServiceClient(hc, e.run.HTTPURL, tc.opts...)

			latest, err := tel.GetLatest(testCtx(t), connect.NewRequest(&pb.GetLatestRequest{Selector: &pb.Selector{Devices: []string{"psu1"}, Channels: []string{"latest"}}}))
			if err != nil {
				t.Fatal(err)
			}
			if s := latest.Msg.GetSamples(); len(s) != 1 || s[0].GetDevice() != "psu1" || s[0].GetSeq() != 7 {
				t.Fatalf("GetLatest = %v", latest.Msg)
			}

			_, err = tel.GetLatest(testCtx(t), connect.NewRequest(&pb.GetLatestRequest{Selector: &pb.Selector{Devices: []string{"["}}}))
			if connect.CodeOf(err) != connect.CodeInvalidArgument || !strings.Contains(err.Error(), `selector.devices[0]: bad glob pattern "["`) {
				t.Fatalf("bad selector: %v", err)
			}

			dev := switchyardv1connect.NewDeviceServiceClient(hc, e.run.HTTPURL, tc.opts...)
			_, err = dev.GetDevice(testCtx(t), connect.NewRequest(&pb.GetDeviceRequest{Name: "ghost"}))
			if connect.CodeOf(err) != connect.CodeNotFound || !strings.Contains(err.Error(), `device "ghost": no such device`) {
				t.Fatalf("GetDevice(ghost): %v", err)
			}
			_, err = dev.SendCommand(testCtx(t), connect.NewRequest(&pb.SendCommandRequest{Device: "psu1", Command: &pb.SendCommandRequest_Name{Name: "panic"}}))
			if connect.CodeOf(err) != connect.CodeInternal {
				t.Fatalf("panicking command: %v", err)
			}

			sys := switchyardv1connect.NewSystemServiceClient(hc, e.run.HTTPURL, tc.opts...)
			tree, err := sys.GetSupervisionTree(testCtx(t), connect.NewRequest(&pb.GetSupervisionTreeRequest{}))
			if err != nil || len(tree.Msg.GetRoot().GetChildren()) != 2 {
				t.Fatalf("GetSupervisionTree = %v, %v", tree, err)
			}

			connectSubscribe(t, e, tel)

			hs, err := grpchealth.NewClient(hc, e.run.HTTPURL, tc.opts...).Check(testCtx(t), &grpchealth.CheckRequest{})
			if err != nil || hs.Status != grpchealth.StatusServing {
				t.Fatalf("grpchealth = %v, %v", hs, err)
			}
		})
	}
}

// A grpc-go client can use the HTTP port too (connect-go's gRPC protocol over h2c).
func TestHTTPPortServesGRPCGo(t *testing.T) {
	e := startEnv(t)
	conn, err := grpc.NewClient(strings.TrimPrefix(e.run.HTTPURL, "http://"), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	list, err := pb.NewDeviceServiceClient(conn).ListDevices(testCtx(t), &pb.ListDevicesRequest{})
	if err != nil || len(list.GetDevices()) != 3 {
		t.Fatalf("ListDevices over the HTTP port = %v, %v", list, err)
	}
	_, err = pb.NewDeviceServiceClient(conn).GetDevice(testCtx(t), &pb.GetDeviceRequest{})
	wantCode(t, err, codes.InvalidArgument, "name: must be at least 1 characters")
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func TestHTTPHealthzMetricsAndWeb(t *testing.T) {
	web := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "page "+r.URL.Path) })
	e := startEnvWeb(t, web)
	hc := httpClient(t, false)
	e.hub.Publish(sample("psu1", "volt", 1))

	if code, body := get(t, hc, e.run.HTTPURL+"/healthz"); code != http.StatusOK || body != "ok" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, hc, e.run.HTTPURL+"/metrics"); code != http.StatusOK ||
		!strings.Contains(body, "switchyard_hub_published_samples_total 1") {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	if code, body := get(t, hc, e.run.HTTPURL+"/index.html"); code != http.StatusOK || body != "page /index.html" {
		t.Fatalf("/index.html = %d %q", code, body)
	}
}

func TestListenErrorNamesAddress(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	for _, opts := range []server.Options{
		{GRPCAddr: addr, HTTPAddr: "127.0.0.1:0"},
		{GRPCAddr: "127.0.0.1:0", HTTPAddr: addr},
	} {
		srv := server.New(telemetry.NewHub(nil), newFakeDevices(), fakeTree{}, opts)
		err := srv.Serve(context.Background())
		if err == nil || !strings.Contains(err.Error(), addr) {
			t.Fatalf("Serve with %s busy: %v", addr, err)
		}
	}
}

func TestShutdownEndsStreams(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)
	hc := httpClient(t, false)

	grpcSub, err := e.telemetry.Subscribe(ctx, &pb.SubscribeRequest{})
	if err != nil {
		t.Fatal(err)
	}
	warmUp(t, e.hub, sample("warm", "grpc", 1), grpcSub.Recv)

	watch, err := e.device.WatchDevices(ctx, &pb.WatchDevicesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}

	tel := switchyardv1connect.NewTelemetryServiceClient(hc, e.run.HTTPURL)
	connectSub, err := tel.Subscribe(ctx, connect.NewRequest(&pb.SubscribeRequest{Selector: &pb.Selector{Devices: []string{"warm"}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer connectSub.Close()
	warmUp(t, e.hub, sample("warm", "connect", 1), func() (bool, error) {
		if !connectSub.Receive() {
			return false, errors.Join(connectSub.Err(), io.ErrUnexpectedEOF)
		}
		return true, nil
	})

	healthWatch, err := healthpb.NewHealthClient(e.conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if hr, err := healthWatch.Recv(); err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch = %v, %v", hr, err)
	}

	start := time.Now()
	if err := e.run.Stop(10 * time.Second); err != nil {
		t.Fatalf("Serve returned %v", err)
	}
	t.Logf("Serve returned %v after cancel", time.Since(start))

	drain := func(recv func() error) error {
		for {
			if err := recv(); err != nil {
				return err
			}
		}
	}
	err = drain(func() error { _, err := grpcSub.Recv(); return err })
	wantCode(t, err, codes.Unavailable, "server is shutting down")
	err = drain(func() error { _, err := watch.Recv(); return err })
	wantCode(t, err, codes.Unavailable, "server is shutting down")
	for {
		hr, err := healthWatch.Recv()
		if err != nil {
			break
		}
		if hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Fatalf("health during shutdown = %v", hr)
		}
	}
	for connectSub.Receive() {
	}
	if connect.CodeOf(connectSub.Err()) != connect.CodeUnavailable {
		t.Fatalf("Connect stream ended with %v", connectSub.Err())
	}
}
