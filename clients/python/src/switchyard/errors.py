"""Exceptions raised by the client, chosen in one place from the gRPC status
code and the server's machine-readable reason, never from the message text.

Every error the server returns carries a ``google.rpc.ErrorInfo`` detail (domain
``"switchyard"``; reason the ``ErrorReason`` name without ``ERROR_REASON_``,
e.g. ``"INSTRUMENT_ERROR"``; metadata naming the device, command, field, ...).
The client reads it from the ``grpc-status-details-bin`` trailer and raises:

* one class per status code (:class:`InvalidArgument`, :class:`NotFound`,
  :class:`FailedPrecondition`, :class:`ResourceExhausted`, :class:`Unavailable`,
  :class:`PermissionDenied`, :class:`Unauthenticated`, ...), each also a
  subclass of the matching Python built-in where there is one (``ValueError``,
  ``LookupError``, ``ConnectionError``, ``TimeoutError``, ``PermissionError``);
* a more precise subclass for reasons a program handles on their own:
  :class:`InstrumentError` (the instrument refused the command or reported an
  error; ``instrument_message`` holds its words), :class:`NotSettled`,
  :class:`BadReply`, :class:`DeviceBusy`, :class:`DeviceNotConnected`,
  :class:`NoArchive`.

Every exception keeps the server's message, the status code, the reason and
the ErrorInfo metadata::

    try:
        client.send_command("psu-01", "set_voltage", 99)
    except switchyard.InvalidArgument as err:
        print(err)               # DeviceService/SendCommand: command set_voltage args[0] ...
        print(err.reason)        # BAD_ARGUMENT
        print(err.metadata)      # {'device': 'psu-01', 'command': 'set_voltage', ...}

A reason this client does not know falls back to the class of the status code.
:func:`retryable` says which failures a resuming stream reconnects after:
UNAVAILABLE (the server restarted or shut down, the connection dropped) and the
transient RESOURCE_EXHAUSTED reasons (``STREAM_STALLED``, ``RATE_LIMITED``).
INTERNAL and UNKNOWN are server bugs: never retried.
"""

from __future__ import annotations

from typing import Any, Mapping

import grpc
from google.rpc import error_details_pb2, status_pb2

#: The ErrorInfo domain of the server's errors.
DOMAIN = "switchyard"

_DETAILS_KEY = "grpc-status-details-bin"


class SwitchyardError(Exception):
    """Base class of every error the client raises for a failed call.

    ``code`` is the gRPC status code, ``message`` the server's message,
    ``method`` the RPC that failed (for example ``DeviceService/SendCommand``),
    ``reason`` the server's ErrorInfo reason (``"DEVICE_NOT_FOUND"``; ``""``
    when the failure did not come from a Switchyard server, e.g. a dropped
    connection) and ``metadata`` the ErrorInfo's metadata.
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, method: str = "",
                 reason: str = "", metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.method = method
        self.reason = reason
        self.metadata: dict[str, str] = dict(metadata or {})

    def __str__(self) -> str:
        prefix = f"{self.method}: " if self.method else ""
        return f"{prefix}{self.message}"


class Cancelled(SwitchyardError):
    """The call was cancelled (by this client, usually on close)."""

    code = grpc.StatusCode.CANCELLED


class InvalidArgument(SwitchyardError, ValueError):
    """The request was wrong: unknown command, an argument out of range, a bad
    glob. ``metadata["field"]`` names the field where the server knows it."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(SwitchyardError, TimeoutError):
    """The call (or the device behind it: reason ``DEVICE_TIMEOUT``) did not
    answer in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(SwitchyardError, LookupError):
    """The named device, process or alarm does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(SwitchyardError):
    """What the request would create exists already."""

    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(SwitchyardError, PermissionError):
    """The caller is known but its role may not do this (``metadata["role"]``,
    ``metadata["required_role"]``)."""

    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(SwitchyardError):
    """A limit was reached: the device's command queue (:class:`DeviceBusy`), the
    caller's request rate (``RATE_LIMITED``), the number of streams
    (``TOO_MANY_STREAMS``), or a stream was ended because it stalled
    (``STREAM_STALLED``). Retry later, slower, or with fewer streams."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(SwitchyardError):
    """The request was valid but the system is not in a state to do it: the
    instrument refused (:class:`InstrumentError`), a read-back did not settle
    (:class:`NotSettled`), a reply did not fit its format (:class:`BadReply`), a
    process is not running, a device was removed. Retrying the same call does
    not help until the state changes."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(SwitchyardError):
    """The command was aborted while the device executed it (see
    :meth:`Client.abort_command`)."""

    code = grpc.StatusCode.ABORTED


