"""Live telemetry subscriptions that survive a dropped stream.

A :class:`Subscription` is both an iterator (``for batch in sub``, on grpcio's
blocking API) and an async iterator (``async for batch in sub``, on grpc.aio);
use one or the other, once. It yields :class:`Batch` values. When the stream
breaks with a retryable status (UNAVAILABLE: the server restarted or shut down,
the connection dropped) it reconnects with capped, jittered backoff and resumes
with the same selector. To tell a reconnect to the same server from one to a
restarted server (whose sequence numbers start again at 1), it reads the start
time of the server's root supervisor (SystemService) once per connection.
Samples are checked by a :class:`~switchyard.sequence.SeqTracker`:
a repeat is never delivered, and every gap, repeat or server restart is reported
in ``Batch.events``, in ``Subscription.events``, to the ``on_event`` callback and
to the ``switchyard`` logger, so nothing is hidden.

Resume point: the request for each (re)connection is built by
:func:`resume_request`. With ``resume`` (the default) a reconnect asks the server
to replay its archive from the oldest last timestamp delivered (``since_ns``)
before going live, so the samples published while the stream was down arrive
too; the replay's overlap with what was delivered already is dropped (and
counted in :attr:`Subscription.overlap`). A server that does not archive
answers such a request Unavailable with reason NO_ARCHIVE: the subscription then
resumes live only, and the tracker reports what the outage cost, as it does
with a server whose API has no ``since_ns``.

Reconnecting, cancelling and the two kinds of iteration are those of every
resuming stream (:mod:`switchyard.resume`). Thread safety: iterate from one
thread (or one event loop); :meth:`Subscription.cancel` may be called from any
thread, e.g. a GUI thread on close.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

from switchyard.v1 import telemetry_pb2

from .backoff import Backoff
from .errors import SwitchyardError
from .model import Sample, sample_from_pb
from .resume import Hook, ResumingStream, server_start_fetch, server_start_of
from .sequence import SeqEvent, SeqTracker
from .transport import Connection, Rpc, Stubs

log = logging.getLogger("switchyard")

_SUBSCRIBE: Rpc[telemetry_pb2.SubscribeRequest, telemetry_pb2.SubscribeResponse] = Rpc("TelemetryService", "Subscribe")


@dataclass
class Batch:
    """One batch of a subscription.

    ``samples`` are the new samples (repeats removed), ``dropped`` the server's
    cumulative count of samples this stream lost by reading too slowly (it restarts
    at 0 on a new stream), ``events`` the sequence breaks found in this batch and
    ``reconnects`` how many times the subscription had reconnected so far.
    """

    samples: list[Sample]
    dropped: int = 0
    events: list[SeqEvent] = field(default_factory=list)
    reconnects: int = 0


#: Whether this API version's SubscribeRequest can replay the archive.
HAS_SINCE = "since_ns" in telemetry_pb2.SubscribeRequest.DESCRIPTOR.fields_by_name


def resume_request(base: telemetry_pb2.SubscribeRequest, last_timestamps: dict[tuple[str, str], int],
                   resume: bool = True) -> telemetry_pb2.SubscribeRequest:
    """Returns the request for a (re)connection after ``last_timestamps`` (the
    timestamp of the last delivered sample per channel): with ``resume`` and a
    known position, ``since_ns`` is the oldest of them, so the server replays every
    channel from where the one furthest behind stopped (the archive's microsecond
    timestamps include that sample: the overlap is dropped by the tracker).
    Channels never seen before the break have no position: what they published
    before the reconnect is not replayed. Otherwise the original request."""
    req = telemetry_pb2.SubscribeRequest()
    req.CopyFrom(base)
    if resume and HAS_SINCE and last_timestamps:
        req.since_ns = min(last_timestamps.values())
    return req


class Subscription(ResumingStream[Batch]):
    """A live, reconnecting telemetry stream; see the module documentation."""

    _rpc = _SUBSCRIBE
    _what = "subscription"

    def __init__(
        self,
        conn: Connection,
        stubs: Stubs,
        request: telemetry_pb2.SubscribeRequest,
        *,
        aio: bool = False,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        on_event: Callable[[SeqEvent], None] | None = None,
        on_reconnect: Callable[[int, BaseException | None], None] | None = None,
        resume: bool = True,
    ) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect)
        self._resume = resume
        self._since_ns = 0
        self._request_base = request
        self._on_event = on_event
        self._tracker = SeqTracker()
        self._server_start: int | None = None
        self._prev_server_start: int | None = None
        self._pending_reconnect = False
        #: Every sequence event found so far, in order.
        self.events: list[SeqEvent] = []

    def last_seqs(self) -> dict[tuple[str, str], int]:
        """The last delivered sequence number per (device, channel)."""
        return self._tracker.last_seqs()

    @property
    def overlap(self) -> int:
        """Samples a resume's replay sent again and this subscription dropped."""
        return self._tracker.overlap

    @property
    def resuming(self) -> bool:
        """True while reconnects replay the archive (``resume`` was asked for and the
        server has not said it does not archive)."""
        return self._resume and HAS_SINCE

    # -- hooks ----------------------------------------------------------------------

    def _request(self) -> telemetry_pb2.SubscribeRequest:
        req = resume_request(self._request_base, self._tracker.last_timestamps(), self._resume)
        self._since_ns = req.since_ns if HAS_SINCE else 0
        return req

    def _begin(self, reconnect: bool) -> Hook[Batch]:
        resp = yield server_start_fetch()
        self._connected(server_start_of(resp))

    def _on_response(self, resp: telemetry_pb2.SubscribeResponse) -> Hook[Batch]:
        yield self._batch(resp)

    def _special(self, err: SwitchyardError) -> float | None:
        if self._since_ns and err.reason == "NO_ARCHIVE":
            log.warning("switchyard subscription: the server cannot replay (%s); resuming live only, "
                        "and what the outage cost is reported", err.message)
            self._resume = False
            # This attempt delivered nothing: the next one is still the reconnect.
            self._server_start = self._prev_server_start
            self._pending_reconnect = True
            return 0.0
        return None

    def _broken(self, err: SwitchyardError | None) -> float | None:
        delay = super()._broken(err)
        if delay is not None:
            self._pending_reconnect = True
        return delay

    # -- bookkeeping ----------------------------------------------------------------

    def _batch(self, resp: telemetry_pb2.SubscribeResponse) -> Batch:
        samples, events = self._tracker.check(sample_from_pb(s) for s in resp.samples)
        for ev in events:
            log.warning("switchyard subscription: %s", ev)
            self.events.append(ev)
            if self._on_event is not None:
                self._on_event(ev)
        return Batch(samples, resp.dropped, events, self.reconnects)

    def _connected(self, server_start: int | None) -> None:
        """Notes a (re)established stream and whether the server restarted since."""
        self._prev_server_start = self._server_start
        if self._pending_reconnect:
            restarted = None
            if server_start is not None and self._server_start is not None:
                restarted = server_start != self._server_start
            self._tracker.reconnected(restarted, resumed=self._since_ns > 0)
            self._pending_reconnect = False
        if server_start is not None:
            self._server_start = server_start


def _globs(v: Sequence[str] | str) -> list[str]:
    return [v] if isinstance(v, str) else list(v)


def selector(devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
             tags: Mapping[str, str] | None = None) -> telemetry_pb2.Selector:
    """Returns a Selector of device and channel glob patterns (a single string is
    one pattern) and device tags that must all match (``{"area": "vacuum"}``)."""
    return telemetry_pb2.Selector(devices=_globs(devices), channels=_globs(channels), tags=dict(tags or {}))


__all__ = ["Batch", "Subscription", "resume_request", "selector"]
