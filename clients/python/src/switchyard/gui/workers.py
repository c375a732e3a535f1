"""Worker threads that read streams and run calls off the Qt event loop.

Each worker owns its stream; the GUI thread only calls ``stop()``, which cancels
the gRPC call (grpcio calls may be cancelled from any thread) and waits for the
thread to end, so a blocked read can never hold the window open. The streams
resume by themselves after a server restart or a dropped connection
(:mod:`switchyard.resume`); the workers pass on what they report.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from PySide6.QtCore import QObject, QRunnable, QThread, Signal

from ..alarms import AlarmTransition
from ..client import Client
from ..errors import SwitchyardError, Unimplemented
from ..model import Device, Process, Sample
from ..resume import Gap, ResumingStream
from ..subscription import Subscription
from ..supervision import SupervisionEvent


class StreamWorker(QThread):
    """Reads a telemetry subscription and emits each batch's samples.

    ``samples`` carries a list of Sample, or what ``prepare`` makes of it: a
    function run here, in the worker's thread, so that the GUI thread gets the
    samples ready to use (the plots' :meth:`~.plots.PlotPanel.intake`).
    ``status`` carries a one-line description of the stream (reconnects,
    dropped samples, the last sequence event).
    """

    samples = Signal(object)
    status = Signal(str)

    def __init__(self, client: Client, devices: Sequence[str], channels: Sequence[str],
                 parent: QObject | None = None, prepare: Callable[[list[Sample]], object] | None = None) -> None:
        super().__init__(parent)
        self._sub: Subscription = client.subscribe(list(devices), list(channels), batch_window_ms=40)
        self._prepare = prepare

    def run(self) -> None:
        sub, prepare = self._sub, self._prepare
        try:
            for batch in sub:
                if batch.samples:
                    self.samples.emit(prepare(batch.samples) if prepare else batch.samples)
                if batch.events or batch.reconnects:
                    last = f"; last: {sub.events[-1]}" if sub.events else ""
                    self.status.emit(f"stream: {batch.reconnects} reconnects, {len(sub.events)} sequence events{last}")
        except SwitchyardError as err:
            self.status.emit(f"stream ended: {err}")
        except Exception as err:  # a bug in prepare: say so, and end the stream
            sub.cancel()
            self.status.emit(f"stream ended: {type(err).__name__}: {err}")

    def stop(self) -> None:
        """Cancels the stream and waits for the thread to end."""
        self._sub.cancel()
        self.wait()


class _WatchWorker(QThread):
    """A thread that reads a resuming watch; ``status`` says when it reconnects
    and what it could not recover (its gaps); ``stop()`` cancels it from the GUI
    thread and waits. Subclasses say what to open and what to do with each
    item."""

    status = Signal(str)
    #: Emitted (with the reason) when the server does not offer this watch; the
    #: worker then ends.
    unsupported = Signal(str)
    what = "watch"

    def __init__(self, client: Client, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._watch = self._open(client)

    def _open(self, client: Client) -> ResumingStream[Any]:
        raise NotImplementedError

    def _item(self, item: Any) -> None:
        raise NotImplementedError

    def _gap(self, gap: Gap) -> None:
        self.status.emit(str(gap))

    def _reconnecting(self, n: int, err: BaseException | None) -> None:
        self.status.emit(f"{self.what}: reconnecting (#{n}): {err}")

    def run(self) -> None:
        try:
            for item in self._watch:
                self._item(item)
        except Unimplemented as err:
            self.unsupported.emit(f"{self.what}: not offered by this server: {err}")
        except SwitchyardError as err:
            self.status.emit(f"{self.what} ended: {err}")

    def stop(self) -> None:
        """Cancels the watch and waits for the thread to end."""
        self._watch.cancel()
        self.wait()


class DeviceWatchWorker(_WatchWorker):
    """Streams device states (WatchDevices) and emits each Device as it changes."""

    device = Signal(object)
    what = "device watch"

    def _open(self, client: Client) -> ResumingStream[Any]:
        return client.watch_devices(on_gap=self._gap, on_reconnect=self._reconnecting)

    def _item(self, item: tuple[Device, int]) -> None:
        self.device.emit(item[0])


class AlarmWatchWorker(_WatchWorker):
    """Streams alarm changes (WatchAlarms, starting with the active alarms; after
    a break the watch lists them again) and emits each alarm's new state, or
    ``removed`` with the key of an alarm the server no longer has."""

    alarm = Signal(object)
    removed = Signal(object)
    what = "alarm watch"

    def _open(self, client: Client) -> ResumingStream[Any]:
        return client.watch_alarms(include_active=True, on_gap=self._gap, on_reconnect=self._reconnecting)

    def _item(self, t: AlarmTransition) -> None:
        if t.event == "REMOVED":
            self.removed.emit(t.alarm.key)
        else:
            self.alarm.emit(t.alarm)


class SupervisionWatchWorker(_WatchWorker):
    """Streams the supervision tree's lifecycle (WatchSupervisionEvents): emits
    ``tree`` with the snapshot each (re)connection starts with and
    ``supervision_event`` with every SupervisionEvent after it. (Not ``event``:
    that name is QObject's event handler.)"""

    tree = Signal(object)
    supervision_event = Signal(object)
    what = "supervision watch"

    def _open(self, client: Client) -> ResumingStream[Any]:
        return client.watch_supervision(include_snapshot=True, on_gap=self._gap,
                                        on_reconnect=self._reconnecting)

    def _item(self, item: Process | SupervisionEvent) -> None:
        if isinstance(item, Process):
            self.tree.emit(item)
        else:
            self.supervision_event.emit(item)


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)
    error = Signal(object)


class Task(QRunnable):
    """A blocking call run on a QThreadPool; ``signals.done`` gets its result and
    ``signals.failed`` the error message (``signals.error`` the exception), all
    delivered in the GUI thread."""

    def __init__(self, fn: Callable[[], object]) -> None:
        super().__init__()
        self.fn = fn
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            result = self.fn()
        except SwitchyardError as err:
            self.signals.error.emit(err)
            self.signals.failed.emit(str(err))
        except Exception as err:  # a GUI must show, not die of, an unexpected error
            self.signals.error.emit(err)
            self.signals.failed.emit(f"{type(err).__name__}: {err}")
        else:
            self.signals.done.emit(result)
