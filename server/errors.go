package server

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"

	"connectrpc.com/connect"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/switchyard/switchyard/alarm"
	"github.com/switchyard/switchyard/config"
	"github.com/switchyard/switchyard/devicemgr"
	pb "github.com/switchyard/switchyard/gen/switchyard/v1"
	"github.com/switchyard/switchyard/ingest"
	"github.com/switchyard/switchyard/supervisor"
	"github.com/switchyard/switchyard/telemetry"
)

// ErrorDomain is the domain of the google.rpc.ErrorInfo detail every error carries.
const ErrorDomain = "switchyard"

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

// ErrorMetadata names the offending field in the error's ErrorInfo.
func (e *fieldError) ErrorMetadata() map[string]string { return map[string]string{"field": e.field} }

// errNoChannel: the device exists but has no such channel.
type errNoChannel struct{ device, channel string }

func (e *errNoChannel) Error() string {
	return "device " + quote(e.device) + " has no channel " + quote(e.channel)
}

// ErrorMetadata names the device and channel.
func (e *errNoChannel) ErrorMetadata() map[string]string {
	return map[string]string{"device": e.device, "channel": e.channel}
}

// metadataError is implemented by errors (from any package) that contribute
// metadata to the ErrorInfo detail: the device, command, field or the instrument's
// own message. The first such error in the chain wins.
type metadataError interface {
	error
	ErrorMetadata() map[string]string
}

// reasonedError is an error that carries its status already: a code name as
// connect writes it ("unavailable") and a reason name without ERROR_REASON_.
type reasonedError interface {
	error
	ErrorCode() string
	ErrorReason() string
}

// ErrorStatus is statusOf for other packages: the code name ("invalid_argument"),
// the reason name ("BAD_ARGUMENT") and the ErrorInfo metadata an error would
// carry. A cluster node uses it to send a routed command's error back to the
// node the caller talks to, which maps it as if the device were local.
func ErrorStatus(err error) (code, reason string, metadata map[string]string) {
	c, r := statusOf(err)
	var me metadataError
	if errors.As(err, &me) {
		metadata = me.ErrorMetadata()
	}
	return c.String(), ReasonName(r), metadata
}

