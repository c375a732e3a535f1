"""Plain Python values for alarms, and the watch that streams their changes.

An :class:`Alarm` is one channel's alarm state as the server's alarm engine
holds it (EPICS-style: HIHI/HIGH/LOW/LOLO, comm failure, stale value, read-back
versus set-point; latched until acknowledged; shelvable). An
:class:`AlarmTransition` is one change of it and the state after it. Enum
values are their names without the proto prefix: severities ``"NO_ALARM"``,
``"MINOR"``, ``"MAJOR"``, ``"INVALID"``; conditions ``"NONE"``, ``"COMM"``,
``"STALE"``, ``"HIHI"``, ``"LOLO"``, ``"HIGH"``, ``"LOW"``, ``"READBACK"``;
events ``"RAISED"``, ``"CHANGED"``, ``"CLEARED"``, ``"ACKED"``, ``"SHELVED"``,
``"UNSHELVED"``, ``"LIMITS_CHANGED"``, plus the client's own ``"ACTIVE"`` (see
:class:`AlarmWatch`).

Thread safety: the values are immutable. An :class:`AlarmWatch` is iterated from
one thread; its ``cancel()`` may be called from any thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

from switchyard.v1 import alarm_pb2, sample_pb2

from .model import _enum_name
from .watch import StreamWatch

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("switchyard")

#: Severities from least to most severe; ``SEVERITY_RANK[s]`` orders them.
SEVERITY_RANK = {"NO_ALARM": 0, "MINOR": 1, "MAJOR": 2, "INVALID": 3}


@dataclass(frozen=True)
class Threshold:
    """One limit: the value and the severity raised when it is crossed."""

    value: float
    severity: str


@dataclass(frozen=True)
class AlarmLimits:
    """One channel's alarm settings; a limit is None when disabled. Durations
    are in seconds (0 is off)."""

    hihi: Threshold | None = None
    high: Threshold | None = None
    low: Threshold | None = None
    lolo: Threshold | None = None
    hysteresis: float = 0.0
    delay_s: float = 0.0
    delay_samples: int = 0
    stale_after_s: float = 0.0
    setpoint: str = ""
    tolerance: float = 0.0
    readback_severity: str = ""
    readback_delay_s: float = 0.0


@dataclass(frozen=True)
class Alarm:
    """One channel's alarm state.

    ``severity`` and ``condition`` are what holds now; ``latched`` is the highest
    severity since the last acknowledgement, so an alarm stays on a panel after
    its condition cleared until someone acknowledges it (see :attr:`active`).
    Times are ns since the Unix epoch (0: never); ``value`` is None when the last
    reading was not numeric or there is none.
    """

    device: str
    channel: str
    group: str
    condition: str
    severity: str
    latched: str
    acked: bool
    since_ns: int = 0
    value: float | None = None
    quality: str = ""
    message: str = ""
    acked_by: str = ""
    ack_comment: str = ""
    acked_at_ns: int = 0
    shelved_until_ns: int = 0
    shelved_by: str = ""
    shelve_comment: str = ""
    limits: AlarmLimits | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(device, channel): the alarm's identity."""
        return (self.device, self.channel)

    @property
    def active(self) -> bool:
        """True when the alarm belongs on a panel: its condition holds, or it is
        latched and not yet acknowledged (the server's rule)."""
        return self.severity != "NO_ALARM" or (self.latched != "NO_ALARM" and not self.acked)

    @property
    def shelved(self) -> bool:
        """True while the alarm is shelved (hidden from panels until shelved_until_ns)."""
        return self.shelved_until_ns > 0 and self.shelved_until_ns > _now_ns()

    @property
    def since(self) -> dt.datetime | None:
        """When the current condition began, as a UTC datetime (None if never)."""
        return _dt(self.since_ns)


@dataclass(frozen=True)
class AlarmTransition:
    """One change of an alarm: what happened (``event``), when, and the state
    after it. ``who`` and ``comment`` are set for operator actions."""

    timestamp_ns: int
    event: str
    alarm: Alarm
    who: str = ""
    comment: str = ""

    @property
    def time(self) -> dt.datetime | None:
        """The timestamp as a UTC datetime."""
        return _dt(self.timestamp_ns)


def _now_ns() -> int:
    return int(dt.datetime.now(dt.timezone.utc).timestamp() * 1e9)


def _dt(ns: int) -> dt.datetime | None:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.timezone.utc) if ns else None


def _severity(s: int) -> str:
    return _enum_name(alarm_pb2.Severity, s, "SEVERITY_")


def _threshold(msg: alarm_pb2.AlarmLimits, name: str) -> Threshold | None:
    if not msg.HasField(name):
        return None
    t = getattr(msg, name)
    return Threshold(t.value, _severity(t.severity))


def limits_from_pb(m: alarm_pb2.AlarmLimits) -> AlarmLimits:
    """Returns the plain AlarmLimits of an AlarmLimits message."""
    return AlarmLimits(
        hihi=_threshold(m, "hihi"), high=_threshold(m, "high"), low=_threshold(m, "low"), lolo=_threshold(m, "lolo"),
        hysteresis=m.hysteresis, delay_s=m.delay_ms / 1000, delay_samples=m.delay_samples,
        stale_after_s=m.stale_after_ms / 1000, setpoint=m.setpoint, tolerance=m.tolerance,
        readback_severity=_severity(m.readback_severity) if m.readback_severity else "",
        readback_delay_s=m.readback_delay_ms / 1000,
    )


