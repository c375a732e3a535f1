package main

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
	"github.com/switchyard/switchyard/internal/eventually"
	"github.com/switchyard/switchyard/sim"
	"github.com/switchyard/switchyard/sim/simtest"
)

// TestInstrumentsAsTheyReallyAre serves a supply of every simulator
// personality, each with its model from examples/models, and a tidy one, and
// through the API (gRPC and Connect) polls and commands every one of them: each
// reads GOOD, near its set-point, and takes a set_voltage. An instrument's own
// refusal (an ERR reply; a non-zero error queue) is FAILED_PRECONDITION with
// reason INSTRUMENT_ERROR and the instrument's words on both ports; a bad
// request fails alone and the next caller is served.
func TestInstrumentsAsTheyReallyAre(t *testing.T) {
	fleet := simtest.Fleet(t, sim.FleetSpec{SCPI: 1, Seed: 12, Quirky: sim.PersonalityNames()})
	a, _ := startApp(t, demoConfig(fleet))
	waitAllConnected(t, a.devices)
	grpcAddr, httpAddr := a.Addrs()
	conn, err := grpc.NewClient(grpcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dev := pb.NewDeviceServiceClient(conn)
	tel := pb.NewTelemetryServiceClient(conn)
	cdev := switchyardv1connect.NewDeviceServiceClient(http.DefaultClient, "http://"+httpAddr.String())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	send := func(device, name string, args ...string) (*pb.SendCommandResponse, error) {
		return dev.SendCommand(ctx, &pb.SendCommandRequest{Device: device, Command: &pb.SendCommandRequest_Name{Name: name}, Args: args})
	}
	for _, in := range fleet.Instruments() {
		name := in.Name()
		t.Run(in.ModelName(), func(t *testing.T) {
			eventually.True(t, 30*time.Second, name+" voltage GOOD near 12 V", func() bool {
				resp, err := tel.GetLatest(ctx, &pb.GetLatestRequest{Selector: &pb.Selector{Devices: []string{name}, Channels: []string{"voltage"}}})
				return err == nil && len(resp.Samples) == 1 && resp.Samples[0].Quality == pb.Quality_QUALITY_GOOD &&
					math.Abs(resp.Samples[0].GetValue().GetDoubleValue()-12) < 0.5
			})
			// A flaky instrument may drop a command's reply: it reconnects
			// and the command is sent again.
			eventually.True(t, 30*time.Second, name+" takes set_voltage 20", func() bool {
				_, err := send(name, "set_voltage", "20")
				return err == nil && in.SetPoint() == 20
			})
			eventually.True(t, 30*time.Second, name+" setpoint reads 20", func() bool {
				resp, err := tel.GetLatest(ctx, &pb.GetLatestRequest{Selector: &pb.Selector{Devices: []string{name}, Channels: []string{"setpoint"}}})
				return err == nil && len(resp.Samples) == 1 && resp.Samples[0].Quality == pb.Quality_QUALITY_GOOD &&
					resp.Samples[0].GetValue().GetDoubleValue() == 20
			})
		})
	}

	// The instrument's own refusal, on both ports: an ERR reply (acks-01)
	// and a non-zero error queue (psu-01's model asks SYST:ERR?).
	for device, words := range map[string]string{"acks-01": "data out of range", "psu-01": `-222,"Data out of range"`} {
		req := &pb.SendCommandRequest{Device: device, Command: &pb.SendCommandRequest_Raw{Raw: "SOUR:VOLT 99"}}
		_, err := dev.SendCommand(ctx, req)
		st := status.Convert(err)
		info := grpcErrorInfo(st)
		if st.Code() != codes.FailedPrecondition || info.GetReason() != "INSTRUMENT_ERROR" ||
			info.GetMetadata()["instrument_message"] != words || info.GetMetadata()["device"] != device ||
			info.GetMetadata()["command"] != `raw "SOUR:VOLT 99"` {
			t.Errorf("gRPC %s SOUR:VOLT 99: %v %q, ErrorInfo %v; want FailedPrecondition INSTRUMENT_ERROR %q", device, st.Code(), st.Message(), info, words)
		}
		_, err = cdev.SendCommand(ctx, connect.NewRequest(req))
		var ce *connect.Error
		if !errors.As(err, &ce) {
			t.Fatalf("Connect %s: %v", device, err)
		}
		cinfo := connectErrorInfo(ce)
		if ce.Code() != connect.CodeFailedPrecondition || cinfo.GetReason() != "INSTRUMENT_ERROR" || cinfo.GetMetadata()["instrument_message"] != words {
			t.Errorf("Connect %s SOUR:VOLT 99: %v, ErrorInfo %v; want FailedPrecondition INSTRUMENT_ERROR %q", device, ce, cinfo, words)
		}
		if sp := fleet.Instrument(device).SetPoint(); sp != 20 {
			t.Errorf("%s: set-point %v after a refused command", device, sp)
		}
	}

	// Bad requests fail alone, and the next caller is served normally.
	for _, bad := range []struct {
		what string
		req  *pb.SendCommandRequest
		code codes.Code
	}{
		{"a NUL byte", &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Raw{Raw: "SOUR:VOLT 5\x00"}}, codes.InvalidArgument},
		{"an ESC byte", &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Raw{Raw: "\x1b[2J"}}, codes.InvalidArgument},
		{"a 900 KiB line", &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Raw{Raw: strings.Repeat("A", 900<<10)}}, codes.InvalidArgument},
		{"NaN", &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Name{Name: "set_voltage"}, Args: []string{"NaN"}}, codes.InvalidArgument},
		{"a 1ns timeout", &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Raw{Raw: "MEAS:VOLT?"}, Timeout: durationpb.New(time.Nanosecond)}, codes.DeadlineExceeded},
	} {
		_, err := dev.SendCommand(ctx, bad.req)
		if status.Code(err) != bad.code {
			t.Errorf("%s: %v, want %v", bad.what, err, bad.code)
		}
		resp, err := dev.SendCommand(ctx, &pb.SendCommandRequest{Device: "acks-01", Command: &pb.SendCommandRequest_Raw{Raw: "SOUR:VOLT?"}})
		if err != nil || resp.GetReply() != "20.0000" {
			t.Errorf("after %s the next caller got %v, %v", bad.what, resp, err)
		}
	}
	if info, _ := a.devices.Get("acks-01"); info.Restarts != 0 || info.OutOfStep != 0 {
		t.Errorf("acks-01 reconnected %d times, out of step %d times: %s", info.Restarts, info.OutOfStep, info.LastError)
	}
}

func grpcErrorInfo(st *status.Status) *errdetails.ErrorInfo {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	return nil
}

func connectErrorInfo(ce *connect.Error) *errdetails.ErrorInfo {
	for _, d := range ce.Details() {
		if v, err := d.Value(); err == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				return info
			}
		}
	}
	return nil
}
