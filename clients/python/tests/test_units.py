"""Pure logic without a server: times, the exception map, the two clients' surfaces."""

import datetime as dt
import inspect
import time

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import switchyard
from switchyard import AsyncClient, Client
from switchyard.errors import error_class, error_info, from_rpc_error, retryable
from switchyard.times import to_ns, to_seconds


def test_times_accept_datetimes_seconds_and_timedeltas():
    assert to_ns(dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc), "start", "history") == 1767225600 * 10**9
    assert to_ns(dt.datetime(2026, 1, 1), "start", "history") == 1767225600 * 10**9  # naive is UTC
    assert to_ns(1.5, "start", "history") == 1_500_000_000
    now = time.time_ns()
    # In the past, a timedelta counts back from now whatever its sign.
    for td in (dt.timedelta(minutes=10), -dt.timedelta(minutes=10)):
        got = to_ns(td, "start", "history")
        assert abs(got - (now - 600 * 10**9)) < 5 * 10**9
    assert abs(to_ns(dt.timedelta(hours=1), "until", "shelve", future=True) - (now + 3600 * 10**9)) < 5 * 10**9
    assert to_seconds(dt.timedelta(milliseconds=250), "interval", "x") == 0.25 and to_seconds(2, "t", "x") == 2.0


@pytest.mark.parametrize("bad", ["yesterday", None, True])
def test_times_reject_other_types_naming_the_argument(bad):
    with pytest.raises(TypeError, match="history start: want a datetime, Unix seconds or a timedelta"):
        to_ns(bad, "start", "history")
    with pytest.raises(TypeError, match="send_command timeout: want seconds or a timedelta"):
        to_seconds(bad, "timeout", "send_command")


class FakeRpcError(grpc.RpcError):
    """What grpcio raises: a status code, details and trailing metadata."""

    def __init__(self, code, details, reason="", metadata=None, domain="switchyard"):
        self._code, self._details = code, details
        self._trailers = ()
        if reason:
            info = error_details_pb2.ErrorInfo(reason=reason, domain=domain, metadata=metadata or {})
            st = status_pb2.Status(code=code.value[0], message=details)
            st.details.add().Pack(info)
            self._trailers = (("grpc-status-details-bin", st.SerializeToString()),)

    def code(self):
        return self._code

    def details(self):
        return self._details

    def trailing_metadata(self):
        return self._trailers


C = grpc.StatusCode


@pytest.mark.parametrize("code,reason,cls", [
    (C.FAILED_PRECONDITION, "INSTRUMENT_ERROR", switchyard.InstrumentError),
    (C.FAILED_PRECONDITION, "NOT_SETTLED", switchyard.NotSettled),
    (C.FAILED_PRECONDITION, "BAD_REPLY", switchyard.BadReply),
    (C.FAILED_PRECONDITION, "PROCESS_NOT_RUNNING", switchyard.FailedPrecondition),
    (C.RESOURCE_EXHAUSTED, "DEVICE_BUSY", switchyard.DeviceBusy),
    (C.RESOURCE_EXHAUSTED, "RATE_LIMITED", switchyard.ResourceExhausted),
    (C.UNAVAILABLE, "DEVICE_NOT_CONNECTED", switchyard.DeviceNotConnected),
    (C.UNAVAILABLE, "NO_ARCHIVE", switchyard.NoArchive),
    (C.UNAVAILABLE, "SHUTTING_DOWN", switchyard.Unavailable),
    (C.PERMISSION_DENIED, "PERMISSION_DENIED", switchyard.PermissionDenied),
    (C.UNAUTHENTICATED, "UNAUTHENTICATED", switchyard.Unauthenticated),
    (C.INTERNAL, "INTERNAL", switchyard.InternalError),
    (C.UNKNOWN, "", switchyard.InternalError),
    (C.INVALID_ARGUMENT, "BAD_ARGUMENT", switchyard.InvalidArgument),
    (C.NOT_FOUND, "DEVICE_NOT_FOUND", switchyard.NotFound),
    (C.ABORTED, "ABORTED", switchyard.Aborted),
    (C.DEADLINE_EXCEEDED, "DEVICE_TIMEOUT", switchyard.DeadlineExceeded),
    (C.UNIMPLEMENTED, "NOT_SUPPORTED", switchyard.Unimplemented),
    (C.CANCELLED, "CANCELLED", switchyard.Cancelled),
    # A known reason with another code than the server gives it keeps the code's class.
    (C.INTERNAL, "INSTRUMENT_ERROR", switchyard.InternalError),
    # A reason this client does not know falls back to the code.
    (C.FAILED_PRECONDITION, "SOMETHING_NEW", switchyard.FailedPrecondition),
])
def test_exception_class_comes_from_code_and_reason(code, reason, cls):
    err = from_rpc_error(FakeRpcError(code, "the message", reason, {"device": "psu-01"}), "DeviceService/SendCommand")
    assert type(err) is cls
    assert (err.code, err.reason, err.message) == (code, reason, "the message")
    assert str(err) == "DeviceService/SendCommand: the message"
    if reason:
        assert err.metadata == {"device": "psu-01"}


