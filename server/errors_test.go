package server

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/supervisor"
)

func TestErrorMapping(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code connect.Code
	}{
		{errField("name", "required"), connect.CodeInvalidArgument},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrNotFound), connect.CodeNotFound},
		{fmt.Errorf("command %q: %w", "x", devicemgr.ErrUnknownCommand), connect.CodeInvalidArgument},
		{fmt.Errorf("args[0]: %w", devicemgr.ErrBadArgument), connect.CodeInvalidArgument},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrNotConnected), connect.CodeUnavailable},
		{fmt.Errorf("device %q: %w", "x", devicemgr.ErrTimeout), connect.CodeDeadlineExceeded},
		{fmt.Errorf("device x: waiting for the reply: %w", supervisor.ErrAborted), connect.CodeAborted},
		{fmt.Errorf("device x: command y: %w: %w", devicemgr.ErrBusy, supervisor.ErrMailboxFull), connect.CodeResourceExhausted},
		{fmt.Errorf("call y: %w: %w", supervisor.ErrRestarted, devicemgr.ErrNotConnected), connect.CodeUnavailable},
		{errShuttingDown, connect.CodeUnavailable},
		{fmt.Errorf("send: %w", context.Canceled), connect.CodeCanceled},
		{context.DeadlineExceeded, connect.CodeDeadlineExceeded},
		{connect.NewError(connect.CodeResourceExhausted, errors.New("x")), connect.CodeResourceExhausted},
		{status.Error(codes.Aborted, "x"), connect.CodeAborted},
		{errors.New("boom"), connect.CodeInternal},
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
	}
	if connectError(nil) != nil || grpcError(nil) != nil {
		t.Error("nil error mapped to non-nil")
	}
	msg := status.Convert(grpcError(fmt.Errorf("device %q: %w", "psu9", devicemgr.ErrNotFound))).Message()
	if msg != `device "psu9": no such device` {
		t.Errorf("message = %q; the wrapped detail must survive", msg)
	}
}
