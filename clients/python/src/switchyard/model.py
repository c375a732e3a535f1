"""Plain Python values for what the server returns.

The client never hands out generated protobuf messages: samples, devices and the
supervision tree are named tuples and dataclasses of ``str``, ``int``, ``float``
and ``bool``. A list of :class:`Sample` goes straight into pandas
(``pandas.DataFrame(samples)``) or numpy (``numpy.array([s.value for s in samples])``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, NamedTuple, Union

from switchyard.v1 import config_pb2, device_pb2, sample_pb2, system_pb2

#: A channel value: float, int, str or bool; ``None`` when the quality is not GOOD.
Value = Union[float, int, str, bool, None]


class Sample(NamedTuple):
    """One reading of one channel of one device.

    ``quality`` is the Quality name without its prefix (``"GOOD"``,
    ``"COMM_ERROR"``, ``"TIMEOUT"``, ``"PARSE_ERROR"``, ``"DISCONNECTED"``);
    ``value`` is ``None`` unless the quality is GOOD, and ``error`` says why.
    ``seq`` grows by one per sample of the channel within one run of the server.
    """

    device: str
    channel: str
    timestamp_ns: int
    seq: int
    value: Value
    quality: str
    error: str = ""

    @property
    def key(self) -> tuple[str, str]:
        """(device, channel): the identity of the channel this sample belongs to."""
        return (self.device, self.channel)

    @property
    def time(self) -> dt.datetime:
        """The timestamp as a timezone-aware UTC datetime (microsecond precision)."""
        return dt.datetime.fromtimestamp(self.timestamp_ns / 1e9, tz=dt.timezone.utc)

    @property
    def good(self) -> bool:
        """True when the value can be trusted."""
        return self.quality == "GOOD"


@dataclass(frozen=True)
class Channel:
    """A configured channel of a device: its name, poll period (0 if pushed) and unit."""

    name: str
    query: str = ""
    period_s: float = 0.0
    unit: str = ""


@dataclass(frozen=True)
class Device:
    """A configured instrument and its current connection state.

    ``state`` is the DeviceState name without its prefix: ``"CONNECTING"``,
    ``"CONNECTED"``, ``"BACKOFF"`` or ``"STOPPED"``. ``tags`` are its labels
    from the configuration (what ``tags=`` selectors match).

    ``reconnections`` counts how often the connection was re-established after
    a failure in this run of the server; the device's process kept running
    through them (the supervision tree's :attr:`Process.restarts` counts process
    restarts, a different thing). ``last_error`` is the error that last broke
    the connection and stays set after a reconnection, as history: while
    CONNECTED it is older than ``connected_since``. :attr:`error` is the
    device's current error: ``last_error`` unless CONNECTED, else ``""``.
    """

    name: str
    address: str
    driver: str
    state: str
    channels: tuple[Channel, ...] = ()
    commands: tuple[str, ...] = ()
    identity: str = ""
    last_error: str = ""
    reconnections: int = 0
    connected_since: dt.datetime | None = None
    next_attempt: dt.datetime | None = None
    tags: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def error(self) -> str:
        """The error the device is in now: ``last_error`` while not CONNECTED,
        ``""`` while CONNECTED (the last error is then history)."""
        return "" if self.state == "CONNECTED" else self.last_error

    @property
    def restart_count(self) -> int:
        """Deprecated: use :attr:`reconnections` (this counted reconnections, not
        process restarts)."""
        warnings.warn("Device.restart_count is deprecated: it counts reconnections; use Device.reconnections",
                      DeprecationWarning, stacklevel=2)
        return self.reconnections


@dataclass(frozen=True)
class CommandReply:
    """What a device answered to a command: the reply line and the values parsed from it."""

    reply: str
    values: tuple[Value, ...] = ()


@dataclass(frozen=True)
class Process:
    """One node of the supervision tree: a supervisor or a worker, with its children."""

    id: str
    kind: str
    state: str
    strategy: str = ""
    restart: str = ""
    restarts: int = 0
    last_exit: str = ""
    started_ns: int = 0
    next_restart_ns: int = 0
    mailbox_depth: int = 0
    children: tuple[Process, ...] = field(default_factory=tuple)
    #: What the process says it is doing, while it runs: a device's connection
    #: ("backoff: dial tcp ...: connection refused; next attempt 12:00:03.000"),
    #: the telemetry hub watchdog's view of its consumers.
    status: str = ""
    #: The message its mailbox is handling (``'call "set_voltage 24" sent 12:00:01.500'``).
    in_progress: str = ""
    uptime_ns: int = 0

    def walk(self) -> Iterator[tuple[int, Process]]:
        """Yields (depth, process) for this node and every descendant, depth first."""
        stack: list[tuple[int, Process]] = [(0, self)]
        while stack:
            depth, p = stack.pop()
            yield depth, p
            stack.extend((depth + 1, c) for c in reversed(p.children))


def _enum_name(enum: Any, number: int, prefix: str) -> str:
    try:
        name = str(enum.Name(number))
    except ValueError:
        return f"UNKNOWN_{number}"
    return name[len(prefix):] if name.startswith(prefix) else name


def value_from_pb(v: sample_pb2.Value) -> Value:
    """Returns the Python value of a Value message, or None when it is unset."""
    kind = v.WhichOneof("kind")
    return None if kind is None else getattr(v, kind)


def sample_from_pb(s: sample_pb2.Sample) -> Sample:
    """Returns the plain Sample of a Sample message."""
    return Sample(
        device=s.device,
        channel=s.channel,
        timestamp_ns=s.timestamp_ns,
        seq=s.seq,
        value=value_from_pb(s.value) if s.HasField("value") else None,
        quality=_enum_name(sample_pb2.Quality, s.quality, "QUALITY_"),
        error=s.error,
    )


def _time(ts: Any, present: bool) -> dt.datetime | None:
    return ts.ToDatetime(tzinfo=dt.timezone.utc) if present else None


def device_from_pb(d: device_pb2.Device) -> Device:
    """Returns the plain Device of a Device message."""
    return Device(
        name=d.name,
        address=d.address,
        driver=d.driver,
        state=_enum_name(device_pb2.DeviceState, d.state, "DEVICE_STATE_"),
        channels=tuple(
            Channel(c.name, c.query, c.period.ToTimedelta().total_seconds(), c.unit) for c in d.channels
        ),
        commands=tuple(d.commands),
        identity=d.identity,
        last_error=d.last_error,
        reconnections=d.reconnections or d.restart_count,  # an older server fills only restart_count
        connected_since=_time(d.connected_since, d.HasField("connected_since")),
        next_attempt=_time(d.next_attempt, d.HasField("next_attempt")),
        tags=dict(d.tags),
    )


def process_from_pb(p: system_pb2.Process) -> Process:
    """Returns the plain Process tree of a Process message."""
    return Process(
        id=p.id,
        kind=p.kind,
        state=_enum_name(system_pb2.ProcessState, p.state, "PROCESS_STATE_"),
        strategy=p.strategy,
        restart=p.restart,
        restarts=p.restarts,
        last_exit=p.last_exit,
        started_ns=p.started_ns,
        next_restart_ns=p.next_restart_ns,
        mailbox_depth=p.mailbox_depth,
        children=tuple(process_from_pb(c) for c in p.children),
        status=p.status,
        in_progress=p.in_progress,
        uptime_ns=p.uptime_ns,
    )


@dataclass(frozen=True)
class ConfigReload:
    """One reload of the server's configuration: applied, refused (``errors``,
    nothing changed) or tried (``dry_run``). ``trigger`` is ``"API"``,
    ``"SIGNAL"`` or ``"WATCH"``; ``by`` who asked; ``hash`` the new
    configuration's SHA-256; ``updated`` maps a device changed in place to what
    changed (``"alarm limits"``, ``"tags"``, ...)."""

    time_ns: int
    trigger: str
    by: str
    source: str
    hash: str
    previous_hash: str
    applied: bool
    dry_run: bool
    summary: str
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    restarted: tuple[str, ...] = ()
    updated: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    unchanged: int = 0
    alarms: bool = False
    archive_filter: bool = False
    needs_restart: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    failed: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    duration_s: float = 0.0


@dataclass(frozen=True)
class ConfigState:
    """The configuration a server runs: its file, hash, when (ns since the Unix
    epoch) and by whom it was loaded (``""`` at start), whether the file is
    watched, the settings waiting for a restart, and the last reload tried."""

    hash: str
    source: str
    loaded_ns: int
    loaded_by: str
    loaded_trigger: str
    watch: bool
    devices: int
    needs_restart: tuple[str, ...] = ()
    last_reload: ConfigReload | None = None


def reload_from_pb(r: config_pb2.ConfigReload) -> ConfigReload:
    """Returns the plain ConfigReload of a ConfigReload message."""
    d = r.diff
    return ConfigReload(
        time_ns=r.timestamp_ns,
        trigger=_enum_name(config_pb2.ConfigTrigger, r.trigger, "CONFIG_TRIGGER_"),
        by=r.by,
        source=r.source,
        hash=r.hash,
        previous_hash=r.previous_hash,
        applied=r.applied,
        dry_run=r.dry_run,
        summary=r.summary,
        added=tuple(d.added),
        removed=tuple(d.removed),
        restarted=tuple(d.restarted),
        updated={u.device: tuple(u.changed) for u in d.updated},
        unchanged=d.unchanged,
        alarms=d.alarms,
        archive_filter=d.archive_filter,
        needs_restart=tuple(d.needs_restart),
        errors=tuple(r.errors),
        failed=tuple(r.failed),
        warnings=tuple(r.warnings),
        duration_s=r.duration_ns / 1e9,
    )


def config_state_from_pb(r: system_pb2.GetConfigResponse) -> ConfigState:
    """Returns the plain ConfigState of a GetConfigResponse."""
    return ConfigState(
        hash=r.hash,
        source=r.source,
        loaded_ns=r.loaded_ns,
        loaded_by=r.loaded_by,
        loaded_trigger=_enum_name(config_pb2.ConfigTrigger, r.loaded_trigger, "CONFIG_TRIGGER_"),
        watch=r.watch,
        devices=r.devices,
        needs_restart=tuple(r.needs_restart),
        last_reload=reload_from_pb(r.last_reload) if r.HasField("last_reload") else None,
    )
