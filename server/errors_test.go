package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/cluster"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err    error
		code   connect.Code
		reason string // the ErrorInfo reason; "" for none
	}{
		{errField("name", "required"), connect.CodeInvalidArgument, "INVALID_REQUEST"},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrNotFound), connect.CodeNotFound, "DEVICE_NOT_FOUND"},
		{fmt.Errorf("command %q: %w", "x", devicemgr.ErrUnknownCommand), connect.CodeInvalidArgument, "UNKNOWN_COMMAND"},
		{fmt.Errorf("args[0]: %w", devicemgr.ErrBadArgument), connect.CodeInvalidArgument, "BAD_ARGUMENT"},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrNotConnected), connect.CodeUnavailable, "DEVICE_NOT_CONNECTED"},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrTimeout), connect.CodeDeadlineExceeded, "DEVICE_TIMEOUT"},
		{fmt.Errorf("device x: waiting for the reply: %w", supervisor.ErrAborted), connect.CodeAborted, "ABORTED"},
		{fmt.Errorf("device x: command y: %w: %w", devicemgr.ErrBusy, supervisor.ErrMailboxFull), connect.CodeResourceExhausted, "DEVICE_BUSY"},
		{fmt.Errorf("call y: %w: %w", supervisor.ErrRestarted, devicemgr.ErrNotConnected), connect.CodeUnavailable, "PROCESS_RESTARTED"},
		{fmt.Errorf("set_volt: %w", devicemgr.ErrNotSettled), connect.CodeFailedPrecondition, "NOT_SETTLED"},
		{fmt.Errorf("query: %w", devicemgr.ErrBadReply), connect.CodeFailedPrecondition, "BAD_REPLY"},
		{&devicemgr.InstrumentError{Device: "pump", Command: "start", Message: "rate/volume not set"}, connect.CodeFailedPrecondition, "INSTRUMENT_ERROR"},
		// A queued command of a device a reload removes: the mailbox's failure wraps it.
		{fmt.Errorf("device psu: call set_volt 3: %w", fmt.Errorf("device psu: %w", devicemgr.ErrDeviceRemoved)), connect.CodeFailedPrecondition, "DEVICE_REMOVED"},
		{&config.InvalidError{Source: "plant.yaml", Problems: []string{"plant.yaml:3: devices[0].address: required"}}, connect.CodeInvalidArgument, "CONFIG_INVALID"},
		{errNoConfig, connect.CodeUnimplemented, "NOT_SUPPORTED"},
		{errShuttingDown, connect.CodeUnavailable, "SHUTTING_DOWN"},
		{telemetry.ErrStalled, connect.CodeResourceExhausted, "STREAM_STALLED"},
		{fmt.Errorf("send: %w", context.Canceled), connect.CodeCanceled, "CANCELLED"},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded, "DEADLINE_EXCEEDED"},
		{connect.NewError(connect.CodeResourceExhausted, errors.New("x")), connect.CodeResourceExhausted, ""},
		{connect.NewError(connect.CodePermissionDenied, errors.New("x")), connect.CodePermissionDenied, "PERMISSION_DENIED"},
		{status.Error(codes.Aborted, "x"), connect.CodeAborted, ""},
		{status.Error(codes.Unauthenticated, "x"), connect.CodeUnauthenticated, "UNAUTHENTICATED"},
		{errors.New("boom"), connect.CodeInternal, "INTERNAL"},
		// Errors of a cluster: decided by the cluster or by the device's owner.
		{&cluster.FailoverError{Device: "x"}, connect.CodeUnavailable, "DEVICE_IN_FAILOVER"},
		{&cluster.RemoteError{Code: "invalid_argument", Reason: "BAD_ARGUMENT", Message: "m", Node: "n2"}, connect.CodeInvalidArgument, "BAD_ARGUMENT"},
		{&cluster.RemoteError{Code: "unavailable", Reason: "FROM_A_NEWER_NODE"}, connect.CodeUnavailable, ""},
		{&cluster.RemoteError{Code: "no such code", Reason: "BAD_ARGUMENT"}, connect.CodeInternal, "INTERNAL"},
		{&cluster.NoAnswerError{Device: "x", Err: context.DeadlineExceeded}, connect.CodeDeadlineExceeded, "DEADLINE_EXCEEDED"},
	} {
		if got := codeOf(tc.err); got != tc.code {
			t.Errorf("codeOf(%v) = %v, want %v", tc.err, got, tc.code)
		}
		if got := connect.CodeOf(connectError(tc.err)); got != tc.code {
			t.Errorf("connectError(%v) has code %v, want %v", tc.err, got, tc.code)
		}
		st := status.Convert(grpcError(tc.err))
		if st.Code() != codes.Code(tc.code) {
			t.Errorf("grpcError(%v) has code %v, want %v", tc.err, st.Code(), tc.code)
		}
		if got := grpcReason(st); got != tc.reason {
			t.Errorf("grpcError(%v) has reason %q, want %q", tc.err, got, tc.reason)
		}
		if got := connectReason(connectError(tc.err)); got != tc.reason {
			t.Errorf("connectError(%v) has reason %q, want %q", tc.err, got, tc.reason)
		}
	}
	if connectError(nil) != nil || grpcError(nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
	md := errorInfoOf(t, status.Convert(grpcError(errField("selector.devices[2]", "bad glob")))).GetMetadata()
	if md["field"] != "selector.devices[2]" {
		t.Errorf("field error metadata = %v, want field selector.devices[2]", md)
	}
	ie := &devicemgr.InstrumentError{Device: "pump", Command: "start", Message: "rate/volume not set"}
	for _, md := range []map[string]string{errorInfoOf(t, status.Convert(grpcError(ie))).GetMetadata(), connectInfoOf(t, connectError(ie)).GetMetadata()} {
		if md["device"] != "pump" || md["command"] != "start" || md["instrument_message"] != "rate/volume not set" {
			t.Errorf("instrument error metadata = %v", md)
		}
	}
	msg := status.Convert(grpcError(fmt.Errorf("device %q: %w", "psu9", devicemgr.ErrNotFound))).Message()
	if msg != `device "psu9": no such device` {
		t.Errorf("message = %q; the wrapped detail must survive", msg)
	}
}

