"""The blocking client: one object per server, plain values in and out."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, TypeVar

from .alarms import Alarm, AlarmLimits, AlarmWatch
from .backoff import Backoff
from .base import Bucket, ClientBase, History, Identity, OnGap, OnReconnect, Op
from .devices import DeviceWatch
from .model import CommandReply, ConfigReload, ConfigState, Device, Process, Sample
from .sequence import SeqEvent
from .subscription import Subscription
from .supervision import SupervisionWatch
from .times import Duration, When
from .transport import KEEPALIVE_OPTIONS, TLS, Stubs

T = TypeVar("T")


class Client(ClientBase):
    """A connection to one Switchyard server's gRPC port, on grpcio's blocking API
    (:class:`~switchyard.AsyncClient` is the same on asyncio).

    ``address`` is host:port (default ``127.0.0.1:7400``); ``token``, if given,
    is sent as ``authorization: Bearer <token>`` on every call (without one, the
    ``SWITCHYARD_TOKEN`` environment variable, or the first line of the file
    ``SWITCHYARD_TOKEN_FILE`` names); ``tls`` selects transport security (see
    :data:`~switchyard.transport.TLS`); ``timeout`` bounds every unary call
    (seconds or a timedelta). Every call also names the client and its version
    (``x-switchyard-client: switchyard-python/<version>``). Failed calls raise
    :class:`~switchyard.errors.SwitchyardError` subclasses carrying the server's
    message and reason.

    A Client is safe to use from several threads (grpcio channels are); close it
    with :meth:`close` or a ``with`` block. Do not share one across ``fork``.
    """

    def _open(self) -> Stubs:
        return Stubs(self._conn.sync_channel())

    def _run(self, op: Op[Any, Any, T]) -> T:
        return op.convert(self._conn.call(self._stubs, op.rpc, op.request, op.timeout))

    def close(self) -> None:
        """Closes the channel; calls and streams in flight end. Idempotent."""
        self._stubs.channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- devices -------------------------------------------------------------------

    def devices(self) -> list[Device]:
        """Returns every configured device with its current state."""
        return self._run(self._op_devices())

    def device(self, name: str) -> Device:
        """Returns one device by name; raises NotFound if there is none."""
        return self._run(self._op_device(name))

    def send_command(self, device: str, name: str | None = None, *args: object, raw: str | None = None,
                     timeout: Duration | None = None) -> CommandReply:
        """Sends a named command with its arguments (``send_command("psu-01",
        "set_voltage", 24)``) or, with ``raw=``, a raw line, and returns the reply
        once the device has executed it. ``timeout`` (seconds or a timedelta) is
        how long the server waits for the device; the call itself may take a
        little longer. Raises InvalidArgument for an unknown command or a bad
        argument, InstrumentError when the instrument refuses it, NotSettled when
        its read-back does not settle, DeviceNotConnected, DeviceBusy, ..."""
        return self._run(self._op_send_command(device, name, args, raw, timeout))

    def abort_command(self, device: str, reason: str = "") -> str:
        """Aborts the command ``device`` is executing, ahead of its queued commands,
        and returns it (for example ``"set_voltage 24"``), or ``""`` if the device
        was idle. The aborted :meth:`send_command` raises :class:`Aborted` with
        ``reason`` in its message. Raises NotFound for an unknown device."""
        return self._run(self._op_abort(device, reason))

    def watch_devices(self, devices: Sequence[str] | str = (), *, reconnect: bool = True,
                      backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                      on_gap: OnGap | None = None, resume: bool = True) -> DeviceWatch:
        """Returns an iterator of (Device, timestamp_ns): the current state of every
        selected device (glob patterns; empty: all), then each change, until
        cancelled. It resumes after a server restart or a dropped connection:
        with ``resume`` (the default) from the server's archive, so no state
        change is missed or repeated; what it could not recover is reported as
        a Gap (``watch.gaps``, ``on_gap``); see :mod:`switchyard.devices`. Its
        ``cancel()`` may be called from any thread."""
        return self._watch_devices(devices, reconnect, backoff, on_reconnect, on_gap, resume)

    # -- telemetry -----------------------------------------------------------------

    def latest(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (), *,
               tags: Mapping[str, str] | None = None) -> list[Sample]:
        """Returns the most recent sample of each channel matching the glob patterns
        (empty: all) of the devices carrying all of ``tags``."""
        return self._run(self._op_latest(devices, channels, tags))

    def subscribe(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (), *,
                  tags: Mapping[str, str] | None = None, since: When | None = None, batch_window_ms: int = 0,
                  max_batch: int = 0, reconnect: bool = True, backoff: Backoff | None = None,
                  on_event: Callable[[SeqEvent], None] | None = None,
                  on_reconnect: OnReconnect | None = None, resume: bool = True) -> Subscription:
        """Returns a live subscription to the channels matching the glob patterns,
        of the devices carrying all of ``tags`` (``{"area": "vacuum"}``).

        Iterate it (``for batch in sub``) or iterate it asynchronously on grpc.aio
        (``async for batch in sub``); each item is a Batch of plain Samples. With
        ``since`` (a datetime, Unix seconds, or a timedelta back from now) the
        server first replays its archive from then. With ``reconnect`` (the
        default) a broken stream is re-established with ``backoff``; with
        ``resume`` (the default) it replays the server's archive from where it
        stopped, so nothing is missed or repeated (a server that does not archive
        resumes live). Every sequence gap, repeat or server restart is reported
        (``on_event``, ``Batch.events``, ``Subscription.events``)."""
        return self._subscribe(devices, channels, tags, since, batch_window_ms, max_batch, reconnect, backoff,
                               on_event, on_reconnect, resume)

    def history(self, device: str, channel: str, start: When | None = None, end: When | None = None,
                limit: int | None = None, *, start_ns: int | None = None, end_ns: int | None = None) -> History[Sample]:
        """Returns the archived samples of one channel in [``start``, ``end``)
        (datetimes, Unix seconds, or timedeltas back from now:
        ``start=timedelta(minutes=10)``; no ``end``: now; ``start_ns``/``end_ns``
        give exact nanoseconds instead), oldest first, as plain Samples in a list
        whose ``truncated`` says the range held more than ``limit`` (server
        default 10,000, at most 100,000): ask again with
        ``start_ns=rows.next_start_ns``. Timestamps have the archive's microsecond
        precision. Raises NoArchive (an Unavailable) when the server archives
        nowhere."""
        return self._run(self._op_history(device, channel, start, end, limit, start_ns, end_ns))

    def history_buckets(self, device: str, channel: str, start: When | None = None, end: When | None = None, *,
                        interval: Duration, aggregate: str = "avg", limit: int | None = None,
                        start_ns: int | None = None, end_ns: int | None = None) -> History[Bucket]:
        """Returns one channel's archive downsampled into buckets of ``interval``
        (seconds or a timedelta, at least 1 ms): a list of Bucket(timestamp_ns,
        value, count) with ``aggregate`` ("avg", "min", "max", "first", "last" or
        "count") of each interval's good numeric samples; times and ``truncated``
        as for :meth:`history`."""
        return self._run(self._op_history_buckets(device, channel, start, end, interval, aggregate, limit,
                                                  start_ns, end_ns))

    # -- alarms --------------------------------------------------------------------

    def alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
               groups: Sequence[str] | str = (), *, include_shelved: bool = False) -> list[Alarm]:
        """Returns the active alarms (in alarm, or latched and not acknowledged)
        matching the glob patterns (empty: all); shelved ones only with
        ``include_shelved``."""
        return self._run(self._op_alarms(devices, channels, groups, include_shelved))

    def alarm(self, device: str, channel: str) -> Alarm:
        """Returns one channel's alarm state and limits, active or not; raises
        NotFound if no alarm rule covers the channel."""
        return self._run(self._op_alarm(device, channel))

    def acknowledge(self, device: str, channel: str, who: str | None = None, comment: str = "") -> Alarm:
        """Acknowledges a channel's alarm and returns its state after. ``who``
        defaults to the OS user name. Acknowledging twice is harmless; a channel
        not in alarm raises InvalidArgument, one without alarm rule NotFound."""
        return self._run(self._op_acknowledge(device, channel, who, comment))

    def shelve(self, device: str, channel: str, until: When | None, who: str | None = None,
               comment: str = "") -> Alarm:
        """Hides a channel's alarm from panels until ``until`` (a datetime, Unix
        seconds, or a timedelta from now); ``None`` unshelves it. Returns the
        alarm's state after. ``who`` defaults to the OS user name."""
        return self._run(self._op_shelve(device, channel, until, who, comment))

    def set_alarm_limits(self, device: str, channel: str, limits: AlarmLimits, who: str | None = None,
                         comment: str = "") -> Alarm:
        """Replaces a channel's alarm limits at run time (recorded as a
        LIMITS_CHANGED transition) and returns the alarm under the new limits.
        Bad limits raise InvalidArgument naming the field."""
        return self._run(self._op_set_alarm_limits(device, channel, limits, who, comment))

    def watch_alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
                     groups: Sequence[str] | str = (), *, include_active: bool = True, reconnect: bool = True,
                     backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                     on_gap: OnGap | None = None, resume: bool = True) -> AlarmWatch:
        """Returns an iterator of AlarmTransition for the alarms matching the glob
        patterns: with ``include_active``, first one ``"ACTIVE"`` item per alarm
        active when the stream began, then every transition, until cancelled. It
        resumes after a break: with ``resume`` (the default) it replays the
        server's archive from its last transition, so none is missed or
        repeated; then it re-lists the active alarms, and reports what it could
        not recover as a Gap. See :class:`~switchyard.alarms.AlarmWatch`."""
        return self._watch_alarms(devices, channels, groups, include_active, reconnect, backoff, on_reconnect,
                                  on_gap, resume)

    # -- system --------------------------------------------------------------------

    def supervision_tree(self) -> Process:
        """Returns a snapshot of the server's supervision tree."""
        return self._run(self._op_supervision_tree())

    def restart_process(self, path: str) -> None:
        """Restarts one process of the supervision tree by its path below the root
        (``"devices/psu-05"``): an operator's "reconnect now". Raises NotFound for
        an unknown path."""
        return self._run(self._op_restart_process(path))

    def reload_config(self, dry_run: bool = False) -> ConfigReload:
        """Asks the server to read its configuration file again and apply it as
        a diff (admin only): added devices start, removed ones stop, changed
        ones restart, the others are not touched. With ``dry_run`` it only says
        what would change. Raises ConfigInvalid, whose ``problems`` list every
        problem of the file, when the server refused it (nothing changed)."""
        return self._run(self._op_reload_config(dry_run))

    def get_config(self) -> ConfigState:
        """Returns which configuration the server runs: its file, hash, when and
        by whom it was loaded, and the last reload."""
        return self._run(self._op_config())

    def identity(self) -> Identity:
        """Returns who the server takes this client to be, its role, the RPCs it
        may call, and the server's version (``identity().server_version``)."""
        return self._run(self._op_identity())

    def watch_supervision(self, include_snapshot: bool = True, processes: Sequence[str] | str = (),
                          kinds: Sequence[str] | str = (), *, reconnect: bool = True,
                          backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                          on_gap: OnGap | None = None) -> SupervisionWatch:
        """Returns an iterator over the supervision tree's lifecycle: first the
        whole tree as a Process (with ``include_snapshot``; no event falls between
        it and the events), then a SupervisionEvent per change, until cancelled.
        ``processes`` keeps only events about processes whose path below the root
        matches one of the glob patterns (``"devices/psu-0*"``; ``"devices"`` for
        the device supervisor itself); ``kinds`` only those kinds (``"STATUS"``,
        ``"EXITED"``, ...). It resumes after a break and reports what it missed
        as a Gap. Raises InvalidArgument for a bad pattern or an unknown kind."""
        return self._watch_supervision(include_snapshot, processes, kinds, reconnect, backoff, on_reconnect, on_gap)


__all__ = ["Bucket", "Client", "History", "Identity", "KEEPALIVE_OPTIONS", "TLS"]
