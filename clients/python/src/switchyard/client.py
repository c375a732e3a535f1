"""The Pythonic client: one object per server, plain values in and out."""

from __future__ import annotations

import dataclasses
import datetime as dt
import getpass
import os
from typing import Callable, Iterator, NamedTuple, Sequence, Union

import grpc
from google.protobuf import duration_pb2

from switchyard.v1 import (
    alarm_pb2,
    alarm_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    telemetry_pb2,
    telemetry_pb2_grpc,
)

from .alarms import Alarm, AlarmLimits, AlarmWatch, alarm_from_pb, limits_to_pb
from .backoff import Backoff
from .errors import InvalidArgument, Unimplemented, from_rpc_error
from .model import (
    CommandReply,
    Device,
    Process,
    Sample,
    device_from_pb,
    process_from_pb,
    sample_from_pb,
    value_from_pb,
)
from .sequence import SeqEvent
from .subscription import Subscription, selector
from .supervision import SupervisionWatch
from .watch import StreamWatch

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

@dataclasses.dataclass(frozen=True)
class TLSConfig:
    """TLS towards a server with a private CA and, for an mTLS identity, a client
    certificate. Each field is PEM bytes or a path to a PEM file; ``ca`` None uses
    the system's roots, ``cert``/``key`` None presents no certificate."""

    ca: Union[bytes, str, os.PathLike, None] = None
    cert: Union[bytes, str, os.PathLike, None] = None
    key: Union[bytes, str, os.PathLike, None] = None

    def credentials(self) -> grpc.ChannelCredentials:
        if (self.cert is None) != (self.key is None):
            raise ValueError("TLSConfig: cert and key go together")
        return grpc.ssl_channel_credentials(
            root_certificates=_pem(self.ca), private_key=_pem(self.key), certificate_chain=_pem(self.cert))


def _pem(v: Union[bytes, str, os.PathLike, None]) -> bytes | None:
    if v is None or isinstance(v, bytes):
        return v
    with open(v, "rb") as f:
        return f.read()


def token_from_env(token: str | None = None, token_file: str | None = None,
                   environ: dict[str, str] | None = None) -> str | None:
    """The bearer token to use: ``token`` if given, else the contents of
    ``token_file``, else ``$SWITCHYARD_TOKEN``, else the contents of the file
    named by ``$SWITCHYARD_TOKEN_FILE`` (surrounding whitespace removed), else
    None. A token kept in a file (mode 0600) stays out of ``ps`` and shell
    history."""
    env = os.environ if environ is None else environ
    if token:
        return token
    path = token_file or (None if env.get("SWITCHYARD_TOKEN") else env.get("SWITCHYARD_TOKEN_FILE"))
    if path:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    return env.get("SWITCHYARD_TOKEN") or None


#: What the ``tls`` argument of :class:`Client` accepts: None or False for
#: plaintext, True for TLS with the system's roots, PEM root certificates as bytes,
#: a :class:`TLSConfig` (CA and client certificate), or ready-made
#: grpc.ChannelCredentials.
TLS = Union[None, bool, bytes, TLSConfig, grpc.ChannelCredentials]

When = Union[dt.datetime, int, float]


def _credentials(tls: TLS) -> grpc.ChannelCredentials | None:
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
    raise TypeError(f"Client tls: want None, bool, PEM bytes or grpc.ChannelCredentials, got {type(tls).__name__}")


