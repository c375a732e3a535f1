"""The device watch: every selected device's state, then each change, resumed
across server restarts and dropped connections.

After a break the watch subscribes again; the server sends every selected
device's current state first, so the states are whole again at once. A device
whose state did not change meanwhile is not repeated. What could not be
recovered is reported as a :class:`~switchyard.resume.Gap`: the state changes
in between, and exactly how many reconnections each device went through
unseen (its :attr:`~switchyard.model.Device.reconnections` grew; across a
server restart the counts start again, so the gap says the server restarted
instead). A device the server no longer has is yielded once more with state
``"STOPPED"`` (the server's state for a removed device) and named in the gap.

A device a configuration reload removes while the watch runs is yielded once
more with its final state, as the server sends it (``"STOPPED"``,
``last_error`` saying why), and not after; one a reload adds appears with its
first state. The reloads themselves are not yielded (see
:meth:`Client.watch_events` and :meth:`Client.get_config`).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

from switchyard.v1 import device_pb2

from .backoff import Backoff
from .model import Device, device_from_pb
from .resume import Fetch, Gap, GapDraft, Hook, ResumingStream, server_start_fetch, server_start_of
from .transport import Connection, Rpc, Stubs

_WATCH: Rpc[device_pb2.WatchDevicesRequest, device_pb2.WatchDevicesResponse] = Rpc("DeviceService", "WatchDevices")
_LIST: Rpc[device_pb2.ListDevicesRequest, device_pb2.ListDevicesResponse] = Rpc("DeviceService", "ListDevices")


class DeviceWatch(ResumingStream[tuple[Device, int]]):
    """The iterator :meth:`Client.watch_devices` returns: ``(Device,
    timestamp_ns)`` for every selected device, then for each change, until
    cancelled. Resumes after a break; see the module documentation.
    ``cancel()`` ends it from any thread; the iteration then stops without an
    error."""

    _rpc = _WATCH
    _what = "device watch"
    _gap_name = "devices"

    def __init__(self, conn: Connection, stubs: Stubs, devices: Sequence[str], *,
                 aio: bool = False, reconnect: bool = True, backoff: Backoff | None = None,
                 on_reconnect: Callable[[int, BaseException | None], None] | None = None,
                 on_gap: Callable[[Gap], None] | None = None) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect,
                         on_gap=on_gap)
        self._devices = list(devices)
        #: The last (Device, timestamp_ns) yielded per device name.
        self._known: dict[str, tuple[Device, int]] = {}
        self._server_start: int | None = None
        # After a reconnect: the devices whose first (snapshot) state is awaited,
        # and the gap being put together meanwhile.
        self._pending: set[str] = set()
        self._draft_gap: GapDraft | None = None

    def _request(self) -> device_pb2.WatchDevicesRequest:
        return device_pb2.WatchDevicesRequest(devices=self._devices)

    def _begin(self, reconnect: bool) -> Hook[tuple[Device, int]]:
        start = server_start_of((yield server_start_fetch()))
        restarted = None
        if start is not None and self._server_start is not None:
            restarted = start != self._server_start
        if start is not None:
            self._server_start = start
        if not reconnect or not self._known:
            return
        listed: device_pb2.ListDevicesResponse = yield Fetch(_LIST, device_pb2.ListDevicesRequest())
        names = {d.name for d in listed.devices}
        draft = self._draft(restarted, "device state changes")
        if restarted:
            draft.lost.append("reconnection counts started again")
        for name in sorted(set(self._known) - names):
            dev, _ = self._known.pop(name)
            draft.lost.append(f"{name}: no longer on the server (shown as STOPPED)")
            yield dataclasses.replace(dev, state="STOPPED", connected_since=None, next_attempt=None), draft.up_ns
        self._pending = set(self._known)
        self._draft_gap = draft
        if not self._pending:
            self._finish_gap()

    def _on_response(self, resp: device_pb2.WatchDevicesResponse) -> Hook[tuple[Device, int]]:
        if not resp.HasField("device"):
            return  # a configuration reload: the changes it made came before it
        dev, ts = device_from_pb(resp.device), resp.timestamp_ns
        if resp.removed:
            # Removed by a reload: its final state, and nothing of it after.
            self._known.pop(dev.name, None)
            self._pending.discard(dev.name)
            if self._draft_gap is not None and not self._pending:
                self._finish_gap()
            yield dev, ts
            return
        prev = self._known.get(dev.name)
        if dev.name in self._pending and self._draft_gap is not None:
            # The first state after a reconnect is the device's snapshot.
            self._pending.discard(dev.name)
            if prev is not None and not self._draft_gap.server_restarted:
                missed = dev.reconnections - prev[0].reconnections
                if missed > 0:
                    self._draft_gap.counts[dev.name] = missed
            if not self._pending:
                self._finish_gap()
        if prev == (dev, ts):
            return  # unchanged since it was last yielded: not repeated
        self._known[dev.name] = (dev, ts)
        yield dev, ts

    def _finish_gap(self) -> None:
        draft, self._draft_gap = self._draft_gap, None
        if draft is not None:
            self._report(draft.gap("reconnection"))


__all__ = ["DeviceWatch"]
