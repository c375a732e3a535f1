"""The device watch: every selected device's state, then each change, resumed
across server restarts and dropped connections.

After a break the watch subscribes again. With ``resume`` (the default)
against a server that archives, it asks for the archive's state changes from
the oldest last timestamp of its devices (``since_ns``) and drops, per device,
what is not newer than the state it had (:attr:`DeviceWatch.overlap`): every
state change that happened meanwhile is yielded once, in order, then the
current states, then the live changes; nothing is reported lost but the states
the server's archiver itself skipped (it records how many). A replayed state
holds what the archive records (state, time, error, identity, next attempt,
reconnections) with the device's configuration now.

Without an archive the server sends every selected device's current state
first, so the states are whole again at once; a device whose state did not
change meanwhile is not repeated. What could not be recovered is reported as a
:class:`~switchyard.resume.Gap`: the state changes in between, and exactly how
many reconnections each device went through unseen (its
:attr:`~switchyard.model.Device.reconnections` grew; across a server restart
the counts start again, so the gap says the server restarted instead). A
device the server no longer has is yielded once more with state ``"STOPPED"``
(the server's state for a removed device) and named in the gap.

State changes the server skipped for a slow reader (``skipped``) are replayed
from the archive the same way (the watch resumes at once), or reported as a
gap without one.

A device a configuration reload removes while the watch runs is yielded once
more with its final state, as the server sends it (``"STOPPED"``,
``last_error`` saying why), and not after; one a reload adds appears with its
first state. A replay yields a device removed during the break the same way
(the archive's last state of a device the server no longer has). The reloads
themselves are not yielded, nor replayed (see :meth:`Client.watch_events` and
:meth:`Client.get_config`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Callable, Sequence

from switchyard.v1 import device_pb2, history_pb2

from .backoff import Backoff
from .model import Device, device_from_pb
from .resume import FAR_FUTURE_NS, Fetch, Gap, GapDraft, Hook, Resume, ResumingStream, server_start_fetch
from .transport import Connection, Rpc, Stubs

log = logging.getLogger("switchyard")

_WATCH: Rpc[device_pb2.WatchDevicesRequest, device_pb2.WatchDevicesResponse] = Rpc("DeviceService", "WatchDevices")
_LIST: Rpc[device_pb2.ListDevicesRequest, device_pb2.ListDevicesResponse] = Rpc("DeviceService", "ListDevices")

#: Whether this API version's WatchDevicesRequest can replay the archive.
HAS_SINCE = "since_ns" in device_pb2.WatchDevicesRequest.DESCRIPTOR.fields_by_name


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
                 on_gap: Callable[[Gap], None] | None = None, resume: bool = True) -> None:
        super().__init__(conn, stubs, aio=aio, reconnect=reconnect, backoff=backoff, on_reconnect=on_reconnect,
                         on_gap=on_gap)
        self._devices = list(devices)
        self._resume = resume and HAS_SINCE
        #: The last (Device, timestamp_ns) yielded per device name.
        self._known: dict[str, tuple[Device, int]] = {}
        self._restarted: bool | None = None
        # After a reconnect without a replay: the devices whose first
        # (snapshot) state is awaited, and the gap being put together meanwhile.
        self._pending: set[str] = set()
        self._draft_gap: GapDraft | None = None
        # The server answered a replay; this stream awaits its end.
        self._replays = False
        self._awaiting_end = False
        self._since = 0
        self._stream_skipped = 0
        #: State changes the server skipped for this watch's streams so far.
        self.skipped = 0
        #: Replayed states yielded, and replayed states dropped as not newer
        #: than the device's state the watch had.
        self.replayed = 0
        self.overlap = 0

    @property
    def resuming(self) -> bool:
        """True while a reconnect replays the archive: ``resume`` was asked for
        and the server answered a replay."""
        return self._resume and self._replays

    def _request(self) -> device_pb2.WatchDevicesRequest:
        self._stream_skipped = 0  # the server counts per stream
        req = device_pb2.WatchDevicesRequest(devices=self._devices)
        self._since = 0
        if self._resume:
            # First: a since in the future (the server says it can replay).
            # Then: from the oldest last state, each device dropping its own
            # overlap.
            if self._ever_established and self._replays and self._known:
                self._since = min(ts for _, ts in self._known.values())
            else:
                self._since = FAR_FUTURE_NS
            req.since_ns = self._since
        self._awaiting_end = self._since != 0
        return req

    def _begin(self, reconnect: bool) -> Hook[tuple[Device, int]]:
        restarted = self._server_restarted((yield server_start_fetch()))
        self._restarted = restarted
        if self._awaiting_end and self._since != FAR_FUTURE_NS:
            return  # a replay comes first; its end decides (see _replay_end)
        if reconnect and self._known:
            yield from self._unrecovered(self._draft(restarted, "device state changes"))

    def _unrecovered(self, draft: GapDraft) -> Hook[tuple[Device, int]]:
        """Without a replay: the devices the server no longer has are yielded
        STOPPED; the gap is finished once every known device's current state
        came (and with it how many reconnections it went through unseen)."""
        listed: device_pb2.ListDevicesResponse = yield Fetch(_LIST, device_pb2.ListDevicesRequest())
        names = {d.name for d in listed.devices}
        if draft.server_restarted:
            draft.lost.append("reconnection counts started again")
        yield from self._removed(names, draft)
        self._pending = set(self._known)
        self._draft_gap = draft
        if not self._pending:
            self._finish_gap()

    def _removed(self, names: set[str], draft: GapDraft) -> Hook[tuple[Device, int]]:
        for name in sorted(set(self._known) - names):
            dev, _ = self._known.pop(name)
            draft.lost.append(f"{name}: no longer on the server (shown as STOPPED)")
            yield dataclasses.replace(dev, state="STOPPED", connected_since=None, next_attempt=None), draft.up_ns

    def _replay_end(self, end: history_pb2.ReplayEnd, reconnect: bool) -> Hook[tuple[Device, int]]:
        self._awaiting_end = False
        self._replays = True
        if not reconnect:
            return
        draft = self._draft(self._restarted, "device state changes")
        if not end.complete:
            log.warning("switchyard device watch: the server could not replay (%s); what happened meanwhile is "
                        "reported", end.reason)
            draft.error = f"{draft.error} (no replay: {end.reason})" if draft.error else f"no replay: {end.reason}"
            yield from self._unrecovered(draft)
            return
        draft.lost.clear()  # every archived change in between was replayed
        if end.missed:
            draft.lost.append(f"{end.missed} device state change{'s' if end.missed != 1 else ''} of that time "
                              "not in the archive (its archiver fell behind)")
        listed: device_pb2.ListDevicesResponse = yield Fetch(_LIST, device_pb2.ListDevicesRequest())
        yield from self._removed({d.name for d in listed.devices}, draft)
        if draft.lost:
            self._report(draft.gap("reconnection"))

    def _on_response(self, resp: device_pb2.WatchDevicesResponse) -> Hook[tuple[Device, int]]:
        if resp.skipped > self._stream_skipped:
            n = resp.skipped - self._stream_skipped
            self._stream_skipped = resp.skipped
            self.skipped += n
            if self.resuming and not self._awaiting_end:
                raise Resume(f"the server skipped {n} state change{'s' if n != 1 else ''} for this slow stream")
            if not self._awaiting_end:
                now = time.time_ns()
                self._report(Gap(self._gap_name, now, now, False, "slow reader",
                                 (f"{n} state change{'s' if n != 1 else ''} skipped by the server for this slow "
                                  "stream (each device's latest state is shown)",)))
        if resp.HasField("replay_end"):
            yield from self._replay_end(resp.replay_end, self._since != FAR_FUTURE_NS)
            if self._stream_skipped and self.resuming:
                raise Resume(f"the server skipped {self._stream_skipped} state changes during the replay")
            return
        if not resp.HasField("device"):
            return  # a configuration reload: the changes it made came before it
        if self._awaiting_end and self._since != FAR_FUTURE_NS and not resp.replayed:
            # A state before the replay's end that is not replayed: the server
            # ignored since_ns (it predates replays).
            yield from self._replay_end(history_pb2.ReplayEnd(reason="the server does not replay"), True)
            self._replays = False
        dev, ts = device_from_pb(resp.device), resp.timestamp_ns
        prev = self._known.get(dev.name)
        if resp.replayed:
            if prev is not None and ts // 1000 <= prev[1] // 1000:
                self.overlap += 1  # the watch had it, or a newer state
                return
            self.replayed += 1
        if resp.removed:
            # Removed by a reload: its final state, and nothing of it after.
            self._known.pop(dev.name, None)
            self._pending.discard(dev.name)
            if self._draft_gap is not None and not self._pending:
                self._finish_gap()
            yield dev, ts
            return
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