class OutOfRange(SwitchyardError, ValueError):
    """A value was past the end of a valid range."""

    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(SwitchyardError, NotImplementedError):
    """The server (or this client) does not offer the service or method."""

    code = grpc.StatusCode.UNIMPLEMENTED


class InternalError(SwitchyardError):
    """A bug or an unexpected failure in the server (INTERNAL, UNKNOWN,
    DATA_LOSS). Not retried: report it with the message."""

    code = grpc.StatusCode.INTERNAL


class Unavailable(SwitchyardError, ConnectionError):
    """The server or the device cannot be reached right now (the server is
    shutting down or restarting, the connection dropped, the device is not
    connected); retrying may help."""

    code = grpc.StatusCode.UNAVAILABLE


class Unauthenticated(SwitchyardError, PermissionError):
    """The server wants a (different) token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class InstrumentError(FailedPrecondition):
    """The instrument itself refused the command or reported an error of its own
    (reason ``INSTRUMENT_ERROR``). ``instrument_message`` holds its words (for
    example ``-222,"Data out of range"``)."""

    @property
    def instrument_message(self) -> str:
        """The instrument's own error text ("" if the server did not give it)."""
        return self.metadata.get("instrument_message", "")


class NotSettled(FailedPrecondition):
    """A write's read-back channel did not settle within its tolerance in time
    (reason ``NOT_SETTLED``)."""


class BadReply(FailedPrecondition):
    """The instrument's reply did not match the command's reply format (reason
    ``BAD_REPLY``)."""


class DeviceBusy(ResourceExhausted):
    """Too many commands are waiting for the device (reason ``DEVICE_BUSY``)."""


class DeviceNotConnected(Unavailable):
    """The device is not connected (reason ``DEVICE_NOT_CONNECTED``); retry once
    it is."""


class NoArchive(Unavailable):
    """The server does not archive, so it has no history and cannot replay
    (reason ``NO_ARCHIVE``)."""


class DeviceRemoved(FailedPrecondition):
    """The device was removed from the server's configuration by a reload while
    the command waited, or before it was sent (reason ``DEVICE_REMOVED``)."""


class ConfigInvalid(InvalidArgument):
    """A configuration reload was refused: the file has problems, nothing was
    changed (reason ``CONFIG_INVALID``). ``problems`` lists every one, each as
    ``file:line: field: message``."""

    @property
    def problems(self) -> list[str]:
        """Every problem of the refused configuration, one per line of the
        message after its first."""
        return [line for line in self.message.split("\n")[1:] if line.strip()]


_BY_CODE: dict[grpc.StatusCode, type[SwitchyardError]] = {
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRange,
    grpc.StatusCode.UNIMPLEMENTED: Unimplemented,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
}

