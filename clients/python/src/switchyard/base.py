"""What :class:`~switchyard.Client` and :class:`~switchyard.AsyncClient` share:
every call is built here once, as an :class:`Op` (the RPC, its request, the
conversion of its response to plain values, its timeout) or as a resuming
stream; the two clients only run them, blocking or awaited."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Callable, Generic, Mapping, NamedTuple, Sequence, TypeVar

from google.protobuf import duration_pb2

from switchyard.v1 import alarm_pb2, device_pb2, history_pb2, system_pb2, telemetry_pb2

from .alarms import Alarm, AlarmLimits, AlarmWatch, alarm_from_pb, limits_to_pb
from .backoff import Backoff
from .devices import DeviceWatch
from .errors import InvalidArgument
from .model import (
    CommandReply,
    ConfigReload,
    ConfigState,
    Device,
    Process,
    Sample,
    config_state_from_pb,
    device_from_pb,
    process_from_pb,
    reload_from_pb,
    sample_from_pb,
    value_from_pb,
)
from .resume import Gap
from .sequence import SeqEvent
from .subscription import Subscription, selector
from .supervision import SupervisionWatch
from .times import Duration, When, to_ns, to_seconds
from .transport import TLS, Connection, Rpc, Stubs

Q = TypeVar("Q")
R = TypeVar("R")
T = TypeVar("T")

#: Callbacks a resuming stream takes.
OnReconnect = Callable[[int, BaseException | None], None]
OnGap = Callable[[Gap], None]


@dataclass(frozen=True)
class Op(Generic[Q, R, T]):
    """One unary call: the RPC, its request, what to make of the response, and
    the call's timeout in seconds (None: the client's)."""

    rpc: Rpc[Q, R]
    request: Q
    convert: Callable[[R], T]
    timeout: float | None = None


class Bucket(NamedTuple):
    """One interval of downsampled history: its start (ns since the Unix epoch),
    the aggregate of its good numeric samples, and how many went into it."""

    timestamp_ns: int
    value: float
    count: int  # type: ignore[assignment]  # (shadows tuple.count, as the API has always had it)


class History(list[T]):
    """A list of Samples (or Buckets) from the archive; ``truncated`` is True when
    the range held more than the limit: ask again from :attr:`next_start_ns`."""

    def __init__(self, items: Sequence[T] = (), truncated: bool = False) -> None:
        super().__init__(items)
        self.truncated = truncated

    @property
    def next_start_ns(self) -> int | None:
        """Where the next page starts: one archive tick (1 µs) after the last
        timestamp returned; None when empty."""
        if not self:
            return None
        last = self[-1]
        return int(getattr(last, "timestamp_ns")) + 1000


@dataclass(frozen=True)
class Identity:
    """Who the server takes this client to be (SystemService.GetIdentity): the
    identity's ``name``, its ``role`` (``"viewer"``, ``"operator"``,
    ``"admin"``), whether it was ``authenticated`` and by which ``method``
    (``"token"``, ``"mtls"``, ``"none"``), the RPCs it may call, and the
    server's version."""

    name: str
    role: str
    authenticated: bool
    method: str
    allowed_methods: tuple[str, ...]
    server_version: str


_LIST_DEVICES: Rpc[device_pb2.ListDevicesRequest, device_pb2.ListDevicesResponse] = Rpc("DeviceService", "ListDevices")
_GET_DEVICE: Rpc[device_pb2.GetDeviceRequest, device_pb2.GetDeviceResponse] = Rpc("DeviceService", "GetDevice")
_SEND: Rpc[device_pb2.SendCommandRequest, device_pb2.SendCommandResponse] = Rpc("DeviceService", "SendCommand")
_ABORT: Rpc[device_pb2.AbortCommandRequest, device_pb2.AbortCommandResponse] = Rpc("DeviceService", "AbortCommand")
_LATEST: Rpc[telemetry_pb2.GetLatestRequest, telemetry_pb2.GetLatestResponse] = Rpc("TelemetryService", "GetLatest")
_HISTORY: Rpc[history_pb2.QueryHistoryRequest, history_pb2.QueryHistoryResponse] = Rpc(
    "HistoryService", "QueryHistory")
_ALARMS: Rpc[alarm_pb2.ListActiveAlarmsRequest, alarm_pb2.ListActiveAlarmsResponse] = Rpc(
    "AlarmService", "ListActiveAlarms")
