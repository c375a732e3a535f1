"""Plain Python values for alarms, and the watch that streams their changes.

An :class:`Alarm` is one channel's alarm state as the server's alarm engine
holds it (EPICS-style: HIHI/HIGH/LOW/LOLO, comm failure, stale value, read-back
versus set-point; latched until acknowledged; shelvable). An
:class:`AlarmTransition` is one change of it and the state after it. Enum
values are their names without the proto prefix: severities ``"NO_ALARM"``,
``"MINOR"``, ``"MAJOR"``, ``"INVALID"``; conditions ``"NONE"``, ``"COMM"``,
``"STALE"``, ``"HIHI"``, ``"LOLO"``, ``"HIGH"``, ``"LOW"``, ``"READBACK"``;
events ``"RAISED"``, ``"CHANGED"``, ``"CLEARED"``, ``"ACKED"``, ``"SHELVED"``,
``"UNSHELVED"``, ``"LIMITS_CHANGED"``, plus the client's own ``"ACTIVE"``,
``"RESYNC"`` and ``"REMOVED"`` (see :class:`AlarmWatch`).

Thread safety: the values are immutable. An :class:`AlarmWatch` is iterated from
one thread; its ``cancel()`` may be called from any thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable, Literal

from switchyard.v1 import alarm_pb2, sample_pb2

from .backoff import Backoff
from .errors import NotFound, SwitchyardError
from .model import _enum_name
from .resume import Fetch, Gap, GapDraft, Hook, ResumingStream, server_start_fetch, server_start_of
from .transport import Connection, Rpc, Stubs

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


_ThresholdName = Literal["hihi", "high", "low", "lolo"]


def _threshold(msg: alarm_pb2.AlarmLimits, name: _ThresholdName) -> Threshold | None:
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

    def sev(name: str, field: str) -> alarm_pb2.Severity.ValueType:
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


_WATCH: Rpc[alarm_pb2.WatchAlarmsRequest, alarm_pb2.WatchAlarmsResponse] = Rpc("AlarmService", "WatchAlarms")
_LIST: Rpc[alarm_pb2.ListActiveAlarmsRequest, alarm_pb2.ListActiveAlarmsResponse] = Rpc(
    "AlarmService", "ListActiveAlarms")
_GET: Rpc[alarm_pb2.GetAlarmLimitsRequest, alarm_pb2.GetAlarmLimitsResponse] = Rpc("AlarmService", "GetAlarmLimits")


class AlarmWatch(ResumingStream[AlarmTransition]):
    """The iterator :meth:`Client.watch_alarms` returns: :class:`AlarmTransition`
    values until cancelled.

    With ``include_active`` (the default) it first yields, once the stream is
    subscribed, one transition with event ``"ACTIVE"`` per alarm then active (the
    state the following transitions start from, as the API prescribes), so
    ``panel[t.alarm.key] = t.alarm`` for every item keeps a panel right.

    It resumes after a break (server restart, dropped connection) and after the
    server dropped transitions for this stream because it read too slowly: it
    lists the active alarms again and yields ``"ACTIVE"`` for each one whose
    state differs from what it last yielded, ``"RESYNC"`` (with the current
    state, read from the server) for each alarm that was active and no longer
    is, and ``"REMOVED"`` (with the last known state) for one the server no
    longer has. The transitions in between are lost: that is reported as a
    :class:`~switchyard.resume.Gap` naming the time window and the alarms whose
    state changed unseen; server drops are also counted in :attr:`dropped`.
    ``cancel()`` ends it from any thread; the iteration then stops without an
    error.
    """

    _rpc = _WATCH
    _what = "alarm watch"
    _gap_name = "alarms"

    def __init__(self, conn: Connection, stubs: Stubs, request: alarm_pb2.WatchAlarmsRequest,
                 include_active: bool, *, aio: bool = False, reconnect: bool = True, backoff: Backoff | None = None,
                 on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                 on_gap: Callable[[Gap], None] | None = None) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect,
                         on_gap=on_gap)
        self._req = request
        self._include_active = include_active
        self._server_start: int | None = None
        self._stream_dropped = 0
        #: The last state yielded per alarm.
        self._known: dict[tuple[str, str], Alarm] = {}
        #: Transitions the server dropped for this watch's streams so far.
        self.dropped = 0

    def _request(self) -> alarm_pb2.WatchAlarmsRequest:
        self._stream_dropped = 0  # the server counts per stream
        return self._req

    def _emit(self, t: AlarmTransition) -> AlarmTransition:
        self._known[t.alarm.key] = t.alarm
        return t

    def _begin(self, reconnect: bool) -> Hook[AlarmTransition]:
        start = server_start_of((yield server_start_fetch()))
        restarted = None
        if start is not None and self._server_start is not None:
            restarted = start != self._server_start
        if start is not None:
            self._server_start = start
        if reconnect:
            draft = self._draft(restarted, "alarm transitions")
            yield from self._relist(draft)
            self._report(draft.gap("change"))
        elif self._include_active:
            resp: alarm_pb2.ListActiveAlarmsResponse = yield Fetch(_LIST, self._list_request())
            for a in resp.alarms:
                yield self._emit(AlarmTransition(_now_ns(), "ACTIVE", alarm_from_pb(a)))

    def _list_request(self) -> alarm_pb2.ListActiveAlarmsRequest:
        return alarm_pb2.ListActiveAlarmsRequest(filter=self._req.filter, include_shelved=True)

    def _relist(self, draft: GapDraft) -> Hook[AlarmTransition]:
        """Lists the active alarms again and yields what changed unseen."""
        resp: alarm_pb2.ListActiveAlarmsResponse = yield Fetch(_LIST, self._list_request())
        now = _now_ns()
        listed = {a.key: a for a in (alarm_from_pb(m) for m in resp.alarms)}
        for key, a in listed.items():
            if self._known.get(key) != a:
                was = "changed" if key in self._known else "became active"
                shown = a.severity if a.severity != "NO_ALARM" else f"{a.latched}, latched"
                draft.lost.append(f"{key[0]}/{key[1]}: {was} unseen (now {shown} {a.condition})")
                yield self._emit(AlarmTransition(now, "ACTIVE", a))
        for key, old in list(self._known.items()):
            if key in listed or not old.active:
                continue
            got = yield Fetch(_GET, alarm_pb2.GetAlarmLimitsRequest(device=key[0], channel=key[1]), optional=True)
            if isinstance(got, NotFound):
                draft.lost.append(f"{key[0]}/{key[1]}: no longer on the server")
                yield AlarmTransition(now, "REMOVED", old)
                del self._known[key]
            elif isinstance(got, SwitchyardError):
                raise got
            else:
                a = alarm_from_pb(got.alarm)
                draft.lost.append(f"{key[0]}/{key[1]}: no longer active (cleared unseen)")
                yield self._emit(AlarmTransition(now, "RESYNC", a))

    def _on_response(self, resp: alarm_pb2.WatchAlarmsResponse) -> Hook[AlarmTransition]:
        t = transition_from_pb(resp.transition)
        yield self._emit(t)
        if resp.dropped > self._stream_dropped:
            n = resp.dropped - self._stream_dropped
            self._stream_dropped = resp.dropped
            self.dropped += n
            draft = GapDraft(self._gap_name, t.timestamp_ns, _now_ns(), False, "slow reader")
            draft.lost.append(f"{n} transition{'s' if n != 1 else ''} dropped by the server for this slow "
                              "stream; the active alarms were listed again")
            yield from self._relist(draft)
            self._report(draft.gap("change"))


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