// grpcReason is the ErrorInfo reason of a gRPC status, "" if it has none.
func grpcReason(st *status.Status) string {
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

// connectReason is the ErrorInfo reason of a Connect error, "" if it has none.
func connectReason(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if info, ok := v.(*errdetails.ErrorInfo); derr == nil && ok && info.GetDomain() == ErrorDomain {
			return info.GetReason()
		}
	}
	return ""
}

func connectInfoOf(t *testing.T, err error) *errdetails.ErrorInfo {
	t.Helper()
	var ce *connect.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Details() {
			if v, derr := d.Value(); derr == nil {
				if info, ok := v.(*errdetails.ErrorInfo); ok {
					return info
				}
			}
		}
	}
	t.Fatalf("%v has no ErrorInfo", err)
	return nil
}

func errorInfoOf(t *testing.T, st *status.Status) *errdetails.ErrorInfo {
	t.Helper()
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info
		}
	}
	t.Fatalf("status %v has no ErrorInfo", st)
	return nil
}

// Every reason in the contract's enum has a name clients can match; the names
// are the enum's without the prefix.
func TestReasonNames(t *testing.T) {
	seen := map[string]bool{}
	for n := range pb.ErrorReason_name {
		name := ReasonName(pb.ErrorReason(n))
		if name == "" || strings.HasPrefix(name, "ERROR_REASON") || seen[name] {
			t.Errorf("reason %d has name %q", n, name)
		}
		seen[name] = true
	}
}

// ErrorStatus gives a node what another node's statusOf needs to map an error
// the same way: a routed error keeps its code, reason and metadata.
func TestErrorStatusRoundTrip(t *testing.T) {
	for _, err := range []error{
		fmt.Errorf("args[0]: %w", devicemgr.ErrBadArgument),
		fmt.Errorf("device x: %w", devicemgr.ErrTimeout),
		fmt.Errorf("device x: waiting for the reply: %w", supervisor.ErrAborted),
		errors.New("boom"),
	} {
		code, reason, md := ErrorStatus(err)
		remote := &cluster.RemoteError{Code: code, Reason: reason, Message: err.Error(), Metadata: md, Node: "n2"}
		c1, r1 := statusOf(err)
		c2, r2 := statusOf(remote)
		if c1 != c2 || r1 != r2 {
			t.Errorf("%v: local %v/%v, routed %v/%v", err, c1, r1, c2, r2)
		}
		if info := errorInfo(remote, r2); info == nil || info.Metadata["node"] != "n2" {
			t.Errorf("%v: routed ErrorInfo %v lacks the owning node", err, info)
		}
	}
}
