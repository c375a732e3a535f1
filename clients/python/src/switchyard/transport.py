"""One server's connection settings, channels and generated stubs, shared by
:class:`~switchyard.Client` (blocking grpcio) and
:class:`~switchyard.AsyncClient` (grpc.aio).

Every call carries ``authorization: Bearer <token>`` (when a token is given) and
``x-switchyard-client: switchyard-python/<version>``; the channel's user agent
names the client's version too, so the server can log which client called.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Generic, Sequence, TypeVar, Union, cast

import grpc
import grpc.aio

from switchyard.v1 import (
    alarm_pb2_grpc,
    device_pb2_grpc,
    history_pb2_grpc,
    system_pb2_grpc,
    telemetry_pb2_grpc,
)

from .errors import from_rpc_error
from .version import __version__

#: The client's name and version as sent to the server.
USER_AGENT = f"switchyard-python/{__version__}"

#: Environment variable with a bearer token, used when no token is given.
TOKEN_ENV = "SWITCHYARD_TOKEN"
#: Environment variable naming a file whose first line is the token.
TOKEN_FILE_ENV = "SWITCHYARD_TOKEN_FILE"

#: Channel options matching the server's keepalive policy (server/doc.go): the
#: server accepts pings no more often than every 10 s, pings idle connections
#: every 30 s and drops them after 10 s without an answer. The client pings every
#: 30 s (also without calls, so a dead connection under an idle subscription is
#: found) and waits 10 s for the answer.
KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)

PEM = Union[bytes, str, "os.PathLike[str]", None]


@dataclass(frozen=True)
class TLSConfig:
    """TLS towards a server with a private CA and, for an mTLS identity, a client
    certificate. Each field is PEM bytes or the path of a PEM file; ``ca`` None
    trusts the system's roots, ``cert``/``key`` None presents no certificate."""

    ca: PEM = None
    cert: PEM = None
    key: PEM = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLSConfig: cert and key go together")
        return grpc.ssl_channel_credentials(root_certificates=_pem(self.ca), private_key=_pem(self.key),
                                            certificate_chain=_pem(self.cert))


def _pem(v: PEM) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    with open(v, "rb") as f:
        return f.read()


#: What the ``tls`` argument of a client accepts: None or False for plaintext,
#: True for TLS with the system's roots, PEM root certificates as bytes, a
#: :class:`TLSConfig` (private CA, client certificate), or ready-made
#: grpc.ChannelCredentials.
TLS = Union[None, bool, bytes, TLSConfig, grpc.ChannelCredentials]

Q = TypeVar("Q")
R = TypeVar("R")


def credentials(tls: TLS) -> grpc.ChannelCredentials | None:
    """The channel credentials for a ``tls`` argument (None: plaintext)."""
    if tls is None or tls is False:
        return None
    if tls is True:
        return grpc.ssl_channel_credentials()
    if isinstance(tls, bytes):
        return grpc.ssl_channel_credentials(root_certificates=tls)
    if isinstance(tls, TLSConfig):
        return tls.credentials()
    if isinstance(tls, grpc.ChannelCredentials):
        return tls
    raise TypeError(f"Client tls: want None, bool, PEM bytes, TLSConfig or grpc.ChannelCredentials, got {type(tls).__name__}")


def resolve_token(token: str | None) -> str | None:
    """The token to send: ``token`` if given, else the ``SWITCHYARD_TOKEN``
    environment variable, else the first line of the file named by
    ``SWITCHYARD_TOKEN_FILE``; None when there is none."""
    if token:
        return token
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV].strip()
    path = os.environ.get(TOKEN_FILE_ENV)
    if path:
        return read_token_file(path)
    return None


def read_token_file(path: str) -> str:
    """The token in a file: its first line, without surrounding blanks. Raises
    ValueError naming the file when it is empty."""
    with open(path, encoding="utf-8") as f:
        tok = f.readline().strip()
    if not tok:
        raise ValueError(f"token file {path}: empty")
    return tok


class Stubs:
    """The generated stubs of every service on one channel (blocking or aio)."""

    def __init__(self, channel: grpc.Channel | grpc.aio.Channel) -> None:
        self.channel = channel
        ch = cast(grpc.Channel, channel)  # the stub classes take either kind
        self.by_service: dict[str, Any] = {
            "DeviceService": device_pb2_grpc.DeviceServiceStub(ch),
            "TelemetryService": telemetry_pb2_grpc.TelemetryServiceStub(ch),
            "SystemService": system_pb2_grpc.SystemServiceStub(ch),
            "AlarmService": alarm_pb2_grpc.AlarmServiceStub(ch),
            "HistoryService": history_pb2_grpc.HistoryServiceStub(ch),
        }


@dataclass(frozen=True)
class Rpc(Generic[Q, R]):
    """One RPC by service and method name, typed by its request and response."""

    service: str
    name: str

    @property
    def method(self) -> str:
        """``"Service/Method"``, as error messages name it."""
        return f"{self.service}/{self.name}"

    def bind(self, stubs: Stubs) -> Any:
        """The stub's callable for this RPC."""
        return getattr(stubs.by_service[self.service], self.name)


class Connection:
    """A server address with its credentials, options and metadata; it opens the
    channels of one client (see the module documentation)."""

    def __init__(self, address: str, token: str | None, tls: TLS, timeout: float,
                 options: Sequence[tuple[str, int | str]]) -> None:
        self.address = address
        self.timeout = timeout
        self.creds = credentials(tls)
        self.options: list[tuple[str, int | str]] = [*KEEPALIVE_OPTIONS, ("grpc.primary_user_agent", USER_AGENT),
                                                     *options]
        md: list[tuple[str, str]] = [("x-switchyard-client", USER_AGENT)]
        tok = resolve_token(token)
        if tok:
            md.append(("authorization", f"Bearer {tok}"))
        self.metadata: tuple[tuple[str, str], ...] = tuple(md)

    def sync_channel(self) -> grpc.Channel:
        """A new blocking channel."""
        if self.creds is None:
            return grpc.insecure_channel(self.address, options=self.options)
        return grpc.secure_channel(self.address, self.creds, options=self.options)

    def aio_channel(self) -> grpc.aio.Channel:
        """A new grpc.aio channel, for the running event loop."""
        if self.creds is None:
            return grpc.aio.insecure_channel(self.address, options=self.options)
        return grpc.aio.secure_channel(self.address, self.creds, options=self.options)

    def call(self, stubs: Stubs, rpc: Rpc[Q, R], request: Q, timeout: float | None = None) -> R:
        """A blocking unary call; failures raise the client's exceptions."""
        try:
            resp = rpc.bind(stubs)(request, timeout=self.timeout if timeout is None else timeout,
                                   metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, rpc.method) from None
        return cast(R, resp)

    async def acall(self, stubs: Stubs, rpc: Rpc[Q, R], request: Q, timeout: float | None = None) -> R:
        """A grpc.aio unary call; failures raise the client's exceptions."""
        try:
            resp = await rpc.bind(stubs)(request, timeout=self.timeout if timeout is None else timeout,
                                         metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, rpc.method) from None
        return cast(R, resp)
