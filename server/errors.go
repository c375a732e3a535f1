package server

import (
	"context"
	"errors"

	"connectrpc.com/connect"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/devicemgr"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/supervisor"
)

// errShuttingDown is the cause given to streams the server ends because it is
// stopping. Clients see Unavailable and may reconnect to the next instance.
var errShuttingDown = errors.New("server is shutting down")

// fieldError is a request validation failure. Its message names the offending field
// ("selector.devices[2]: bad glob pattern ...").
type fieldError struct {
	field string
	msg   string
}

func (e *fieldError) Error() string { return e.field + ": " + e.msg }

// codeOf is the one place that decides which status code an error carries. Both
// transports call it (through connectError and grpcError), so a domain error looks
// the same to a Connect client and to a gRPC client.
func codeOf(err error) connect.Code {
	var fe *fieldError
	var ce *connect.Error
	var gs interface{ GRPCStatus() *status.Status }
	switch {
	case errors.As(err, &fe):
		return connect.CodeInvalidArgument
	case errors.Is(err, devicemgr.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, devicemgr.ErrUnknownCommand), errors.Is(err, devicemgr.ErrBadArgument):
		return connect.CodeInvalidArgument
	case errors.Is(err, supervisor.ErrAborted):
		return connect.CodeAborted
	case errors.Is(err, devicemgr.ErrBusy):
		return connect.CodeResourceExhausted
	case errors.Is(err, devicemgr.ErrNotConnected):
		return connect.CodeUnavailable
	case errors.Is(err, devicemgr.ErrTimeout):
		return connect.CodeDeadlineExceeded
	case errors.Is(err, errNoEvents), errors.Is(err, errNoRestart):
		return connect.CodeUnimplemented
	case errors.Is(err, supervisor.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, supervisor.ErrNotRunning):
		return connect.CodeFailedPrecondition
	case errors.Is(err, supervisor.ErrLeaked):
		return connect.CodeUnavailable
	case errors.Is(err, supervisor.ErrClosed):
		return connect.CodeUnavailable
	case errors.Is(err, alarm.ErrNotFound):
		return connect.CodeNotFound
	case errors.Is(err, alarm.ErrBadRequest):
		return connect.CodeInvalidArgument
	case errors.Is(err, alarm.ErrNotRunning):
		return connect.CodeUnavailable
	case errors.Is(err, errShuttingDown), errors.Is(err, errNoArchive):
		return connect.CodeUnavailable
	case errors.Is(err, ingest.ErrBadHistoryQuery):
		return connect.CodeInvalidArgument
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded
	case errors.As(err, &ce):
		// Already a status from the Connect transport (a failed Send, say).
		return ce.Code()
	case errors.As(err, &gs):
		// Already a status from the gRPC transport.
		return connect.Code(gs.GRPCStatus().Code())
	default:
		return connect.CodeInternal
	}
}

// connectError converts an error from the core services to a *connect.Error. The
// message keeps the wrapped detail. It returns nil for nil.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	return connect.NewError(codeOf(err), err)
}

// grpcError converts an error from the core services to a gRPC status error. The
// codes of connect-go and grpc-go share their numbering. It returns nil for nil.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(codes.Code(codeOf(err)), err.Error())
}
