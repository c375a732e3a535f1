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
``"RESYNC"`` and ``"REMOVED"`` (see :class:`AlarmWatch`). A transition a
resumed watch got from the server's archive has ``replayed`` set.

Thread safety: the values are immutable. An :class:`AlarmWatch` is iterated from
one thread; its ``cancel()`` may be called from any thread.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Callable, Literal

from switchyard.v1 import alarm_pb2, history_pb2, sample_pb2

from .backoff import Backoff
from .errors import NotFound, SwitchyardError
from .model import _enum_name
from .resume import FAR_FUTURE_NS, Fetch, Gap, GapDraft, Hook, Resume, ResumingStream, server_start_fetch
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
    after it. ``who`` and ``comment`` are set for operator actions.
    ``replayed`` says it came from the server's archive when a watch resumed:
    its ``alarm`` then holds what the archive records (no shelve end time, no
    ack details but on the ACKED transition itself, ``since_ns`` only on
    condition changes)."""

    timestamp_ns: int
    event: str
    alarm: Alarm
    who: str = ""
    comment: str = ""
    replayed: bool = False

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


def transition_from_pb(t: alarm_pb2.AlarmTransition, replayed: bool = False) -> AlarmTransition:
    """Returns the plain AlarmTransition of an AlarmTransition message
    (``replayed``: it came from the archive)."""
    return AlarmTransition(
        timestamp_ns=t.timestamp_ns,
        event=_enum_name(alarm_pb2.AlarmEvent, t.event, "ALARM_EVENT_"),
        alarm=alarm_from_pb(t.alarm), who=t.who, comment=t.comment, replayed=replayed,
    )


_WATCH: Rpc[alarm_pb2.WatchAlarmsRequest, alarm_pb2.WatchAlarmsResponse] = Rpc("AlarmService", "WatchAlarms")
_LIST: Rpc[alarm_pb2.ListActiveAlarmsRequest, alarm_pb2.ListActiveAlarmsResponse] = Rpc(
    "AlarmService", "ListActiveAlarms")
_GET: Rpc[alarm_pb2.GetAlarmLimitsRequest, alarm_pb2.GetAlarmLimitsResponse] = Rpc("AlarmService", "GetAlarmLimits")


#: Whether this API version's WatchAlarmsRequest can replay the archive.
HAS_SINCE = "since_ns" in alarm_pb2.WatchAlarmsRequest.DESCRIPTOR.fields_by_name


class AlarmWatch(ResumingStream[AlarmTransition]):
    """The iterator :meth:`Client.watch_alarms` returns: :class:`AlarmTransition`
    values until cancelled.

    With ``include_active`` (the default) it first yields, once the stream is
    subscribed, one transition with event ``"ACTIVE"`` per alarm then active (the
    state the following transitions start from, as the API prescribes), so
    ``panel[t.alarm.key] = t.alarm`` for every item keeps a panel right.

    It resumes after a break (server restart, dropped connection) and after the
    server dropped transitions for this stream because it read too slowly. With
    ``resume`` (the default) against a server that archives, it asks the server
    to replay the archive from the last transition it yielded (``since_ns``;
    transition timestamps are unique, so the overlap is exactly that one, and
    dropped: :attr:`overlap`): every transition that happened meanwhile is
    yielded once, in order, with ``replayed`` set (its alarm holds what the
    archive records), and nothing is reported lost. Then it lists the active
    alarms again and yields ``"ACTIVE"`` with the whole current state of each
    alarm that differs from what it last yielded (a replayed alarm lacks some
    details), ``"RESYNC"`` (the current state, read from the server) for an
    alarm that was active and no longer is, and ``"REMOVED"`` (the last known
    state) for one the server no longer has: after a complete replay these
    happen only when the server restarted (it does not keep alarm states) and
    are reported. Without an archive (or when the server's archive does not
    answer), the transitions in between are lost: that is reported as a
    :class:`~switchyard.resume.Gap` naming the time window and the alarms whose
    state changed unseen; server drops are also counted in :attr:`dropped`.
    A cluster node does not replay (its replay end says so): a break there is
    reported as a gap the same way, and its live transitions, merged from
    every node, may come out of time order: each is yielded (none is dropped
    as older than the last).
    ``cancel()`` ends it from any thread; the iteration then stops without an
    error.
    """

    _rpc = _WATCH
    _what = "alarm watch"
    _gap_name = "alarms"

    def __init__(self, conn: Connection, stubs: Stubs, request: alarm_pb2.WatchAlarmsRequest,
                 include_active: bool, *, aio: bool = False, reconnect: bool = True, backoff: Backoff | None = None,
                 on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                 on_gap: Callable[[Gap], None] | None = None, resume: bool = True) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect,
                         on_gap=on_gap)
        self._req = request
        self._include_active = include_active
        self._resume = resume and HAS_SINCE
        self._stream_dropped = 0
        #: The last state yielded per alarm.
        self._known: dict[tuple[str, str], Alarm] = {}
        # The server's timestamp up to which every selected transition was
        # yielded (or happened before the watch began): the resume point.
        self._cursor = 0
        # The server answered a replay (it can resume); this stream awaits the
        # end of its replay; the gap being put together across a reconnect.
        self._replays = False
        self._awaiting_end = False
        self._since = 0
        # The server said where its live part starts (live_after_ns): its
        # live transitions come in time order, so one not later than the
        # cursor was yielded already. A cluster node says not (its watch
        # merges every node's transitions): then only replayed ones are
        # dropped by time.
        self._ordered = False
        self._restarted: bool | None = None
        #: Transitions the server dropped for this watch's streams so far.
        self.dropped = 0
        #: Replayed transitions this watch had yielded already, and dropped.
        self.overlap = 0

    @property
    def resuming(self) -> bool:
        """True while a reconnect replays the archive: ``resume`` was asked for
        and the server answered a replay."""
        return self._resume and self._replays

    @property
    def cursor_ns(self) -> int:
        """The server's time up to which every transition the watch selects has
        been yielded or happened before the watch began (0 until the server
        said where its stream starts): where a resume replays from."""
        return self._cursor

    def _request(self) -> alarm_pb2.WatchAlarmsRequest:
        self._stream_dropped = 0  # the server counts per stream
        req = alarm_pb2.WatchAlarmsRequest()
        req.CopyFrom(self._req)
        self._since = 0
        if self._resume:
            # First: a since in the future, to learn whether the server
            # replays and where the live part starts. Then: from the cursor.
            self._since = self._cursor if self._ever_established and self._replays and self._cursor else FAR_FUTURE_NS
            req.since_ns = self._since
        self._awaiting_end = self._since != 0
        return req

    def _emit(self, t: AlarmTransition) -> AlarmTransition:
        self._known[t.alarm.key] = t.alarm
        return t

    def _begin(self, reconnect: bool) -> Hook[AlarmTransition]:
        restarted = self._server_restarted((yield server_start_fetch()))
        self._restarted = restarted
        if self._awaiting_end and self._since != FAR_FUTURE_NS:
            return  # a replay comes first; its end decides (see _replay_end)
        if reconnect:
            # No replay to wait for: what happened meanwhile is lost.
            draft = self._draft(restarted, "alarm transitions")
            yield from self._relist(draft, report_changes=True)
            self._report(draft.gap("change"))
        elif self._include_active:
            resp: alarm_pb2.ListActiveAlarmsResponse = yield Fetch(_LIST, self._list_request())
            for a in resp.alarms:
                yield self._emit(AlarmTransition(_now_ns(), "ACTIVE", alarm_from_pb(a)))

    def _list_request(self) -> alarm_pb2.ListActiveAlarmsRequest:
        return alarm_pb2.ListActiveAlarmsRequest(filter=self._req.filter, include_shelved=True)

    def _relist(self, draft: GapDraft, report_changes: bool) -> Hook[AlarmTransition]:
        """Lists the active alarms again and yields what differs from what was
        yielded; ``report_changes`` names the changed ones in the gap (the
        transitions in between were lost)."""
        resp: alarm_pb2.ListActiveAlarmsResponse = yield Fetch(_LIST, self._list_request())
        now = _now_ns()
        listed = {a.key: a for a in (alarm_from_pb(m) for m in resp.alarms)}
        for key, a in listed.items():
            if self._known.get(key) != a:
                if report_changes:
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

    def _replay_end(self, end: history_pb2.ReplayEnd, reconnect: bool) -> Hook[AlarmTransition]:
        """The replay asked for ended: note where the live part starts; after a
        reconnect make the state whole and report what was not recovered."""
        self._awaiting_end = False
        self._replays = True
        self._ordered = end.live_after_ns > 0
        self._cursor = max(self._cursor, end.live_after_ns)
        if not reconnect:
            return
        draft = self._draft(self._restarted, "alarm transitions")
        if end.complete:
            draft.lost.clear()  # every transition in between was replayed
            if self._restarted:
                draft.lost.append("the server restarted: alarm states it held were not carried over")
        else:
            log.warning("switchyard alarm watch: the server could not replay (%s); what happened meanwhile is "
                        "reported", end.reason)
            draft.error = f"{draft.error} (no replay: {end.reason})" if draft.error else f"no replay: {end.reason}"
        baseline = len(draft.lost)
        yield from self._relist(draft, report_changes=not end.complete)
        if not end.complete or len(draft.lost) > baseline:
            self._report(draft.gap("change"))

    def _on_response(self, resp: alarm_pb2.WatchAlarmsResponse) -> Hook[AlarmTransition]:
        if resp.dropped > self._stream_dropped:
            n = resp.dropped - self._stream_dropped
            self._stream_dropped = resp.dropped
            self.dropped += n
            if self.resuming and not self._awaiting_end:
                # The transitions dropped came before this one: the archive
                # has them. Resume from the last one yielded.
                raise Resume(f"the server dropped {n} transition{'s' if n != 1 else ''} for this slow stream")
            if not self._awaiting_end:
                draft = GapDraft(self._gap_name, _now_ns(), _now_ns(), False, "slow reader")
                draft.lost.append(f"{n} transition{'s' if n != 1 else ''} dropped by the server for this slow "
                                  "stream; the active alarms were listed again")
                yield from self._relist(draft, report_changes=True)
                self._report(draft.gap("change"))
                return
        if resp.HasField("replay_end"):
            yield from self._replay_end(resp.replay_end, self._since != FAR_FUTURE_NS)
            if self._stream_dropped and self.resuming:
                raise Resume(f"the server dropped {self._stream_dropped} transitions during the replay")
            return
        if self._awaiting_end and self._since != FAR_FUTURE_NS and not resp.replayed:
            # A live transition before the replay's end: the server ignored
            # since_ns (it predates replays). What happened meanwhile is lost.
            yield from self._replay_end(history_pb2.ReplayEnd(reason="the server does not replay"), True)
            self._replays = False
        t = transition_from_pb(resp.transition, replayed=resp.replayed)
        if (t.replayed or self._ordered) and t.timestamp_ns <= self._cursor:
            self.overlap += 1  # yielded already (or from before the watch)
            return
        self._cursor = max(self._cursor, t.timestamp_ns)
        yield self._emit(t)


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
