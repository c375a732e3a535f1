"""Lifecycle events of the server's supervision tree, as plain values.

:meth:`Client.watch_supervision` streams :class:`SupervisionEvent` values (a
process started, exited, was restarted, ...) and, first, a snapshot of the whole
tree as a :class:`~switchyard.model.Process`. Event ``kind`` is the
SupervisionEventKind name without its prefix: ``"STARTING"``, ``"STOPPED"``,
``"ADDED"``, ``"REMOVED"``, ``"STARTED"``, ``"EXITED"``,
``"RESTART_SCHEDULED"``, ``"LEAKED"``, ``"AUTO_SHUTDOWN"``, and
``"STATUS"`` (a running process reported a new status of its own in
``reason``, e.g. a device whose instrument stopped answering).

Thread safety: iterate a watch from one thread; ``cancel()`` from any thread.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Callable, Iterator, Union

from switchyard.v1 import system_pb2

from .backoff import Backoff
from .model import Process, _enum_name, process_from_pb
from .resume import Gap, GapDraft, Hook, ResumingStream, server_start_fetch
from .transport import Connection, Rpc, Stubs

log = logging.getLogger("switchyard")


@dataclass(frozen=True)
class SupervisionEvent:
    """One lifecycle change in the supervision tree.

    ``path`` is the supervisor's path from the root (``"switchyard/devices"``),
    ``child`` the child's id (empty for events about the supervisor itself);
    ``seq`` numbers the stream's events from 1 without gaps (a gap means events
    this stream lost, also counted in :attr:`SupervisionWatch.dropped`).
    """

    seq: int
    timestamp_ns: int
    path: str
    child: str
    kind: str
    reason: str = ""
    restarts: int = 0
    next_restart_ns: int = 0

    @property
    def time(self) -> dt.datetime:
        """The timestamp as a UTC datetime."""
        return dt.datetime.fromtimestamp(self.timestamp_ns / 1e9, tz=dt.timezone.utc)

    @property
    def process(self) -> str:
        """The full path of the process the event is about."""
        return f"{self.path}/{self.child}" if self.child else self.path


def supervision_event_from_pb(e: system_pb2.SupervisionEvent) -> SupervisionEvent:
    """Returns the plain SupervisionEvent of a SupervisionEvent message."""
    return SupervisionEvent(
        seq=e.seq, timestamp_ns=e.timestamp_ns, path=e.path, child=e.child,
        kind=_enum_name(system_pb2.SupervisionEventKind, e.kind, "SUPERVISION_EVENT_KIND_"),
        reason=e.reason, restarts=e.restarts, next_restart_ns=e.next_restart_ns,
    )


_WATCH: Rpc[system_pb2.WatchSupervisionEventsRequest, system_pb2.WatchSupervisionEventsResponse] = Rpc(
    "SystemService", "WatchSupervisionEvents")


class SupervisionWatch(ResumingStream[Union[Process, SupervisionEvent]]):
    """The iterator :meth:`Client.watch_supervision` returns: first the tree as a
    :class:`~switchyard.model.Process` (if asked for), then
    :class:`SupervisionEvent` values, until cancelled.

    It resumes after a break (server restart, dropped connection): the new
    stream starts with a snapshot of the tree (yielded if a snapshot was asked
    for), so the tree is whole again; the events in between are lost (the
    server does not archive supervision events, so unlike the alarm and device
    watches this one cannot replay them) and reported as a
    :class:`~switchyard.resume.Gap`, with exactly how many
    restarts each process went through unseen (from the snapshot's restart
    counts; across a server restart the counts start again, and the gap says
    the server restarted instead). Events the server dropped for a slow stream
    are counted in :attr:`dropped` and reported as a gap too. ``cancel()`` ends
    it from any thread; the iteration then stops without an error."""

    _rpc = _WATCH
    _what = "supervision watch"
    _gap_name = "supervision"

    def __init__(self, conn: Connection, stubs: Stubs, request: system_pb2.WatchSupervisionEventsRequest, *,
                 aio: bool = False, reconnect: bool = True, backoff: Backoff | None = None,
                 on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                 on_gap: Callable[[Gap], None] | None = None) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect,
                         on_gap=on_gap)
        self._req = request
        self._stream_dropped = 0
        #: Restart count per process path ("switchyard/devices/psu-05"), as last seen.
        self._restarts: dict[str, int] = {}
        self._draft_gap: GapDraft | None = None
        #: Events the server dropped for this watch's streams so far.
        self.dropped = 0

    def _request(self) -> system_pb2.WatchSupervisionEventsRequest:
        self._stream_dropped = 0  # the server counts per stream
        req = system_pb2.WatchSupervisionEventsRequest()
        req.CopyFrom(self._req)
        if self._ever_established:
            req.include_snapshot = True  # to learn what changed while away
        return req

    def _begin(self, reconnect: bool) -> Hook[Union[Process, SupervisionEvent]]:
        restarted = self._server_restarted((yield server_start_fetch()))
        if reconnect:
            self._draft_gap = self._draft(restarted, "supervision events")
            if restarted:
                self._draft_gap.lost.append("restart counts started again")

    def _on_response(self, resp: system_pb2.WatchSupervisionEventsResponse) -> Hook[Union[Process, SupervisionEvent]]:
        if resp.dropped > self._stream_dropped:
            n = resp.dropped - self._stream_dropped
            log.warning("switchyard supervision watch: the server dropped %d events for this slow stream", n)
            self._stream_dropped = resp.dropped
            self.dropped += n
            now = _now_ns()
            self._report(Gap(self._gap_name, now, now, False, "slow reader",
                             (f"{n} event{'s' if n != 1 else ''} dropped by the server for this slow stream",)))
        item = resp.WhichOneof("item")
        if item == "snapshot":
            tree = process_from_pb(resp.snapshot)
            self._snapshot(tree)
            if self._req.include_snapshot:
                yield tree
        elif item == "event":
            ev = supervision_event_from_pb(resp.event)
            if ev.child:
                self._restarts[ev.process] = ev.restarts
            yield ev

    def _snapshot(self, tree: Process) -> None:
        draft, self._draft_gap = self._draft_gap, None
        seen = dict(self._restarts)
        self._restarts = dict(_restart_counts(tree))
        if draft is None:
            return
        if not draft.server_restarted:
            for path, n in self._restarts.items():
                if n > seen.get(path, n):
                    draft.counts[path] = n - seen[path]
        self._report(draft.gap("restart"))


def _restart_counts(tree: Process) -> Iterator[tuple[str, int]]:
    stack = [(tree.id, tree)]
    while stack:
        path, p = stack.pop()
        yield path, p.restarts
        stack.extend((f"{path}/{c.id}", c) for c in p.children)


def _now_ns() -> int:
    return time.time_ns()


__all__ = ["SupervisionEvent", "SupervisionWatch", "supervision_event_from_pb"]
