"""Live plots of chosen channels, redrawn from a timer rather than per sample."""

from __future__ import annotations

import time
from collections import deque

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSplitter, QWidget

from ..model import Device, Sample

#: Redraw rate of the plots.
REDRAW_HZ = 25
#: Samples kept per plotted channel.
HISTORY = 1200

_PENS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"]


class PlotPanel(QSplitter):
    """A checkable list of numeric channels beside a pyqtgraph plot of the checked
    ones. Emits ``selection_changed`` with the checked (device, channel) keys; the
    window then resubscribes. :meth:`add_samples` only appends to buffers; a
    ``REDRAW_HZ`` timer draws."""

    selection_changed = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.channels = QListWidget()
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.addLegend(offset=(10, 10))
        self.addWidget(self.channels)
        self.addWidget(self.plot)
        self.setStretchFactor(1, 4)
        self._buffers: dict[tuple[str, str], tuple[deque, deque]] = {}
        #: The plotted curve of each checked channel.
        self.curves: dict[tuple[str, str], pg.PlotDataItem] = {}
        #: How many times the plot was redrawn with new data.
        self.redraws = 0
        self._dirty = False
        self._t0 = time.time()
        self.channels.itemChanged.connect(self._item_changed)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REDRAW_HZ)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def set_devices(self, devices: list[Device], checked: set[tuple[str, str]]) -> None:
        """Lists every channel of the devices; ``checked`` are plotted from the start."""
        self.channels.blockSignals(True)
        self.channels.clear()
        for d in sorted(devices, key=lambda d: d.name):
            for c in d.channels:
                item = QListWidgetItem(f"{d.name}/{c.name}" + (f" [{c.unit}]" if c.unit else ""))
                item.setData(Qt.ItemDataRole.UserRole, (d.name, c.name))
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if (d.name, c.name) in checked else Qt.CheckState.Unchecked)
                self.channels.addItem(item)
        self.channels.blockSignals(False)
        for i in range(self.channels.count()):
            if self.channels.item(i).checkState() == Qt.CheckState.Checked:
                self.channels.scrollToItem(self.channels.item(i), QListWidget.ScrollHint.PositionAtCenter)
                break
        self._sync_curves()

    def checked(self) -> list[tuple[str, str]]:
        """The (device, channel) keys being plotted."""
        out = []
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if item.checkState() == Qt.CheckState.Checked:
                out.append(item.data(Qt.ItemDataRole.UserRole))
        return out

    def set_checked(self, key: tuple[str, str], on: bool = True) -> None:
        """Checks or unchecks one channel (as a click would)."""
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if tuple(item.data(Qt.ItemDataRole.UserRole)) == tuple(key):
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _item_changed(self, _item) -> None:
        self._sync_curves()
        self.selection_changed.emit(self.checked())

    def _sync_curves(self) -> None:
        want = [tuple(k) for k in self.checked()]
        for key in list(self.curves):
            if key not in want:
                self.plot.removeItem(self.curves.pop(key))
        for i, key in enumerate(want):
            if key not in self.curves:
                pen = pg.mkPen(_PENS[i % len(_PENS)], width=2)
                # Sample-and-hold: a reading stays valid until the next one, so a
                # slowly polled channel is drawn as steps, not interpolated.
                self.curves[key] = self.plot.plot([], [], pen=pen, name=f"{key[0]}/{key[1]}", stepMode="right")
            self._buffers.setdefault(key, (deque(maxlen=HISTORY), deque(maxlen=HISTORY)))

    def add_samples(self, samples: list[Sample]) -> None:
        """Appends the GOOD numeric values of plotted channels to their buffers."""
        for s in samples:
            buf = self._buffers.get((s.device, s.channel))
            if buf is None or not s.good or isinstance(s.value, str):
                continue
            buf[0].append(s.timestamp_ns / 1e9 - self._t0)
            buf[1].append(float(s.value))
            self._dirty = True

    def latest_value(self, key: tuple[str, str]) -> float | None:
        """The newest buffered value of a channel, or None."""
        buf = self._buffers.get(tuple(key))
        return buf[1][-1] if buf and buf[1] else None

    def redraw(self) -> None:
        """Draws the buffers into the curves if anything arrived since the last draw."""
        if not self._dirty:
            return
        self._dirty = False
        for key, curve in self.curves.items():
            t, v = self._buffers[key]
            curve.setData(np.fromiter(t, float, len(t)), np.fromiter(v, float, len(v)))
        self.redraws += 1
