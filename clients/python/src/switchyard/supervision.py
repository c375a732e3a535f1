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
from dataclasses import dataclass
from typing import Iterator, Union

from switchyard.v1 import system_pb2

from .model import Process, _enum_name, process_from_pb
from .watch import StreamWatch

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


class SupervisionWatch(StreamWatch):
    """The iterator :meth:`Client.watch_supervision` returns: first the tree as a
    :class:`~switchyard.model.Process` (if asked for), then
    :class:`SupervisionEvent` values, until cancelled or the server stops.
    Events the server dropped for this stream are logged and counted in
    :attr:`dropped`. ``cancel()`` ends it from any thread; the iteration then
    stops without an error."""

    _method = "SystemService/WatchSupervisionEvents"

    def __init__(self, call) -> None:
        super().__init__(call)
        #: Events the server dropped for this stream so far.
        self.dropped = 0

    def _items(self) -> Iterator[Union[Process, SupervisionEvent]]:
        for resp in self._call:
            if resp.dropped > self.dropped:
                log.warning("switchyard supervision watch: the server dropped %d events for this slow stream",
                            resp.dropped - self.dropped)
                self.dropped = resp.dropped
            item = resp.WhichOneof("item")
            if item == "snapshot":
                yield process_from_pb(resp.snapshot)
            elif item == "event":
                yield supervision_event_from_pb(resp.event)


__all__ = ["SupervisionEvent", "SupervisionWatch", "supervision_event_from_pb"]