class Client:
    """A connection to one Switchyard server's gRPC port.

    ``address`` is host:port (default ``127.0.0.1:7400``); ``token``, if given, is
    sent as ``authorization: Bearer <token>`` on every call; ``tls`` selects
    transport security (see :data:`TLS`); ``timeout`` bounds every unary call in
    seconds. Failed calls raise :class:`~switchyard.errors.SwitchyardError`
    subclasses carrying the server's message.

    A Client is safe to use from several threads (grpcio channels are); close it
    with :meth:`close` or a ``with`` block. Do not share one across ``fork``.
    """

    def __init__(self, address: str = "127.0.0.1:7400", token: str | None = None, tls: TLS = None,
                 *, timeout: float = 10.0, options: Sequence[tuple[str, int | str]] = ()) -> None:
        self.address = address
        self.timeout = timeout
        self._creds = _credentials(tls)
        self._options = list(KEEPALIVE_OPTIONS) + list(options)
        self._metadata: tuple[tuple[str, str], ...] = (("x-switchyard-client", "switchyard-python"),)
        if token:
            self._metadata += (("authorization", f"Bearer {token}"),)
        if self._creds is None:
            self._channel = grpc.insecure_channel(address, options=self._options)
        else:
            self._channel = grpc.secure_channel(address, self._creds, options=self._options)
        self._devices = device_pb2_grpc.DeviceServiceStub(self._channel)
        self._telemetry = telemetry_pb2_grpc.TelemetryServiceStub(self._channel)
        self._system = system_pb2_grpc.SystemServiceStub(self._channel)
        self._alarms = alarm_pb2_grpc.AlarmServiceStub(self._channel)
        self._history_stub = None

    def _aio_channel(self) -> grpc.aio.Channel:
        """A new grpc.aio channel with this client's settings, for the running loop."""
        if self._creds is None:
            return grpc.aio.insecure_channel(self.address, options=self._options)
        return grpc.aio.secure_channel(self.address, self._creds, options=self._options)

    def _unary(self, method: str, fn: Callable, request, timeout: float | None = None):
        try:
            return fn(request, timeout=self.timeout if timeout is None else timeout, metadata=self._metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, method) from None

    def close(self) -> None:
        """Closes the channel; calls and subscriptions in flight end. Idempotent."""
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.address!r})"

    # -- devices -------------------------------------------------------------------

    def devices(self) -> list[Device]:
        """Returns every configured device with its current state."""
        resp = self._unary("DeviceService/ListDevices", self._devices.ListDevices, device_pb2.ListDevicesRequest())
        return [device_from_pb(d) for d in resp.devices]

    def device(self, name: str) -> Device:
        """Returns one device by name; raises NotFound if there is none."""
        resp = self._unary("DeviceService/GetDevice", self._devices.GetDevice, device_pb2.GetDeviceRequest(name=name))
        return device_from_pb(resp.device)

    def send_command(self, device: str, name: str | None = None, *args: object, raw: str | None = None,
                     timeout: float | None = None) -> CommandReply:
        """Sends a named command with its arguments (``send_command("psu-01",
        "set_voltage", 24)``) or, with ``raw=``, a raw line, and returns the reply
        once the device has executed it. ``timeout`` (seconds) is how long the
        server waits for the device; the call itself may take a little longer.
        Raises InvalidArgument for an unknown command or a bad argument."""
        if (name is None) == (raw is None):
            raise ValueError("send_command: give exactly one of name or raw=")
        if raw is not None and args:
            raise ValueError("send_command: a raw line takes no args")
        req = device_pb2.SendCommandRequest(device=device, args=[_arg(a) for a in args])
        if raw is not None:
            req.raw = raw
        else:
            req.name = name
        call_timeout = self.timeout
        if timeout is not None:
            req.timeout.CopyFrom(duration_pb2.Duration(seconds=int(timeout), nanos=int((timeout % 1) * 1e9)))
            call_timeout = max(self.timeout, timeout + 5)
        resp = self._unary("DeviceService/SendCommand", self._devices.SendCommand, req, call_timeout)
        return CommandReply(resp.reply, tuple(value_from_pb(v) for v in resp.values))

    def abort_command(self, device: str, reason: str = "") -> str:
        """Aborts the command ``device`` is executing, ahead of its queued commands,
        and returns it (for example ``"set_voltage 24"``), or ``""`` if the device
        was idle. The aborted :meth:`send_command` raises :class:`Aborted` with
        ``reason`` in its message. Raises NotFound for an unknown device."""
        req = device_pb2.AbortCommandRequest(device=device, reason=reason)
        return self._unary("DeviceService/AbortCommand", self._devices.AbortCommand, req).aborted

    def watch_devices(self, devices: Sequence[str] | str = ()) -> DeviceWatch:
        """Returns an iterator of (device, timestamp_ns): the current state of every
        selected device, then each change, until cancelled or the server stops.
        Its ``cancel()`` may be called from any thread."""
        if isinstance(devices, str):
            devices = [devices]
        call = self._devices.WatchDevices(device_pb2.WatchDevicesRequest(devices=list(devices)), metadata=self._metadata)
        return DeviceWatch(call)

    # -- telemetry -----------------------------------------------------------------

    def latest(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = ()) -> list[Sample]:
        """Returns the most recent sample of each channel matching the glob patterns
        (empty: all)."""
        req = telemetry_pb2.GetLatestRequest(selector=selector(devices, channels))
        resp = self._unary("TelemetryService/GetLatest", self._telemetry.GetLatest, req)
        return [sample_from_pb(s) for s in resp.samples]

    def subscribe(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (), *,
                  batch_window_ms: int = 0, max_batch: int = 0, reconnect: bool = True,
                  backoff: Backoff | None = None, on_event: Callable[[SeqEvent], None] | None = None,
                  on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                  resume: bool = True) -> Subscription:
        """Returns a live subscription to the channels matching the glob patterns.

        Iterate it (``for batch in sub``) or iterate it asynchronously on grpc.aio
        (``async for batch in sub``); each item is a Batch of plain Samples. With
        ``reconnect`` (the default) a broken stream is re-established with
        ``backoff``; with ``resume`` (the default) it replays the server's archive
        from where it stopped, so nothing is missed or repeated (a server that does
        not archive resumes live). Every sequence gap, repeat or server restart is
        reported (``on_event``, ``Batch.events``, ``Subscription.events``)."""
        req = telemetry_pb2.SubscribeRequest(selector=selector(devices, channels),
                                             batch_window_ms=batch_window_ms, max_batch=max_batch)
        return Subscription(self, req, reconnect=reconnect, backoff=backoff, on_event=on_event,
                            on_reconnect=on_reconnect, resume=resume)

    def history(self, device: str, channel: str, start: When | None = None, end: When | None = None,
                limit: int | None = None, *, start_ns: int | None = None, end_ns: int | None = None) -> History:
        """Returns the archived samples of one channel in [``start``, ``end``)
        (datetimes, or Unix seconds; no ``end``: now; ``start_ns``/``end_ns`` give
        exact nanoseconds instead), oldest first, as plain Samples in a list whose
        ``truncated`` says the range held more than ``limit`` (server default
        10,000, at most 100,000): ask again with ``start_ns=rows.next_start_ns``.
        Timestamps have the archive's microsecond precision.
        Raises Unavailable when the server archives nowhere."""
        req = self._history_request(device, channel, start, end, limit, start_ns, end_ns)
        resp = self._unary("HistoryService/QueryHistory", self._history().QueryHistory, req)
        return History((sample_from_pb(s) for s in resp.samples), truncated=resp.truncated)

    def history_buckets(self, device: str, channel: str, start: When | None = None, end: When | None = None, *,
                        interval: float, aggregate: str = "avg", limit: int | None = None,
                        start_ns: int | None = None, end_ns: int | None = None) -> History:
        """Returns one channel's archive downsampled into buckets of ``interval``
        seconds (at least 1 ms): a list of Bucket(timestamp_ns, value, count) with
        ``aggregate`` ("avg", "min", "max", "first", "last" or "count") of each
        interval's good numeric samples; ``truncated`` as for :meth:`history`."""
        req = self._history_request(device, channel, start, end, limit, start_ns, end_ns)
        try:
            req.aggregate = _history_pb2().Aggregate.Value("AGGREGATE_" + aggregate.upper())
        except ValueError:
            raise ValueError(f"history_buckets aggregate: want avg, min, max, first, last or count, "
                             f"got {aggregate!r}") from None
        if not interval >= 0.001:
            raise ValueError(f"history_buckets interval: want at least 0.001 s, got {interval!r}")
        req.interval_ms = round(interval * 1000)
        resp = self._unary("HistoryService/QueryHistory", self._history().QueryHistory, req)
        return History((Bucket(b.timestamp_ns, b.value, b.count) for b in resp.buckets), truncated=resp.truncated)

    def _history_request(self, device, channel, start, end, limit, start_ns, end_ns):
        pb = _history_pb2()
        if (start is None) == (start_ns is None):
            raise TypeError("history: give exactly one of start or start_ns=")
        if end is not None and end_ns is not None:
            raise TypeError("history: give at most one of end or end_ns=")
        req = pb.QueryHistoryRequest(device=device, channel=channel,
                                     start_ns=_ns(start, "start") if start_ns is None else int(start_ns))
        if end is not None or end_ns is not None:
            req.end_ns = _ns(end, "end") if end_ns is None else int(end_ns)
        if limit is not None:
            if limit < 1:
                raise ValueError(f"history limit: want >= 1, got {limit}")
            req.limit = limit
        return req

    def _history(self):
        if self._history_stub is None:
            from switchyard.v1 import history_pb2_grpc

            self._history_stub = history_pb2_grpc.HistoryServiceStub(self._channel)
        return self._history_stub

    # -- alarms ------------------------------------------------------------------

    def alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
               groups: Sequence[str] | str = (), *, include_shelved: bool = False) -> list[Alarm]:
        """Returns the active alarms (in alarm, or latched and not acknowledged)
        matching the glob patterns (empty: all); shelved ones only with
        ``include_shelved``."""
        req = alarm_pb2.ListActiveAlarmsRequest(filter=_alarm_filter(devices, channels, groups),
                                                include_shelved=include_shelved)
        resp = self._unary("AlarmService/ListActiveAlarms", self._alarms.ListActiveAlarms, req)
        return [alarm_from_pb(a) for a in resp.alarms]

    def alarm(self, device: str, channel: str) -> Alarm:
        """Returns one channel's alarm state and limits, active or not; raises
        NotFound if no alarm rule covers the channel."""
        req = alarm_pb2.GetAlarmLimitsRequest(device=device, channel=channel)
        resp = self._unary("AlarmService/GetAlarmLimits", self._alarms.GetAlarmLimits, req)
        return alarm_from_pb(resp.alarm)

    def acknowledge(self, device: str, channel: str, who: str | None = None, comment: str = "") -> Alarm:
        """Acknowledges a channel's alarm and returns its state after. ``who``
        defaults to the OS user name. Acknowledging twice is harmless; a channel
        not in alarm raises InvalidArgument, one without alarm rule NotFound."""
        req = alarm_pb2.AcknowledgeRequest(device=device, channel=channel, who=_who(who), comment=comment)
        resp = self._unary("AlarmService/Acknowledge", self._alarms.Acknowledge, req)
        return alarm_from_pb(resp.alarm)

    def shelve(self, device: str, channel: str, until: When | dt.timedelta | None, who: str | None = None,
               comment: str = "") -> Alarm:
        """Hides a channel's alarm from panels until ``until`` (a datetime, Unix
        seconds, or a timedelta from now); ``None`` unshelves it. Returns the
        alarm's state after. ``who`` defaults to the OS user name."""
        if until is None:
            until_ns = 0
        elif isinstance(until, dt.timedelta):
            until_ns = int((dt.datetime.now(dt.timezone.utc) + until).timestamp() * 1e9)
        else:
            until_ns = _ns(until, "until", "shelve")
        req = alarm_pb2.ShelveRequest(device=device, channel=channel, until_ns=until_ns, who=_who(who),
                                      comment=comment)
        resp = self._unary("AlarmService/Shelve", self._alarms.Shelve, req)
        return alarm_from_pb(resp.alarm)

    def set_alarm_limits(self, device: str, channel: str, limits: AlarmLimits, who: str | None = None,
                         comment: str = "") -> Alarm:
        """Replaces a channel's alarm limits at run time (recorded as a
        LIMITS_CHANGED transition) and returns the alarm under the new limits.
        Bad limits raise InvalidArgument naming the field."""
        req = alarm_pb2.SetAlarmLimitsRequest(device=device, channel=channel, limits=limits_to_pb(limits),
                                              who=_who(who), comment=comment)
        resp = self._unary("AlarmService/SetAlarmLimits", self._alarms.SetAlarmLimits, req)
        return alarm_from_pb(resp.alarm)

    def watch_alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
                     groups: Sequence[str] | str = (), *, include_active: bool = True) -> AlarmWatch:
        """Returns an iterator of AlarmTransition for the alarms matching the glob
        patterns: with ``include_active``, first one ``"ACTIVE"`` item per alarm
        active when the stream began, then every transition, until cancelled or
        the server stops. See :class:`~switchyard.alarms.AlarmWatch`."""
        f = _alarm_filter(devices, channels, groups)

        def list_active() -> list[Alarm]:
            req = alarm_pb2.ListActiveAlarmsRequest(filter=f, include_shelved=True)
            resp = self._unary("AlarmService/ListActiveAlarms", self._alarms.ListActiveAlarms, req)
            return [alarm_from_pb(a) for a in resp.alarms]

        return AlarmWatch(self, alarm_pb2.WatchAlarmsRequest(filter=f), include_active, list_active)

    # -- system --------------------------------------------------------------------

    def supervision_tree(self) -> Process:
        """Returns a snapshot of the server's supervision tree."""
        resp = self._unary("SystemService/GetSupervisionTree", self._system.GetSupervisionTree,
                           system_pb2.GetSupervisionTreeRequest())
        return process_from_pb(resp.root)

    def watch_supervision(self, include_snapshot: bool = True, processes: Sequence[str] | str = (),
                          kinds: Sequence[str] | str = ()) -> SupervisionWatch:
        """Returns an iterator over the supervision tree's lifecycle: first the
        whole tree as a Process (with ``include_snapshot``; no event falls between
        it and the events), then a SupervisionEvent per change, until cancelled or
        the server stops. ``processes`` keeps only events about processes whose
        path below the root matches one of the glob patterns (``"devices/psu-0*"``;
        ``"devices"`` for the device supervisor itself); ``kinds`` only those kinds
        (``"STATUS"``, ``"EXITED"``, ...). Raises InvalidArgument for a bad pattern
        or an unknown kind."""
        if isinstance(processes, str):
            processes = [processes]
        if isinstance(kinds, str):
            kinds = [kinds]
        kind_values = []
        for k in kinds:
            try:
                kind_values.append(system_pb2.SupervisionEventKind.Value("SUPERVISION_EVENT_KIND_" + k.upper()))
            except ValueError:
                raise InvalidArgument(f"kinds: unknown supervision event kind {k!r}",
                                      method="SystemService/WatchSupervisionEvents") from None
        req = system_pb2.WatchSupervisionEventsRequest(include_snapshot=include_snapshot,
                                                       processes=list(processes), kinds=kind_values)
        return SupervisionWatch(self._system.WatchSupervisionEvents(req, metadata=self._metadata))