def test_instrument_error_carries_the_instruments_words():
    err = from_rpc_error(FakeRpcError(C.FAILED_PRECONDITION, "psu-01: instrument error: -222,\"Data out of range\"",
                                      "INSTRUMENT_ERROR", {"instrument_message": "-222,\"Data out of range\""}))
    assert isinstance(err, switchyard.InstrumentError) and isinstance(err, switchyard.FailedPrecondition)
    assert err.instrument_message == "-222,\"Data out of range\""


def test_reason_is_never_read_from_the_message_text():
    # "does not archive" in the text without the reason is a plain Unavailable ...
    err = from_rpc_error(FakeRpcError(C.UNAVAILABLE, "server does not archive"))
    assert type(err) is switchyard.Unavailable and err.reason == ""
    # ... and the reason without those words is NoArchive; another domain's
    # ErrorInfo is not the server's.
    assert type(from_rpc_error(FakeRpcError(C.UNAVAILABLE, "x", "NO_ARCHIVE"))) is switchyard.NoArchive
    assert type(from_rpc_error(FakeRpcError(C.UNAVAILABLE, "x", "NO_ARCHIVE", domain="other"))) is switchyard.Unavailable
    assert error_info([("grpc-status-details-bin", b"\xff\xff not a status")]) == ("", {})


def test_only_unavailable_and_transient_exhaustion_are_retried():
    def r(code, reason=""):
        return retryable(error_class(code, reason)("m", code=code, reason=reason))

    assert r(C.UNAVAILABLE) and r(C.UNAVAILABLE, "SHUTTING_DOWN") and r(C.UNAVAILABLE, "PROCESS_RESTARTED")
    assert r(C.RESOURCE_EXHAUSTED, "STREAM_STALLED") and r(C.RESOURCE_EXHAUSTED, "RATE_LIMITED")
    assert not r(C.UNAVAILABLE, "NO_ARCHIVE")
    assert not r(C.RESOURCE_EXHAUSTED, "TOO_MANY_STREAMS")
    for code in (C.INTERNAL, C.UNKNOWN, C.DATA_LOSS, C.INVALID_ARGUMENT, C.PERMISSION_DENIED, C.UNAUTHENTICATED,
                 C.FAILED_PRECONDITION, C.NOT_FOUND, C.DEADLINE_EXCEEDED):
        assert not r(code), code


def _public(cls):
    return {n: f for n, f in inspect.getmembers(cls, callable) if not n.startswith("_")}


def test_async_client_has_the_same_methods_arguments_and_return_types():
    sync, aio = _public(Client), _public(AsyncClient)
    assert set(sync) == set(aio)
    for name in sync:
        s, a = inspect.signature(sync[name]), inspect.signature(aio[name])
        assert list(s.parameters.values()) == list(a.parameters.values()), name
        assert s.return_annotation == a.return_annotation, name
        assert inspect.iscoroutinefunction(aio[name]) != name.startswith(("watch_", "subscribe")), name
        assert aio[name].__doc__ == sync[name].__doc__