#: Reasons with a class of their own, and the status code the server gives them
#: (a reason arriving with another code keeps the code's class).
_BY_REASON: dict[str, tuple[grpc.StatusCode, type[SwitchyardError]]] = {
    "INSTRUMENT_ERROR": (grpc.StatusCode.FAILED_PRECONDITION, InstrumentError),
    "NOT_SETTLED": (grpc.StatusCode.FAILED_PRECONDITION, NotSettled),
    "BAD_REPLY": (grpc.StatusCode.FAILED_PRECONDITION, BadReply),
    "DEVICE_BUSY": (grpc.StatusCode.RESOURCE_EXHAUSTED, DeviceBusy),
    "DEVICE_NOT_CONNECTED": (grpc.StatusCode.UNAVAILABLE, DeviceNotConnected),
    "NO_ARCHIVE": (grpc.StatusCode.UNAVAILABLE, NoArchive),
    "DEVICE_REMOVED": (grpc.StatusCode.FAILED_PRECONDITION, DeviceRemoved),
    "CONFIG_INVALID": (grpc.StatusCode.INVALID_ARGUMENT, ConfigInvalid),
}

#: RESOURCE_EXHAUSTED reasons that pass by themselves: a resuming stream
#: reconnects after them (with backoff).
_TRANSIENT_EXHAUSTED = frozenset({"STREAM_STALLED", "RATE_LIMITED"})


def error_class(code: grpc.StatusCode, reason: str = "") -> type[SwitchyardError]:
    """The exception class for a status code and an ErrorInfo reason."""
    by_reason = _BY_REASON.get(reason)
    if by_reason is not None and by_reason[0] == code:
        return by_reason[1]
    return _BY_CODE.get(code, SwitchyardError)


def error_info(trailing_metadata: Any) -> tuple[str, dict[str, str]]:
    """The (reason, metadata) of the ``switchyard`` ErrorInfo in a call's
    trailing metadata, decoded from its ``grpc-status-details-bin``
    (google.rpc.Status); ``("", {})`` when there is none."""
    for key, value in trailing_metadata or ():
        if key != _DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            st = status_pb2.Status.FromString(value)
        except Exception:  # a damaged trailer: fall back to the status code
            return "", {}
        for detail in st.details:
            info = error_details_pb2.ErrorInfo()
            if detail.Is(info.DESCRIPTOR) and detail.Unpack(info) and info.domain == DOMAIN:
                return str(info.reason), {str(k): str(v) for k, v in info.metadata.items()}
    return "", {}


def from_rpc_error(err: grpc.RpcError, method: str = "") -> SwitchyardError:
    """Returns the client exception for a failed gRPC call (sync or grpc.aio)."""
    code_fn = getattr(err, "code", None)
    code: grpc.StatusCode = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details_fn = getattr(err, "details", None)
    details: str | None = details_fn() if callable(details_fn) else str(err)
    trailers_fn = getattr(err, "trailing_metadata", None)
    reason, metadata = error_info(trailers_fn() if callable(trailers_fn) else None)
    cls = error_class(code, reason)
    return cls(details or code.name, code=code, method=method, reason=reason, metadata=metadata)


def retryable(err: SwitchyardError) -> bool:
    """Whether a resuming stream reconnects after ``err``: UNAVAILABLE (except
    NO_ARCHIVE, which a reconnect cannot change) and RESOURCE_EXHAUSTED with
    reason STREAM_STALLED or RATE_LIMITED. Never INTERNAL or UNKNOWN."""
    if err.code == grpc.StatusCode.UNAVAILABLE:
        return err.reason != "NO_ARCHIVE"
    return err.code == grpc.StatusCode.RESOURCE_EXHAUSTED and err.reason in _TRANSIENT_EXHAUSTED


__all__ = [
    "Aborted",
    "AlreadyExists",
    "BadReply",
    "Cancelled",
    "DOMAIN",
    "DeadlineExceeded",
    "DeviceBusy",
    "DeviceNotConnected",
    "FailedPrecondition",
    "InstrumentError",
    "InternalError",
    "InvalidArgument",
    "NoArchive",
    "NotFound",
    "NotSettled",
    "OutOfRange",
    "PermissionDenied",
    "ResourceExhausted",
    "SwitchyardError",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "error_class",
    "error_info",
    "from_rpc_error",
    "retryable",
]
