"""The asyncio client: :class:`AsyncClient`, the same surface as
:class:`~switchyard.Client` on grpc.aio.

Every method has the same name, arguments, return values and exceptions as the
blocking client's; unary calls are coroutines (``await sy.devices()``) and
streams are async iterators (``async for batch in sy.subscribe(...)``), with
the same resuming and reporting. Create and use it on one event loop::

    async with AsyncClient("127.0.0.1:7400") as sy:
        await sy.send_command("psu-01", "set_voltage", 24)
        async for batch in sy.subscribe("psu-01", "voltage"):
            ...
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence, TypeVar

from .alarms import Alarm, AlarmLimits, AlarmWatch
from .backoff import Backoff
from .base import Bucket, ClientBase, History, Identity, OnGap, OnReconnect, Op
from .client import Client
from .devices import DeviceWatch
from .model import CommandReply, ConfigReload, ConfigState, Device, Process, Sample
from .sequence import SeqEvent
from .subscription import Subscription
from .supervision import SupervisionWatch
from .times import Duration, When
from .transport import Stubs

T = TypeVar("T")


class AsyncClient(ClientBase):
    """A connection to one Switchyard server's gRPC port on grpc.aio: the same
    methods as :class:`~switchyard.Client` (see there), awaited. Create it on
    the event loop that uses it and close it with ``await close()`` or
    ``async with``."""

    _aio = True

    def _open(self) -> Stubs:
        return Stubs(self._conn.aio_channel())

    async def _run(self, op: Op[Any, Any, T]) -> T:
        return op.convert(await self._conn.acall(self._stubs, op.rpc, op.request, op.timeout))

    async def close(self) -> None:
        await self._stubs.channel.close()  # type: ignore[misc]

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def devices(self) -> list[Device]:
        return await self._run(self._op_devices())

    async def device(self, name: str) -> Device:
        return await self._run(self._op_device(name))

    async def send_command(self, device: str, name: str | None = None, *args: object, raw: str | None = None,
                           timeout: Duration | None = None) -> CommandReply:
        return await self._run(self._op_send_command(device, name, args, raw, timeout))

    async def abort_command(self, device: str, reason: str = "") -> str:
        return await self._run(self._op_abort(device, reason))

    def watch_devices(self, devices: Sequence[str] | str = (), *, reconnect: bool = True,
                      backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                      on_gap: OnGap | None = None, resume: bool = True) -> DeviceWatch:
        return self._watch_devices(devices, reconnect, backoff, on_reconnect, on_gap, resume)

    async def latest(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (), *,
                     tags: Mapping[str, str] | None = None) -> list[Sample]:
        return await self._run(self._op_latest(devices, channels, tags))

    def subscribe(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (), *,
                  tags: Mapping[str, str] | None = None, since: When | None = None, batch_window_ms: int = 0,
                  max_batch: int = 0, reconnect: bool = True, backoff: Backoff | None = None,
                  on_event: Callable[[SeqEvent], None] | None = None,
                  on_reconnect: OnReconnect | None = None, resume: bool = True) -> Subscription:
        return self._subscribe(devices, channels, tags, since, batch_window_ms, max_batch, reconnect, backoff,
                               on_event, on_reconnect, resume)

    async def history(self, device: str, channel: str, start: When | None = None, end: When | None = None,
                      limit: int | None = None, *, start_ns: int | None = None,
                      end_ns: int | None = None) -> History[Sample]:
        return await self._run(self._op_history(device, channel, start, end, limit, start_ns, end_ns))

    async def history_buckets(self, device: str, channel: str, start: When | None = None, end: When | None = None, *,
                              interval: Duration, aggregate: str = "avg", limit: int | None = None,
                              start_ns: int | None = None, end_ns: int | None = None) -> History[Bucket]:
        return await self._run(self._op_history_buckets(device, channel, start, end, interval, aggregate, limit,
                                                        start_ns, end_ns))

    async def alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
                     groups: Sequence[str] | str = (), *, include_shelved: bool = False) -> list[Alarm]:
        return await self._run(self._op_alarms(devices, channels, groups, include_shelved))

    async def alarm(self, device: str, channel: str) -> Alarm:
        return await self._run(self._op_alarm(device, channel))

    async def acknowledge(self, device: str, channel: str, who: str | None = None, comment: str = "") -> Alarm:
        return await self._run(self._op_acknowledge(device, channel, who, comment))

    async def shelve(self, device: str, channel: str, until: When | None, who: str | None = None,
                     comment: str = "") -> Alarm:
        return await self._run(self._op_shelve(device, channel, until, who, comment))

    async def set_alarm_limits(self, device: str, channel: str, limits: AlarmLimits, who: str | None = None,
                               comment: str = "") -> Alarm:
        return await self._run(self._op_set_alarm_limits(device, channel, limits, who, comment))

    def watch_alarms(self, devices: Sequence[str] | str = (), channels: Sequence[str] | str = (),
                     groups: Sequence[str] | str = (), *, include_active: bool = True, reconnect: bool = True,
                     backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                     on_gap: OnGap | None = None, resume: bool = True) -> AlarmWatch:
        return self._watch_alarms(devices, channels, groups, include_active, reconnect, backoff, on_reconnect,
                                  on_gap, resume)

    async def supervision_tree(self) -> Process:
        return await self._run(self._op_supervision_tree())

    async def restart_process(self, path: str) -> None:
        return await self._run(self._op_restart_process(path))

    async def reload_config(self, dry_run: bool = False) -> ConfigReload:
        return await self._run(self._op_reload_config(dry_run))

    async def get_config(self) -> ConfigState:
        return await self._run(self._op_config())

    async def identity(self) -> Identity:
        return await self._run(self._op_identity())

    def watch_supervision(self, include_snapshot: bool = True, processes: Sequence[str] | str = (),
                          kinds: Sequence[str] | str = (), *, reconnect: bool = True,
                          backoff: Backoff | None = None, on_reconnect: OnReconnect | None = None,
                          on_gap: OnGap | None = None) -> SupervisionWatch:
        return self._watch_supervision(include_snapshot, processes, kinds, reconnect, backoff, on_reconnect, on_gap)


# One documentation for both clients.
for _name, _fn in vars(AsyncClient).items():
    if callable(_fn) and not _name.startswith("_") and getattr(Client, _name, None) is not None:
        _fn.__doc__ = getattr(Client, _name).__doc__

__all__ = ["AsyncClient"]
