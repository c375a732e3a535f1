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
answers such a request Unavailable "does not archive": the subscription then
resumes live only, and the tracker reports what the outage cost, as it does
with a server whose API has no ``since_ns``.

Thread safety: iterate from one thread (or one event loop); :meth:`Subscription.cancel`
may be called from any thread, e.g. a GUI thread on close.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, AsyncIterator, Callable, Iterator, Sequence

import grpc

from switchyard.v1 import system_pb2, system_pb2_grpc, telemetry_pb2, telemetry_pb2_grpc

from .backoff import Backoff
from .errors import RETRYABLE, from_rpc_error
from .model import Sample, sample_from_pb
from .sequence import SeqEvent, SeqTracker

if TYPE_CHECKING:
    from .client import Client

log = logging.getLogger("switchyard")

_METHOD = "TelemetryService/Subscribe"


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


def _no_archive(err: grpc.RpcError) -> bool:
    return err.code() == grpc.StatusCode.UNAVAILABLE and "does not archive" in (err.details() or "")


class Subscription:
    """A live, reconnecting telemetry stream; see the module documentation."""

    def __init__(
        self,
        client: Client,
        request: telemetry_pb2.SubscribeRequest,
        *,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        on_event: Callable[[SeqEvent], None] | None = None,
        on_reconnect: Callable[[int, BaseException], None] | None = None,
        resume: bool = True,
    ) -> None:
        self._client = client
        self._resume = resume
        self._since_ns = 0
        self._request = request
        self._reconnect = reconnect
        self._backoff = backoff or Backoff()
        self._on_event = on_event
        self._on_reconnect = on_reconnect
        self._tracker = SeqTracker()
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._call = None
        self._server_start: int | None = None
        self._prev_server_start: int | None = None
        self._pending_reconnect = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        #: Every sequence event found so far, in order.
        self.events: list[SeqEvent] = []
        #: How many times the stream broke and a reconnect was started.
        self.reconnects = 0
        #: The last retryable error that broke the stream, if any.
        self.last_error: BaseException | None = None

    # -- control ----------------------------------------------------------------

    def cancel(self) -> None:
        """Ends the subscription: the iteration stops without an error. Idempotent;
        callable from any thread."""
        self._cancelled.set()
        with self._lock:
            call, loop, wake = self._call, self._loop, self._wake
        if loop is None:
            if call is not None:
                call.cancel()
            return

        def stop() -> None:
            if call is not None:
                call.cancel()
            if wake is not None:
                wake.set()

        try:
            # One callback: once it runs the iteration may end and its loop close.
            loop.call_soon_threadsafe(stop)
        except RuntimeError:
            pass  # the loop is closed: the iteration has ended already

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancelled.is_set()

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

    def _next_request(self) -> telemetry_pb2.SubscribeRequest:
        req = resume_request(self._request, self._tracker.last_timestamps(), self._resume)
        self._since_ns = req.since_ns if HAS_SINCE else 0
        return req

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()

    # -- shared ------------------------------------------------------------------

    def _batch(self, resp: telemetry_pb2.SubscribeResponse) -> Batch:
        samples, events = self._tracker.check(sample_from_pb(s) for s in resp.samples)
        for ev in events:
            log.warning("switchyard subscription: %s", ev)
            self.events.append(ev)
            if self._on_event is not None:
                self._on_event(ev)
        return Batch(samples, resp.dropped, events, self.reconnects)

    def _broken(self, err: grpc.RpcError | None) -> float | None:
        """Decides after a stream ended: returns None to stop, the delay before
        reconnecting, or raises the mapped error if it must not be retried."""
        if self.cancelled:
            return None
        if err is not None:
            if err.code() == grpc.StatusCode.CANCELLED:
                return None
            if self._since_ns and _no_archive(err):
                log.warning("switchyard subscription: the server cannot replay (%s); resuming live only, "
                            "and what the outage cost is reported", err.details())
                self._resume = False
                # This attempt delivered nothing: the next one is still the reconnect.
                self._server_start = self._prev_server_start
                self._pending_reconnect = True
                return 0.0
            if not self._reconnect or err.code() not in RETRYABLE:
                raise from_rpc_error(err, _METHOD) from None
            self.last_error = from_rpc_error(err, _METHOD)
        elif not self._reconnect:
            return None
        self.reconnects += 1
        self._pending_reconnect = True
        delay = self._backoff.next()
        log.info("switchyard subscription: stream broken (%s); reconnect #%d in %.2fs",
                 self.last_error or "ended", self.reconnects, delay)
        if self._on_reconnect is not None:
            self._on_reconnect(self.reconnects, self.last_error)
        return delay

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

    def _server_start_sync(self) -> int | None:
        try:
            stub = system_pb2_grpc.SystemServiceStub(self._client._channel)
            resp = stub.GetSupervisionTree(system_pb2.GetSupervisionTreeRequest(),
                                           timeout=self._client.timeout, metadata=self._client._metadata)
            return resp.root.started_ns or None
        except grpc.RpcError:
            return None

    async def _server_start_aio(self, channel) -> int | None:
        try:
            stub = system_pb2_grpc.SystemServiceStub(channel)
            resp = await stub.GetSupervisionTree(system_pb2.GetSupervisionTreeRequest(),
                                                 timeout=self._client.timeout, metadata=self._client._metadata)
            return resp.root.started_ns or None
        except grpc.RpcError:
            return None

    # -- blocking iteration ------------------------------------------------------

    def __iter__(self) -> Iterator[Batch]:
        stub = telemetry_pb2_grpc.TelemetryServiceStub(self._client._channel)
        while not self.cancelled:
            req = self._next_request()
            call = stub.Subscribe(req, metadata=self._client._metadata)
            with self._lock:
                self._call = call
            if self.cancelled:
                call.cancel()
            err = None
            try:
                if call.initial_metadata() is not None:
                    self._connected(self._server_start_sync())
                for resp in call:
                    self._backoff.reset()
                    yield self._batch(resp)
            except grpc.RpcError as e:
                err = e
            finally:
                with self._lock:
                    self._call = None
                call.cancel()
            delay = self._broken(err)
            if delay is None:
                return
            if self._cancelled.wait(delay):
                return

    # -- async iteration (grpc.aio) ---------------------------------------------

    async def __aiter__(self) -> AsyncIterator[Batch]:
        channel = self._client._aio_channel()
        stub = telemetry_pb2_grpc.TelemetryServiceStub(channel)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        with self._lock:
            self._loop, self._wake = loop, wake
        try:
            while not self.cancelled:
                req = self._next_request()
                call = stub.Subscribe(req, metadata=self._client._metadata)
                with self._lock:
                    self._call = call
                if self.cancelled:
                    call.cancel()
                err = None
                try:
                    await call.initial_metadata()
                    self._connected(await self._server_start_aio(channel))
                    async for resp in call:
                        self._backoff.reset()
                        yield self._batch(resp)
                except grpc.RpcError as e:
                    err = e
                except asyncio.CancelledError:
                    if not self.cancelled:
                        raise
                finally:
                    with self._lock:
                        self._call = None
                    call.cancel()
                delay = self._broken(err)
                if delay is None:
                    return
                try:
                    await asyncio.wait_for(wake.wait(), delay)
                    return
                except asyncio.TimeoutError:
                    pass
        finally:
            with self._lock:
                self._loop = self._wake = None
            await channel.close()


def selector(devices: Sequence[str] | str = (), channels: Sequence[str] | str = ()) -> telemetry_pb2.Selector:
    """Returns a Selector of device and channel glob patterns (a single string is one pattern)."""
    if isinstance(devices, str):
        devices = [devices]
    if isinstance(channels, str):
        channels = [channels]
    return telemetry_pb2.Selector(devices=list(devices), channels=list(channels))


__all__ = ["Batch", "Subscription", "resume_request", "selector"]