def _arg(a: object) -> str:
    if isinstance(a, bool):
        return "ON" if a else "OFF"
    return str(a)


class Bucket(NamedTuple):
    """One interval of downsampled history: its start (ns since the Unix epoch),
    the aggregate of its good numeric samples, and how many went into it."""

    timestamp_ns: int
    value: float
    count: int


class History(list):
    """A list of Samples (or Buckets) from the archive; ``truncated`` is True when
    the range held more than the limit: ask again from :attr:`next_start_ns`."""

    def __init__(self, items=(), truncated: bool = False) -> None:
        super().__init__(items)
        self.truncated = truncated

    @property
    def next_start_ns(self) -> int | None:
        """Where the next page starts: one archive tick (1 µs) after the last
        timestamp returned; None when empty."""
        return self[-1].timestamp_ns + 1000 if self else None


def _history_pb2():
    try:
        from switchyard.v1 import history_pb2
    except ImportError:
        raise Unimplemented("history: this client's API version has no HistoryService",
                            method="HistoryService/QueryHistory") from None
    return history_pb2


def _who(who: str | None) -> str:
    """The operator named in an alarm action: ``who``, or the OS user name."""
    if who is not None:
        return who
    try:
        return getpass.getuser()
    except (OSError, KeyError) as err:
        raise ValueError(f"who: the OS user name is unknown ({err}); pass who= explicitly") from None


def _globs(v: Sequence[str] | str) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def _alarm_filter(devices, channels, groups) -> alarm_pb2.AlarmFilter:
    return alarm_pb2.AlarmFilter(devices=_globs(devices), channels=_globs(channels), groups=_globs(groups))


def _ns(t: When, name: str, method: str = "history") -> int:
    """Nanoseconds since the Unix epoch of a datetime (naive means UTC) or Unix seconds."""
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return int(t.timestamp() * 1e9)
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return int(t * 1e9)
    raise TypeError(f"{method} {name}: want a datetime or Unix seconds, got {type(t).__name__}")


class DeviceWatch(StreamWatch):
    """The iterator :meth:`Client.watch_devices` returns; ``cancel()`` ends it
    from any thread, and the iteration then stops without an error."""

    _method = "DeviceService/WatchDevices"

    def _items(self) -> Iterator[tuple[Device, int]]:
        for resp in self._call:
            yield device_from_pb(resp.device), resp.timestamp_ns