_ALARM: Rpc[alarm_pb2.GetAlarmLimitsRequest, alarm_pb2.GetAlarmLimitsResponse] = Rpc("AlarmService", "GetAlarmLimits")
_ACK: Rpc[alarm_pb2.AcknowledgeRequest, alarm_pb2.AcknowledgeResponse] = Rpc("AlarmService", "Acknowledge")
_SHELVE: Rpc[alarm_pb2.ShelveRequest, alarm_pb2.ShelveResponse] = Rpc("AlarmService", "Shelve")
_SET_LIMITS: Rpc[alarm_pb2.SetAlarmLimitsRequest, alarm_pb2.SetAlarmLimitsResponse] = Rpc(
    "AlarmService", "SetAlarmLimits")
_TREE: Rpc[system_pb2.GetSupervisionTreeRequest, system_pb2.GetSupervisionTreeResponse] = Rpc(
    "SystemService", "GetSupervisionTree")
_RESTART: Rpc[system_pb2.RestartProcessRequest, system_pb2.RestartProcessResponse] = Rpc(
    "SystemService", "RestartProcess")
_IDENTITY: Rpc[system_pb2.GetIdentityRequest, system_pb2.GetIdentityResponse] = Rpc("SystemService", "GetIdentity")
_RELOAD: Rpc[system_pb2.ReloadConfigRequest, system_pb2.ReloadConfigResponse] = Rpc("SystemService", "ReloadConfig")
_CONFIG: Rpc[system_pb2.GetConfigRequest, system_pb2.GetConfigResponse] = Rpc("SystemService", "GetConfig")