def limits_to_pb(limits: AlarmLimits) -> alarm_pb2.AlarmLimits:
    """Returns the AlarmLimits message of plain limits (severities by name; "" is
    the server's default)."""

    def sev(name: str, field: str) -> int:
        if not name:
            return alarm_pb2.SEVERITY_UNSPECIFIED
        try:
            return alarm_pb2.Severity.Value("SEVERITY_" + name.upper())
        except ValueError:
            raise ValueError(f"alarm limits {field}: unknown severity {name!r}; want one of "
                             f"{', '.join(SEVERITY_RANK)}") from None

    m = alarm_pb2.AlarmLimits(
        hysteresis=limits.hysteresis, delay_ms=round(limits.delay_s * 1000), delay_samples=limits.delay_samples,
        stale_after_ms=round(limits.stale_after_s * 1000), setpoint=limits.setpoint, tolerance=limits.tolerance,
        readback_severity=sev(limits.readback_severity, "readback_severity"),
        readback_delay_ms=round(limits.readback_delay_s * 1000),
    )
    for name in ("hihi", "high", "low", "lolo"):
        t = getattr(limits, name)
        if t is not None:
            getattr(m, name).CopyFrom(alarm_pb2.Threshold(value=t.value, severity=sev(t.severity, name + ".severity")))
    return m


def alarm_from_pb(a: alarm_pb2.Alarm) -> Alarm:
    """Returns the plain Alarm of an Alarm message."""
    return Alarm(
        device=a.device, channel=a.channel, group=a.group,
        condition=_enum_name(alarm_pb2.AlarmCondition, a.condition, "ALARM_CONDITION_"),
        severity=_severity(a.severity), latched=_severity(a.latched), acked=a.acked,
        since_ns=a.since_ns, value=a.value if a.HasField("value") else None,
        quality=_enum_name(sample_pb2.Quality, a.quality, "QUALITY_"), message=a.message,
        acked_by=a.acked_by, ack_comment=a.ack_comment, acked_at_ns=a.acked_at_ns,
        shelved_until_ns=a.shelved_until_ns, shelved_by=a.shelved_by, shelve_comment=a.shelve_comment,
        limits=limits_from_pb(a.limits) if a.HasField("limits") else None,
    )


def transition_from_pb(t: alarm_pb2.AlarmTransition) -> AlarmTransition:
    """Returns the plain AlarmTransition of an AlarmTransition message."""
    return AlarmTransition(
        timestamp_ns=t.timestamp_ns,
        event=_enum_name(alarm_pb2.AlarmEvent, t.event, "ALARM_EVENT_"),
        alarm=alarm_from_pb(t.alarm), who=t.who, comment=t.comment,
    )


class AlarmWatch(StreamWatch):
    """The iterator :meth:`Client.watch_alarms` returns: :class:`AlarmTransition`
    values until cancelled or the server stops.

    With ``include_active`` (the default) it first yields, once the stream is
    subscribed, one transition with event ``"ACTIVE"`` per alarm then active (the
    state the following transitions start from, as the API prescribes), so
    ``panel[t.alarm.key] = t.alarm`` for every item keeps a panel right. When the
    server reports that this stream lost transitions (the reader was too slow),
    the loss is logged, counted in :attr:`dropped` and the active alarms are
    listed again as ``"ACTIVE"`` items, so a panel converges instead of staying
    wrong. ``cancel()`` ends it from any thread; the iteration then stops
    without an error.
    """

    def __init__(self, client: Client, request: alarm_pb2.WatchAlarmsRequest, include_active: bool,
                 list_active: Callable[[], list[Alarm]]) -> None:
        super().__init__(client._alarms.WatchAlarms(request, metadata=client._metadata))
        self._include_active = include_active
        self._list_active = list_active
        #: Transitions the server dropped for this stream so far.
        self.dropped = 0

    def _active(self, ts: int) -> list[AlarmTransition]:
        return [AlarmTransition(ts, "ACTIVE", a) for a in self._list_active()]

    _method = "AlarmService/WatchAlarms"

    def _items(self) -> Iterator[AlarmTransition]:
        if self._include_active:
            self._call.initial_metadata()  # subscribed: no transition can fall before the listing
            yield from self._active(_now_ns())
        for resp in self._call:
            t = transition_from_pb(resp.transition)
            yield t
            if resp.dropped > self.dropped:
                log.warning("switchyard alarm watch: the server dropped %d transitions for this slow "
                            "stream; listing the active alarms again", resp.dropped - self.dropped)
                self.dropped = resp.dropped
                yield from self._active(t.timestamp_ns)


__all__ = [
    "Alarm",
    "AlarmLimits",
    "AlarmTransition",
    "AlarmWatch",
    "SEVERITY_RANK",
    "Threshold",
    "alarm_from_pb",
    "limits_from_pb",
    "limits_to_pb",
    "transition_from_pb",
]
