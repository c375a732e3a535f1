"""Exceptions raised by the client, mapped from gRPC status codes in one place.

Every exception keeps the server's message (which names the device, command or
argument that was wrong) and the gRPC status code it came from::

    try:
        client.send_command("psu-01", "set_voltage", 99)
    except switchyard.InvalidArgument as err:
        print(err)          # command set_voltage args[0] (volts): 99 is above ...
        print(err.code)     # StatusCode.INVALID_ARGUMENT
"""

from __future__ import annotations

import grpc


class SwitchyardError(Exception):
    """Base class of every error the client raises for a failed call.

    ``code`` is the gRPC status code, ``message`` the server's message and
    ``method`` the RPC that failed (for example ``DeviceService/SendCommand``).
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str, *, code: grpc.StatusCode | None = None, method: str = ""):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.method = method

    def __str__(self) -> str:
        prefix = f"{self.method}: " if self.method else ""
        return f"{prefix}{self.message}"


class InvalidArgument(SwitchyardError, ValueError):
    """The request was wrong: unknown command, an argument out of range, a bad glob."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class NotFound(SwitchyardError, LookupError):
    """The named device (or other object) does not exist."""

    code = grpc.StatusCode.NOT_FOUND


class Unavailable(SwitchyardError, ConnectionError):
    """The server or the device cannot be reached right now; retrying may help."""

    code = grpc.StatusCode.UNAVAILABLE


class DeadlineExceeded(SwitchyardError, TimeoutError):
    """The call (or the device behind it) did not answer in time."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unauthenticated(SwitchyardError, PermissionError):
    """The server wants a (different) token."""

    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(SwitchyardError, PermissionError):
    """The token is valid but not allowed to do this."""

    code = grpc.StatusCode.PERMISSION_DENIED


class Unimplemented(SwitchyardError, NotImplementedError):
    """The server (or this client) does not offer the service or method."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Aborted(SwitchyardError):
    """The command was aborted while the device executed it (see
    :meth:`Client.abort_command`)."""

    code = grpc.StatusCode.ABORTED


class Cancelled(SwitchyardError):
    """The call was cancelled (by this client, usually on close)."""

    code = grpc.StatusCode.CANCELLED


_BY_CODE: dict[grpc.StatusCode, type[SwitchyardError]] = {
    cls.code: cls
    for cls in (
        Aborted,
        InvalidArgument,
        NotFound,
        Unavailable,
        DeadlineExceeded,
        Unauthenticated,
        PermissionDenied,
        Unimplemented,
        Cancelled,
    )
}

#: Status codes after which a subscription reconnects instead of failing.
RETRYABLE = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})


def from_rpc_error(err: grpc.RpcError, method: str = "") -> SwitchyardError:
    """Returns the client exception for a failed gRPC call (sync or grpc.aio)."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    cls = _BY_CODE.get(code, SwitchyardError)
    return cls(details or code.name, code=code, method=method)
