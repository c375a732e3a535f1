package server_test

import (
	"errors"
	"slices"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/status"

	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/gen/switchyard/v1/switchyardv1connect"
)

// A failed call carries the same ErrorInfo reason on the gRPC port and on the
// HTTP port, so clients can choose their exception from it.
func TestErrorInfoOnBothPorts(t *testing.T) {
	e := startEnv(t)
	ctx := testCtx(t)

	_, err := e.device.GetDevice(ctx, &pb.GetDeviceRequest{Name: "nope"})
	var grpcInfo *errdetails.ErrorInfo
	for _, d := range status.Convert(err).Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			grpcInfo = info
		}
	}
	if grpcInfo.GetDomain() != "switchyard" || grpcInfo.GetReason() != "DEVICE_NOT_FOUND" {
		t.Errorf("gRPC port: ErrorInfo = %v, want switchyard DEVICE_NOT_FOUND", grpcInfo)
	}

	client := switchyardv1connect.NewDeviceServiceClient(httpClient(t, false), e.run.HTTPURL)
	_, err = client.GetDevice(ctx, connect.NewRequest(&pb.GetDeviceRequest{Name: "nope"}))
	var ce *connect.Error
	if !errors.As(err, &ce) {
		t.Fatalf("HTTP port: %v is not a connect error", err)
	}
	var connectInfo *errdetails.ErrorInfo
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if info, ok := v.(*errdetails.ErrorInfo); ok {
				connectInfo = info
			}
		}
	}
	if ce.Code() != connect.CodeNotFound || connectInfo.GetReason() != "DEVICE_NOT_FOUND" {
		t.Errorf("HTTP port: %v with ErrorInfo %v, want NotFound DEVICE_NOT_FOUND", ce.Code(), connectInfo)
	}
}

// Without authentication the caller is anonymous and may call every RPC.
func TestGetIdentityWithoutAuth(t *testing.T) {
	e := startEnv(t)
	id, err := e.system.GetIdentity(testCtx(t), &pb.GetIdentityRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if id.GetName() != "anonymous" || id.GetAuthenticated() || id.GetMethod() != "none" || id.GetServerVersion() == "" {
		t.Errorf("GetIdentity = %v", id)
	}
	for _, m := range []string{"/switchyard.v1.DeviceService/SendCommand", "/switchyard.v1.SystemService/RestartProcess", "/switchyard.v1.AlarmService/SetAlarmLimits"} {
		if !slices.Contains(id.GetAllowedMethods(), m) {
			t.Errorf("allowed_methods lacks %s: %v", m, id.GetAllowedMethods())
		}
	}
}