// statusOf is the one place that decides which status code and reason an error
// carries. Both transports call it (through connectError and grpcError), so a
// domain error looks the same to a Connect client and to a gRPC client.
func statusOf(err error) (connect.Code, pb.ErrorReason) {
	var fe *fieldError
	var ce *connect.Error
	var gs interface{ GRPCStatus() *status.Status }
	var re reasonedError
	var unauth *errUnauthenticated
	var denied *permissionError
	var streams *errTooManyStreams
	var rate *errRateLimited
	var noChan *errNoChannel
	switch {
	case errors.As(err, &fe), errors.Is(err, errMalformed):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_INVALID_REQUEST
	case errors.As(err, &re):
		// Decided elsewhere: by another cluster node's statusOf (a routed
		// command), or by the cluster itself (DEVICE_IN_FAILOVER).
		var c connect.Code
		if c.UnmarshalText([]byte(re.ErrorCode())) != nil {
			return connect.CodeInternal, pb.ErrorReason_ERROR_REASON_INTERNAL
		}
		if r, ok := pb.ErrorReason_value["ERROR_REASON_"+re.ErrorReason()]; ok {
			return c, pb.ErrorReason(r)
		}
		return c, reasonOfCode(c)
	case errors.As(err, &unauth):
		return connect.CodeUnauthenticated, pb.ErrorReason_ERROR_REASON_UNAUTHENTICATED
	case errors.As(err, &denied):
		return connect.CodePermissionDenied, pb.ErrorReason_ERROR_REASON_PERMISSION_DENIED
	case errors.As(err, &streams):
		return connect.CodeResourceExhausted, pb.ErrorReason_ERROR_REASON_TOO_MANY_STREAMS
	case errors.As(err, &rate):
		return connect.CodeResourceExhausted, pb.ErrorReason_ERROR_REASON_RATE_LIMITED
	case errors.As(err, &noChan):
		return connect.CodeNotFound, pb.ErrorReason_ERROR_REASON_CHANNEL_NOT_FOUND
	case errors.Is(err, devicemgr.ErrNotFound):
		return connect.CodeNotFound, pb.ErrorReason_ERROR_REASON_DEVICE_NOT_FOUND
	case errors.Is(err, devicemgr.ErrDeviceRemoved):
		return connect.CodeFailedPrecondition, pb.ErrorReason_ERROR_REASON_DEVICE_REMOVED
	case errors.Is(err, config.ErrInvalid):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_CONFIG_INVALID
	case errors.Is(err, devicemgr.ErrUnknownCommand):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_UNKNOWN_COMMAND
	case errors.Is(err, devicemgr.ErrBadArgument):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_BAD_ARGUMENT
	case errors.Is(err, supervisor.ErrAborted):
		return connect.CodeAborted, pb.ErrorReason_ERROR_REASON_ABORTED
	case errors.Is(err, devicemgr.ErrBusy):
		return connect.CodeResourceExhausted, pb.ErrorReason_ERROR_REASON_DEVICE_BUSY
	case errors.Is(err, supervisor.ErrRestarted), errors.Is(err, supervisor.ErrStopped):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_PROCESS_RESTARTED
	case errors.Is(err, devicemgr.ErrNotConnected):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_DEVICE_NOT_CONNECTED
	case errors.Is(err, devicemgr.ErrTimeout):
		return connect.CodeDeadlineExceeded, pb.ErrorReason_ERROR_REASON_DEVICE_TIMEOUT
	case errors.Is(err, devicemgr.ErrNotSettled):
		return connect.CodeFailedPrecondition, pb.ErrorReason_ERROR_REASON_NOT_SETTLED
	case errors.Is(err, devicemgr.ErrBadReply):
		return connect.CodeFailedPrecondition, pb.ErrorReason_ERROR_REASON_BAD_REPLY
	case errors.Is(err, devicemgr.ErrInstrument):
		return connect.CodeFailedPrecondition, pb.ErrorReason_ERROR_REASON_INSTRUMENT_ERROR
	case errors.Is(err, errNoEvents), errors.Is(err, errNoRestart), errors.Is(err, errNoConfig), errors.Is(err, errNotClustered):
		return connect.CodeUnimplemented, pb.ErrorReason_ERROR_REASON_NOT_SUPPORTED
	case errors.Is(err, supervisor.ErrNotFound):
		return connect.CodeNotFound, pb.ErrorReason_ERROR_REASON_PROCESS_NOT_FOUND
	case errors.Is(err, supervisor.ErrNotRunning):
		return connect.CodeFailedPrecondition, pb.ErrorReason_ERROR_REASON_PROCESS_NOT_RUNNING
	case errors.Is(err, supervisor.ErrLeaked), errors.Is(err, supervisor.ErrClosed):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_PROCESS_NOT_RUNNING
	case errors.Is(err, alarm.ErrNotFound):
		return connect.CodeNotFound, pb.ErrorReason_ERROR_REASON_ALARM_NOT_FOUND
	case errors.Is(err, alarm.ErrBadRequest):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_BAD_ALARM_REQUEST
	case errors.Is(err, alarm.ErrNotRunning):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_ALARMS_NOT_RUNNING
	case errors.Is(err, telemetry.ErrStalled):
		return connect.CodeResourceExhausted, pb.ErrorReason_ERROR_REASON_STREAM_STALLED
	case errors.Is(err, errShuttingDown):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_SHUTTING_DOWN
	case errors.Is(err, errNoArchive):
		return connect.CodeUnavailable, pb.ErrorReason_ERROR_REASON_NO_ARCHIVE
	case errors.Is(err, ingest.ErrBadHistoryQuery):
		return connect.CodeInvalidArgument, pb.ErrorReason_ERROR_REASON_BAD_HISTORY_QUERY
	case errors.Is(err, context.Canceled):
		return connect.CodeCanceled, pb.ErrorReason_ERROR_REASON_CANCELLED
	case errors.Is(err, context.DeadlineExceeded):
		return connect.CodeDeadlineExceeded, pb.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED
	case errors.As(err, &ce):
		// Already a status from the Connect transport (a failed Send, say).
		return ce.Code(), reasonOfCode(ce.Code())
	case errors.As(err, &gs):
		// Already a status from the gRPC transport.
		c := connect.Code(gs.GRPCStatus().Code())
		return c, reasonOfCode(c)
	default:
		return connect.CodeInternal, pb.ErrorReason_ERROR_REASON_INTERNAL
	}
}