class ClientBase:
    """Settings and the shared construction of every call (see the module
    documentation). Not used directly."""

    #: Whether this client's streams are iterated on grpc.aio.
    _aio = False

    def __init__(self, address: str = "127.0.0.1:7400", token: str | None = None, tls: TLS = None, *,
                 timeout: Duration = 10.0, options: Sequence[tuple[str, int | str]] = ()) -> None:
        self.address = address
        #: Bound on every unary call, in seconds.
        self.timeout = to_seconds(timeout, "timeout", type(self).__name__)
        self._conn = Connection(address, token, tls, self.timeout, options)
        self._stubs = self._open()

    def _open(self) -> Stubs:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address!r})"

    # -- devices -------------------------------------------------------------------

    def _op_devices(self) -> Op[device_pb2.ListDevicesRequest, device_pb2.ListDevicesResponse, list[Device]]:
        return Op(_LIST_DEVICES, device_pb2.ListDevicesRequest(), lambda r: [device_from_pb(d) for d in r.devices])

    def _op_device(self, name: str) -> Op[device_pb2.GetDeviceRequest, device_pb2.GetDeviceResponse, Device]:
        return Op(_GET_DEVICE, device_pb2.GetDeviceRequest(name=name), lambda r: device_from_pb(r.device))

    def _op_send_command(self, device: str, name: str | None, args: tuple[object, ...], raw: str | None,
                         timeout: Duration | None) -> Op[device_pb2.SendCommandRequest, device_pb2.SendCommandResponse,
                                                          CommandReply]:
        if (name is None) == (raw is None):
            raise ValueError("send_command: give exactly one of name or raw=")
        if raw is not None and args:
            raise ValueError("send_command: a raw line takes no args")
        req = device_pb2.SendCommandRequest(device=device, args=[_arg(a) for a in args])
        if raw is not None:
            req.raw = raw
        elif name is not None:
            req.name = name
        call_timeout = None
        if timeout is not None:
            secs = to_seconds(timeout, "timeout", "send_command")
            req.timeout.CopyFrom(duration_pb2.Duration(seconds=int(secs), nanos=int((secs % 1) * 1e9)))
            call_timeout = max(self.timeout, secs + 5)
        return Op(_SEND, req, lambda r: CommandReply(r.reply, tuple(value_from_pb(v) for v in r.values)),
                  call_timeout)

    def _op_abort(self, device: str, reason: str) -> Op[device_pb2.AbortCommandRequest,
                                                        device_pb2.AbortCommandResponse, str]:
        return Op(_ABORT, device_pb2.AbortCommandRequest(device=device, reason=reason), lambda r: r.aborted)

    def _watch_devices(self, devices: Sequence[str] | str, reconnect: bool, backoff: Backoff | None,
                       on_reconnect: OnReconnect | None, on_gap: OnGap | None, resume: bool) -> DeviceWatch:
        return DeviceWatch(self._conn, self._stubs, _globs(devices), aio=self._aio, reconnect=reconnect,
                           backoff=backoff, on_reconnect=on_reconnect, on_gap=on_gap, resume=resume)

    # -- telemetry -----------------------------------------------------------------

    def _op_latest(self, devices: Sequence[str] | str, channels: Sequence[str] | str,
                   tags: Mapping[str, str] | None) -> Op[telemetry_pb2.GetLatestRequest,
                                                         telemetry_pb2.GetLatestResponse, list[Sample]]:
        req = telemetry_pb2.GetLatestRequest(selector=selector(devices, channels, tags))
        return Op(_LATEST, req, lambda r: [sample_from_pb(s) for s in r.samples])

    def _subscribe(self, devices: Sequence[str] | str, channels: Sequence[str] | str,
                   tags: Mapping[str, str] | None, since: When | None, batch_window_ms: int, max_batch: int,
                   reconnect: bool, backoff: Backoff | None, on_event: Callable[[SeqEvent], None] | None,
                   on_reconnect: OnReconnect | None, resume: bool) -> Subscription:
        req = telemetry_pb2.SubscribeRequest(selector=selector(devices, channels, tags),
                                             batch_window_ms=batch_window_ms, max_batch=max_batch)
        if since is not None:
            req.since_ns = to_ns(since, "since", "subscribe")
        return Subscription(self._conn, self._stubs, req, aio=self._aio, reconnect=reconnect, backoff=backoff,
                            on_event=on_event, on_reconnect=on_reconnect, resume=resume)

    def _history_request(self, device: str, channel: str, start: When | None, end: When | None,
                         limit: int | None, start_ns: int | None, end_ns: int | None,
                         method: str) -> history_pb2.QueryHistoryRequest:
        req = history_pb2.QueryHistoryRequest(device=device, channel=channel)
        if start_ns is not None:
            req.start_ns = start_ns
        elif start is not None:
            req.start_ns = to_ns(start, "start", method)
        if end_ns is not None:
            req.end_ns = end_ns
        elif end is not None:
            req.end_ns = to_ns(end, "end", method)
        if limit is not None:
            req.limit = limit
        return req

    def _op_history(self, device: str, channel: str, start: When | None, end: When | None, limit: int | None,
                    start_ns: int | None, end_ns: int | None) -> Op[history_pb2.QueryHistoryRequest,
                                                                   history_pb2.QueryHistoryResponse, History[Sample]]:
        req = self._history_request(device, channel, start, end, limit, start_ns, end_ns, "history")
        return Op(_HISTORY, req, lambda r: History([sample_from_pb(s) for s in r.samples], truncated=r.truncated))

    def _op_history_buckets(self, device: str, channel: str, start: When | None, end: When | None,
                            interval: Duration, aggregate: str, limit: int | None, start_ns: int | None,
                            end_ns: int | None) -> Op[history_pb2.QueryHistoryRequest,
                                                      history_pb2.QueryHistoryResponse, History[Bucket]]:
        req = self._history_request(device, channel, start, end, limit, start_ns, end_ns, "history_buckets")
        try:
            req.aggregate = history_pb2.Aggregate.Value("AGGREGATE_" + aggregate.upper())
        except ValueError:
            raise ValueError(f"history_buckets aggregate: want avg, min, max, first, last or count, "
                             f"got {aggregate!r}") from None
        secs = to_seconds(interval, "interval", "history_buckets")
        if not secs >= 0.001:
            raise ValueError(f"history_buckets interval: want at least 0.001 s, got {interval!r}")
        req.interval_ms = round(secs * 1000)
        return Op(_HISTORY, req, lambda r: History([Bucket(b.timestamp_ns, b.value, b.count) for b in r.buckets],
                                                   truncated=r.truncated))

    # -- alarms --------------------------------------------------------------------

    def _op_alarms(self, devices: Sequence[str] | str, channels: Sequence[str] | str, groups: Sequence[str] | str,
                   include_shelved: bool) -> Op[alarm_pb2.ListActiveAlarmsRequest,
                                                alarm_pb2.ListActiveAlarmsResponse, list[Alarm]]:
        req = alarm_pb2.ListActiveAlarmsRequest(filter=_alarm_filter(devices, channels, groups),
                                                include_shelved=include_shelved)
        return Op(_ALARMS, req, lambda r: [alarm_from_pb(a) for a in r.alarms])

    def _op_alarm(self, device: str, channel: str) -> Op[alarm_pb2.GetAlarmLimitsRequest,
                                                         alarm_pb2.GetAlarmLimitsResponse, Alarm]:
        return Op(_ALARM, alarm_pb2.GetAlarmLimitsRequest(device=device, channel=channel),
                  lambda r: alarm_from_pb(r.alarm))

    def _op_acknowledge(self, device: str, channel: str, who: str | None,
                        comment: str) -> Op[alarm_pb2.AcknowledgeRequest, alarm_pb2.AcknowledgeResponse, Alarm]:
        req = alarm_pb2.AcknowledgeRequest(device=device, channel=channel, who=_who(who), comment=comment)
        return Op(_ACK, req, lambda r: alarm_from_pb(r.alarm))

    def _op_shelve(self, device: str, channel: str, until: When | None, who: str | None,
                   comment: str) -> Op[alarm_pb2.ShelveRequest, alarm_pb2.ShelveResponse, Alarm]:
        until_ns = 0 if until is None else to_ns(until, "until", "shelve", future=True)
        req = alarm_pb2.ShelveRequest(device=device, channel=channel, until_ns=until_ns, who=_who(who),
                                      comment=comment)
        return Op(_SHELVE, req, lambda r: alarm_from_pb(r.alarm))

    def _op_set_alarm_limits(self, device: str, channel: str, limits: AlarmLimits, who: str | None,
                             comment: str) -> Op[alarm_pb2.SetAlarmLimitsRequest,
                                                 alarm_pb2.SetAlarmLimitsResponse, Alarm]:
        req = alarm_pb2.SetAlarmLimitsRequest(device=device, channel=channel, limits=limits_to_pb(limits),
                                              who=_who(who), comment=comment)
        return Op(_SET_LIMITS, req, lambda r: alarm_from_pb(r.alarm))

    def _watch_alarms(self, devices: Sequence[str] | str, channels: Sequence[str] | str,
                      groups: Sequence[str] | str, include_active: bool, reconnect: bool, backoff: Backoff | None,
                      on_reconnect: OnReconnect | None, on_gap: OnGap | None, resume: bool) -> AlarmWatch:
        req = alarm_pb2.WatchAlarmsRequest(filter=_alarm_filter(devices, channels, groups))
        return AlarmWatch(self._conn, self._stubs, req, include_active, aio=self._aio, reconnect=reconnect,
                          backoff=backoff, on_reconnect=on_reconnect, on_gap=on_gap, resume=resume)

    # -- system --------------------------------------------------------------------

    def _op_supervision_tree(self) -> Op[system_pb2.GetSupervisionTreeRequest,
                                         system_pb2.GetSupervisionTreeResponse, Process]:
        return Op(_TREE, system_pb2.GetSupervisionTreeRequest(), lambda r: process_from_pb(r.root))

    def _op_restart_process(self, path: str) -> Op[system_pb2.RestartProcessRequest,
                                                   system_pb2.RestartProcessResponse, None]:
        return Op(_RESTART, system_pb2.RestartProcessRequest(path=path), lambda r: None)

    def _op_reload_config(self, dry_run: bool) -> Op[system_pb2.ReloadConfigRequest,
                                                     system_pb2.ReloadConfigResponse, ConfigReload]:
        # A reload may wait for commands in progress on the devices it stops.
        return Op(_RELOAD, system_pb2.ReloadConfigRequest(dry_run=dry_run), lambda r: reload_from_pb(r.reload),
                  timeout=max(self.timeout, 30.0))

    def _op_config(self) -> Op[system_pb2.GetConfigRequest, system_pb2.GetConfigResponse, ConfigState]:
        return Op(_CONFIG, system_pb2.GetConfigRequest(), config_state_from_pb)

    def _op_identity(self) -> Op[system_pb2.GetIdentityRequest, system_pb2.GetIdentityResponse, Identity]:
        return Op(_IDENTITY, system_pb2.GetIdentityRequest(), lambda r: Identity(
            r.name, r.role, r.authenticated, r.method, tuple(r.allowed_methods), r.server_version))

    def _watch_supervision(self, include_snapshot: bool, processes: Sequence[str] | str,
                           kinds: Sequence[str] | str, reconnect: bool, backoff: Backoff | None,
                           on_reconnect: OnReconnect | None, on_gap: OnGap | None) -> SupervisionWatch:
        kind_values = []
        for k in _globs(kinds):
            try:
                kind_values.append(system_pb2.SupervisionEventKind.Value("SUPERVISION_EVENT_KIND_" + k.upper()))
            except ValueError:
                raise InvalidArgument(f"kinds: unknown supervision event kind {k!r}",
                                      method="SystemService/WatchSupervisionEvents") from None
        req = system_pb2.WatchSupervisionEventsRequest(include_snapshot=include_snapshot,
                                                       processes=_globs(processes), kinds=kind_values)
        return SupervisionWatch(self._conn, self._stubs, req, aio=self._aio, reconnect=reconnect, backoff=backoff,
                                on_reconnect=on_reconnect, on_gap=on_gap)


def _arg(a: object) -> str:
    if isinstance(a, bool):
        return "ON" if a else "OFF"
    return str(a)


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


def _alarm_filter(devices: Sequence[str] | str, channels: Sequence[str] | str,
                  groups: Sequence[str] | str) -> alarm_pb2.AlarmFilter:
    return alarm_pb2.AlarmFilter(devices=_globs(devices), channels=_globs(channels), groups=_globs(groups))


__all__ = ["Bucket", "ClientBase", "History", "Identity", "Op"]
