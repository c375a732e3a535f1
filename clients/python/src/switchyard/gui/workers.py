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
from ..errors import SwitchyardError


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


class DeviceWatchWorker(QThread):
    """Streams device states (WatchDevices) and emits each Device as it changes.
    When the watch breaks (the server restarted) it starts again with backoff;
    a new watch begins with the current state of every device."""

    device = Signal(object)
    status = Signal(str)

    def __init__(self, client: Client, parent: QObject | None = None):
        super().__init__(parent)
        self._client = client
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._watch = None

    def run(self) -> None:
        backoff = Backoff(initial=0.2, cap=5.0)
        while not self._stopped.is_set():
            try:
                watch = self._client.watch_devices()
                with self._lock:
                    self._watch = watch
                if self._stopped.is_set():
                    watch.cancel()
                for dev, _ts in watch:
                    backoff.reset()
                    self.device.emit(dev)
            except SwitchyardError as err:
                self.status.emit(f"device watch broken, retrying: {err}")
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