// codeOf is statusOf's code.
func codeOf(err error) connect.Code {
	c, _ := statusOf(err)
	return c
}

// reasonOfCode is the reason given to a status that arrived without one (from a
// transport or an interceptor).
func reasonOfCode(c connect.Code) pb.ErrorReason {
	switch c {
	case connect.CodeCanceled:
		return pb.ErrorReason_ERROR_REASON_CANCELLED
	case connect.CodeDeadlineExceeded:
		return pb.ErrorReason_ERROR_REASON_DEADLINE_EXCEEDED
	case connect.CodeInvalidArgument:
		return pb.ErrorReason_ERROR_REASON_INVALID_REQUEST
	case connect.CodeUnauthenticated:
		return pb.ErrorReason_ERROR_REASON_UNAUTHENTICATED
	case connect.CodePermissionDenied:
		return pb.ErrorReason_ERROR_REASON_PERMISSION_DENIED
	case connect.CodeUnimplemented:
		return pb.ErrorReason_ERROR_REASON_NOT_SUPPORTED
	case connect.CodeInternal, connect.CodeUnknown, connect.CodeDataLoss:
		return pb.ErrorReason_ERROR_REASON_INTERNAL
	default:
		return pb.ErrorReason_ERROR_REASON_UNSPECIFIED
	}
}

// ReasonName is the ErrorInfo reason string of r: its name without the
// ERROR_REASON_ prefix ("INSTRUMENT_ERROR").
func ReasonName(r pb.ErrorReason) string {
	return strings.TrimPrefix(r.String(), "ERROR_REASON_")
}

// errorInfo is the ErrorInfo detail for err with the given reason, or nil when the
// reason is unspecified.
func errorInfo(err error, reason pb.ErrorReason) *errdetails.ErrorInfo {
	if reason == pb.ErrorReason_ERROR_REASON_UNSPECIFIED {
		return nil
	}
	info := &errdetails.ErrorInfo{Domain: ErrorDomain, Reason: ReasonName(reason)}
	var me metadataError
	if errors.As(err, &me) {
		info.Metadata = me.ErrorMetadata()
	}
	return info
}

// hasErrorInfo reports whether details already hold an ErrorInfo.
func hasErrorInfo(details []any) bool {
	for _, d := range details {
		if _, ok := d.(*errdetails.ErrorInfo); ok {
			return true
		}
	}
	return false
}

// connectError converts an error from the core services to a *connect.Error with
// an ErrorInfo detail. The message keeps the wrapped detail. It returns nil for nil.
func connectError(err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		for _, d := range ce.Details() {
			if v, derr := d.Value(); derr == nil {
				if _, ok := v.(*errdetails.ErrorInfo); ok {
					return ce
				}
			}
		}
		if info := errorInfo(err, reasonOfCode(ce.Code())); info != nil {
			if d, derr := connect.NewErrorDetail(info); derr == nil {
				ce.AddDetail(d)
			}
		}
		return ce
	}
	code, reason := statusOf(err)
	out := connect.NewError(code, err)
	if info := errorInfo(err, reason); info != nil {
		if d, derr := connect.NewErrorDetail(info); derr == nil {
			out.AddDetail(d)
		}
	}
	return out
}

// grpcError converts an error from the core services to a gRPC status error with
// an ErrorInfo detail. The codes of connect-go and grpc-go share their numbering.
// It returns nil for nil.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if st, ok := status.FromError(err); ok {
		if hasErrorInfo(st.Details()) {
			return err
		}
		if info := errorInfo(err, reasonOfCode(connect.Code(st.Code()))); info != nil {
			if withInfo, derr := st.WithDetails(info); derr == nil {
				return withInfo.Err()
			}
		}
		return err
	}
	code, reason := statusOf(err)
	st := status.New(codes.Code(code), err.Error())
	if info := errorInfo(err, reason); info != nil {
		if withInfo, derr := st.WithDetails(info); derr == nil {
			st = withInfo
		}
	}
	return st.Err()
}

// maxQuoted bounds how much of a client's input an error message or a log line
// repeats: a 900 KiB device name must not come back as a 900 KiB error.
const maxQuoted = 64

// quote returns s quoted, cut to its first maxQuoted bytes (at a rune boundary)
// with the full length noted when longer.
func quote(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "... (" + strconv.Itoa(len(s)) + " bytes)"
}
