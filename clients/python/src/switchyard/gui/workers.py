"""Worker threads that read streams and run calls off the Qt event loop.

Each worker owns its stream; the GUI thread only calls ``stop()``, which cancels
the gRPC call (grpcio calls may be cancelled from any thread) and waits for the
thread to end, so a blocked read can never hold the window open.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from PySide6.QtCore import QObject, QRunnable, QThread, Signal

from ..backoff import Backoff
from ..client import Client
from ..errors import SwitchyardError, Unimplemented
from ..model import Process


class StreamWorker(QThread):
    """Reads a telemetry subscription and emits each batch's samples.

    ``samples`` carries a list of Sample; ``status`` a one-line description of
    the stream (reconnects, dropped samples, the last sequence event).
    """

    samples = Signal(object)
    status = Signal(str)

    def __init__(self, client: Client, devices: Sequence[str], channels: Sequence[str], parent: QObject | None = None):
        super().__init__(parent)
        self._sub = client.subscribe(list(devices), list(channels), batch_window_ms=40)

    def run(self) -> None:
        sub = self._sub
        try:
            for batch in sub:
                if batch.samples:
                    self.samples.emit(batch.samples)
                if batch.events or batch.reconnects:
                    last = f"; last: {sub.events[-1]}" if sub.events else ""
                    self.status.emit(f"stream: {batch.reconnects} reconnects, {len(sub.events)} sequence events{last}")
        except SwitchyardError as err:
            self.status.emit(f"stream ended: {err}")

    def stop(self) -> None:
        """Cancels the stream and waits for the thread to end."""
        self._sub.cancel()
        self.wait()


class _WatchWorker(QThread):
    """A thread that keeps a watch (an iterator with ``cancel()``) open: when it
    breaks (the server restarted) it opens a new one after a backoff; ``stop()``
    cancels it from the GUI thread and waits. Subclasses say what to open and
    what to do with each item."""

    status = Signal(str)
    #: Emitted (with the reason) when the server does not offer this watch; the
    #: worker then ends.
    unsupported = Signal(str)
    what = "watch"

    def __init__(self, client: Client, parent: QObject | None = None):
        super().__init__(parent)
        self._client = client
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watch = None

    def _open(self):
        raise NotImplementedError

    def _item(self, item) -> None:
        raise NotImplementedError

    def _started(self) -> None:
        """Called in the worker thread when a new watch is open, before its items."""

    def run(self) -> None:
        backoff = Backoff(initial=0.2, cap=5.0)
        while not self._stopped.is_set():
            try:
                watch = self._open()
                with self._lock:
                    self._watch = watch
                if self._stopped.is_set():
                    watch.cancel()
                self._started()
                for item in watch:
                    backoff.reset()
                    self._item(item)
            except Unimplemented as err:
                self.unsupported.emit(f"{self.what}: not offered by this server: {err}")
                return
            except SwitchyardError as err:
                if not self._stopped.is_set():
                    self.status.emit(f"{self.what} broken, retrying: {err}")
            if self._stopped.wait(backoff.next()):
                return

    def stop(self) -> None:
        """Cancels the watch and waits for the thread to end."""
        self._stopped.set()
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.cancel()
        self.wait()


class DeviceWatchWorker(_WatchWorker):
    """Streams device states (WatchDevices) and emits each Device as it changes;
    a new watch (after the server restarted) begins with every device's state."""

    device = Signal(object)
    what = "device watch"

    def _open(self):
        return self._client.watch_devices()

    def _item(self, item) -> None:
        self.device.emit(item[0])


class AlarmWatchWorker(_WatchWorker):
    """Streams alarm changes (WatchAlarms, starting with the active alarms) and
    emits each alarm's new state. ``reset`` is emitted before each new watch's
    listing, so a panel drops what a restarted server no longer has."""

    alarm = Signal(object)
    reset = Signal()
    what = "alarm watch"

    def _open(self):
        return self._client.watch_alarms(include_active=True)

    def _started(self) -> None:
        self.reset.emit()

    def _item(self, t) -> None:
        self.alarm.emit(t.alarm)


class SupervisionWatchWorker(_WatchWorker):
    """Streams the supervision tree's lifecycle (WatchSupervisionEvents): emits
    ``tree`` with the snapshot each new watch starts with and ``event`` with every
    SupervisionEvent after it."""

    tree = Signal(object)
    event = Signal(object)
    what = "supervision watch"

    def _open(self):
        return self._client.watch_supervision(include_snapshot=True)

    def _item(self, item) -> None:
        if isinstance(item, Process):
            self.tree.emit(item)
        else:
            self.event.emit(item)


class _TaskSignals(QObject):
    done = Signal(object)
    failed = Signal(str)


class Task(QRunnable):
    """A blocking call run on a QThreadPool; ``signals.done`` gets its result and
    ``signals.failed`` the error message, both delivered in the GUI thread."""

    def __init__(self, fn: Callable[[], object]):
        super().__init__()
        self.fn = fn
        self.signals = _TaskSignals()

    def run(self) -> None:
        try:
            result = self.fn()
        except SwitchyardError as err:
            self.signals.failed.emit(str(err))
        except Exception as err:  # a GUI must show, not die of, an unexpected error
            self.signals.failed.emit(f"{type(err).__name__}: {err}")
        else:
            self.signals.done.emit(result)
