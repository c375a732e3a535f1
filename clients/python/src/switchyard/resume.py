"""Server streams that resume after a break, for blocking and asyncio callers.

A :class:`ResumingStream` is the base of the subscription and of the device,
alarm and supervision watches. It is both an iterator (``for x in watch``, on
grpcio's blocking API) and an async iterator (``async for x in watch``, on
grpc.aio); use one or the other, once. When the stream breaks with a retryable
status (see :func:`switchyard.errors.retryable`: the server restarted or shut
down, the connection dropped, the server cut a stalled stream) it reconnects
with capped, jittered backoff and the subclass re-establishes what the stream
represents: the telemetry, alarm transitions and device states from the
server's archive (``since_ns``: replayed, the overlap dropped, so nothing is
missed or repeated), then the state as it is now (the device states, the
active alarms, the supervision tree). What it could not recover is reported:
as a :class:`Gap` (watches; in ``gaps``, to ``on_gap`` and to the
``switchyard`` logger) or as sequence events (subscriptions). Supervision
events are not archived, so the supervision watch always reports its gap; the
alarm and device watches do when the server has no archive (or it does not
answer). A hook raises :class:`Resume` to resume at once from the archive when
the server dropped items for a slow stream. A failure that is not retryable
(INTERNAL, UNKNOWN, INVALID_ARGUMENT, ...) ends the iteration with the
client's exception.

Subclasses are written once for both kinds of iteration: their hooks are
generators that yield either items for the caller or :class:`Fetch` requests
for a unary call, whose result the driver sends back (None for a failed
optional fetch). The drivers here run those calls blocking or awaited.

Thread safety: iterate from one thread (or one event loop); :meth:`cancel` may
be called from any thread, e.g. a GUI thread on close.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Generator, Generic, Iterator, Mapping, TypeVar, Union

import grpc
import grpc.aio

from switchyard.v1 import system_pb2

from .backoff import Backoff
from .errors import SwitchyardError, from_rpc_error, retryable
from .transport import Connection, Rpc, Stubs

log = logging.getLogger("switchyard")

T = TypeVar("T")

_TREE: Rpc[system_pb2.GetSupervisionTreeRequest, system_pb2.GetSupervisionTreeResponse] = Rpc(
    "SystemService", "GetSupervisionTree")


@dataclass(frozen=True)
class Fetch:
    """A unary call a stream's hook needs; the driver sends back its response,
    or the client's exception when an ``optional`` call failed (a failure of a
    required one breaks the stream like a failure of the stream itself)."""

    rpc: Rpc[Any, Any]
    request: Any
    optional: bool = False


#: What a hook yields: an item for the caller, or a unary call to make.
Step = Union[Fetch, T]
#: A hook: a generator of steps that receives fetch results.
Hook = Generator[Union[Fetch, T], Any, None]


#: A ``since_ns`` later than anything an archive can hold: the server replays
#: nothing and answers at once with the replay's end, which tells the watch that
#: the server can replay (and, for alarms, where the live part starts).
FAR_FUTURE_NS = 1 << 62


class Resume(SwitchyardError):
    """Raised by a watch's hook to end its stream and resume at once from the
    archive: the server dropped items for this slow stream, and the archive
    has them. Never reaches the caller."""

    code = grpc.StatusCode.UNAVAILABLE


def server_start_fetch() -> Fetch:
    """The fetch of the server's start time (its supervision tree root's
    ``started_ns``), which tells a reconnect to a restarted server from one to
    the same server."""
    return Fetch(_TREE, system_pb2.GetSupervisionTreeRequest(), optional=True)


def server_start_of(resp: object) -> int | None:
    """The start time in a server_start_fetch response (None if unknown)."""
    if isinstance(resp, system_pb2.GetSupervisionTreeResponse):
        return resp.root.started_ns or None
    return None


@dataclass(frozen=True)
class Gap:
    """What a watch could not recover while its stream was broken.

    ``watch`` names it (``"devices"``, ``"alarms"``, ``"supervision"``);
    ``down_ns``..``up_ns`` (client clock, ns since the Unix epoch) is when it
    was not listening; ``server_restarted`` says whether the server restarted
    meanwhile (None: unknown); ``error`` is what broke the stream. ``lost``
    says in words what was not received (one line each) and ``counts`` holds
    the changes known to be missed per device or process (reconnections,
    restarts). The watch's state (device states, active alarms, the tree) was
    read again: only the transitions in between are lost.
    """

    watch: str
    down_ns: int
    up_ns: int
    server_restarted: bool | None
    error: str
    lost: tuple[str, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict, hash=False)

    @property
    def seconds(self) -> float:
        """How long the watch was not listening."""
        return (self.up_ns - self.down_ns) / 1e9

    def __str__(self) -> str:
        restart = {True: "; the server restarted", False: "", None: "; server restart unknown"}[self.server_restarted]
        head = f"{self.watch} watch: not listening for {self.seconds:.1f} s ({self.error or 'stream ended'}){restart}"
        return "; ".join([head, *self.lost])


@dataclass
class GapDraft:
    """A gap being put together while a resumed stream re-reads its state."""

    watch: str
    down_ns: int
    up_ns: int
    server_restarted: bool | None
    error: str
    lost: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def gap(self, counted: str) -> Gap:
        """The finished Gap; each count is worded as ``counted`` (e.g.
        ``"reconnection"``) in ``lost``."""
        lost = list(self.lost)
        for name, n in sorted(self.counts.items()):
            lost.append(f"{name}: {n} {counted}{'s' if n != 1 else ''} not seen")
        return Gap(self.watch, self.down_ns, self.up_ns, self.server_restarted, self.error, tuple(lost),
                   dict(self.counts))


def clock(ns: int) -> str:
    """A local wall-clock time of day with milliseconds, for gap texts."""
    return time.strftime("%H:%M:%S", time.localtime(ns / 1e9)) + f".{ns // 1_000_000 % 1000:03d}"


class ResumingStream(Generic[T]):
    """A server stream that reconnects and resumes; see the module documentation.

    Subclasses set :attr:`_rpc` and implement :meth:`_request`, :meth:`_begin`
    and :meth:`_on_response`.
    """

    #: The streaming RPC.
    _rpc: Rpc[Any, Any]
    #: The stream's name in logs, and in gaps.
    _what = "stream"
    _gap_name = "stream"

    def __init__(self, conn: Connection, stubs: Stubs, *, aio: bool = False, reconnect: bool = True,
                 backoff: Backoff | None = None,
                 on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                 on_gap: Callable[[Gap], None] | None = None) -> None:
        self._conn = conn
        # A Client's stream has blocking stubs (and opens an aio channel of its
        # own when iterated with async for); an AsyncClient's has aio stubs.
        self._stubs: Stubs | None = None if aio else stubs
        self._aio_stubs: Stubs | None = stubs if aio else None
        self._reconnect = reconnect
        self._backoff = backoff or Backoff()
        self._on_reconnect = on_reconnect
        self._on_gap = on_gap
        self._lock = threading.Lock()
        self._cancelled = threading.Event()
        self._call: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._established = False
        self._ever_established = False
        self._down_ns = 0
        # The server's start time as last seen (see _server_restarted).
        self._server_start: int | None = None
        #: How many times the stream broke and a reconnect was started.
        self.reconnects = 0
        #: The last retryable error that broke the stream, if any.
        self.last_error: SwitchyardError | None = None
        #: What the watch could not recover across each break, oldest first.
        self.gaps: list[Gap] = []

    # -- subclass hooks -------------------------------------------------------------

    def _request(self) -> Any:
        """The request for the next connection."""
        raise NotImplementedError

    def _begin(self, reconnect: bool) -> Hook[T]:
        """Runs once the stream's headers arrived (the server has subscribed it):
        ``reconnect`` says an earlier connection had been established."""
        return iter(())  # type: ignore[return-value]

    def _on_response(self, resp: Any) -> Hook[T]:
        """Turns one response into items (and fetches)."""
        raise NotImplementedError

    def _special(self, err: SwitchyardError) -> float | None:
        """A subclass's own answer to an error (a delay to reconnect after), or
        None to apply the usual rule. A :class:`Resume` reconnects at once."""
        if isinstance(err, Resume):
            log.info("switchyard %s: %s; resuming from the archive", self._what, err.message)
            return 0.0
        return None

    # -- control --------------------------------------------------------------------

    def cancel(self) -> None:
        """Ends the stream: the iteration stops without an error. Idempotent;
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

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()

    async def __aenter__(self: _S) -> _S:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.cancel()

    # -- shared decisions -----------------------------------------------------------

    def _server_restarted(self, resp: object) -> bool | None:
        """Notes the server's start time in a :func:`server_start_fetch`
        response and says whether the server restarted since the last one
        (None: unknown)."""
        start, last = server_start_of(resp), self._server_start
        if start is None:
            return None
        self._server_start = start
        return None if last is None else start != last

    def _report(self, gap: Gap) -> None:
        log.warning("switchyard %s", gap)
        self.gaps.append(gap)
        if self._on_gap is not None:
            self._on_gap(gap)

    def _draft(self, restarted: bool | None, what: str) -> GapDraft:
        """A gap for the break just resumed from, its first line saying that
        ``what`` between the break and now was not received."""
        down, now = self._down_ns or time.time_ns(), time.time_ns()
        d = GapDraft(self._gap_name, down, now, restarted, str(self.last_error or ""))
        d.lost.append(f"{what} between {clock(down)} and {clock(now)} not received")
        if restarted:
            d.lost.append("the server restarted")
        return d

    def _broken(self, err: SwitchyardError | None) -> float | None:
        """Decides after a stream ended: None to stop, the delay before
        reconnecting, or raises ``err`` if it must not be retried."""
        if self.cancelled:
            return None
        if self._established:
            self._established = False
            self._down_ns = time.time_ns()
        if err is not None:
            if err.code == grpc.StatusCode.CANCELLED:
                return None
            special = self._special(err)
            if special is not None:
                return special
            if not self._reconnect or not retryable(err):
                raise err
            self.last_error = err
        elif not self._reconnect:
            return None
        self.reconnects += 1
        delay = self._backoff.next()
        log.info("switchyard %s: stream broken (%s); reconnect #%d in %.2fs",
                 self._what, self.last_error or "ended", self.reconnects, delay)
        if self._on_reconnect is not None:
            self._on_reconnect(self.reconnects, self.last_error)
        return delay

    def _up(self) -> None:
        """Notes an established stream: subscribed on the server, its begin hook
        done (what it re-reads read)."""
        self._established = self._ever_established = True

    def _set_call(self, call: Any) -> None:
        with self._lock:
            self._call = call
        if call is not None and self.cancelled:
            call.cancel()

    # -- blocking iteration ---------------------------------------------------------

    def _steps_sync(self, stubs: Stubs, hook: Hook[T]) -> Iterator[T]:
        try:
            step = next(hook)
            while True:
                if isinstance(step, Fetch):
                    result: Any
                    try:
                        result = self._conn.call(stubs, step.rpc, step.request)
                    except SwitchyardError as e:
                        if not step.optional:
                            raise
                        result = e
                    step = hook.send(result)
                else:
                    yield step
                    step = next(hook)
        except StopIteration:
            return

    def __iter__(self) -> Iterator[T]:
        stubs = self._stubs
        if stubs is None:
            raise TypeError(f"an AsyncClient's {self._what} is iterated with async for")
        while not self.cancelled:
            call = self._rpc.bind(stubs)(self._request(), metadata=self._conn.metadata)
            self._set_call(call)
            err: SwitchyardError | None = None
            try:
                if call.initial_metadata() is not None and not (call.done() and call.code() != grpc.StatusCode.OK):
                    yield from self._steps_sync(stubs, self._begin(self._ever_established))
                    self._up()
                for resp in call:
                    self._backoff.reset()
                    yield from self._steps_sync(stubs, self._on_response(resp))
            except grpc.RpcError as e:
                err = from_rpc_error(e, self._rpc.method)
            except SwitchyardError as e:
                err = e
            finally:
                self._set_call(None)
                call.cancel()
            delay = self._broken(err)
            if delay is None or self._cancelled.wait(delay):
                return

    # -- async iteration (grpc.aio) -------------------------------------------------

    async def _steps_aio(self, stubs: Stubs, hook: Hook[T]) -> AsyncIterator[T]:
        try:
            step = next(hook)
            while True:
                if isinstance(step, Fetch):
                    result: Any
                    try:
                        result = await self._conn.acall(stubs, step.rpc, step.request)
                    except SwitchyardError as e:
                        if not step.optional:
                            raise
                        result = e
                    step = hook.send(result)
                else:
                    yield step
                    step = next(hook)
        except StopIteration:
            return

    async def __aiter__(self) -> AsyncIterator[T]:
        own: grpc.aio.Channel | None = None
        stubs = self._aio_stubs
        if stubs is None:  # a blocking Client's stream, iterated on an event loop
            own = self._conn.aio_channel()
            stubs = Stubs(own)
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()
        with self._lock:
            self._loop, self._wake = loop, wake
        try:
            while not self.cancelled:
                call = self._rpc.bind(stubs)(self._request(), metadata=self._conn.metadata)
                self._set_call(call)
                err: SwitchyardError | None = None
                try:
                    await call.initial_metadata()
                    if not (call.done() and await call.code() != grpc.StatusCode.OK):
                        async for item in self._steps_aio(stubs, self._begin(self._ever_established)):
                            yield item
                        self._up()
                    async for resp in call:
                        self._backoff.reset()
                        async for item in self._steps_aio(stubs, self._on_response(resp)):
                            yield item
                except grpc.RpcError as e:
                    err = from_rpc_error(e, self._rpc.method)
                except SwitchyardError as e:
                    err = e
                except asyncio.CancelledError:
                    if not self.cancelled:
                        raise
                finally:
                    self._set_call(None)
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
            if own is not None:
                await own.close()


_S = TypeVar("_S", bound=ResumingStream[Any])

__all__ = ["FAR_FUTURE_NS", "Fetch", "Gap", "GapDraft", "Hook", "Resume", "ResumingStream", "clock", "server_start_fetch",
           "server_start_of"]
