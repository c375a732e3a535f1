"""Live plots of chosen channels, redrawn from a timer rather than per sample.

A sample whose quality is not GOOD (the device failed, a reply did not parse,
...) is never drawn as a value: it breaks the channel's line (a gap, no
interpolation across the outage) and puts a red marker where the failure began,
whose tooltip says why (quality and error). A channel that starts plotting
first shows the last minutes of its archive (:meth:`PlotPanel.add_history`,
filled by the window from QueryHistory when the server archives).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QListWidget, QListWidgetItem, QSplitter, QWidget

from ..model import Device, Sample

#: Redraw rate of the plots. A redraw of 20 busy curves blocks the event loop
#: for about 30 ms here (mostly pyqtgraph painting axes and curves), so the
#: rate bounds the share of the loop plots take (tests/test_gui_latency.py).
REDRAW_HZ = 10
#: Samples kept per plotted channel.
HISTORY = 3000
#: Failure markers kept per plotted channel.
MARKERS = 200

_PENS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e"]

Key = tuple[str, str]


class _Channel:
    """One plotted channel: its points (NaN where it was not GOOD) and failure
    markers (time, y, reason)."""

    def __init__(self) -> None:
        self.t: deque[float] = deque(maxlen=HISTORY)
        self.v: deque[float] = deque(maxlen=HISTORY)
        self.markers: deque[tuple[float, float, str]] = deque(maxlen=MARKERS)
        self.last_good = math.nan
        self.bad = ""  # the failure in progress ("" while GOOD)
        self.first_ns = 0  # timestamp of the oldest sample held (for merging history)
        self.markers_drawn = 0  # how many markers the scatter plot shows
        self.first_marker: tuple[float, float, str] | None = None

    def add(self, s: Sample, t: float) -> None:
        if s.good and not isinstance(s.value, str) and s.value is not None:
            self.t.append(t)
            self.v.append(float(s.value))
            self.last_good = float(s.value)
            self.bad = ""
        else:
            reason = f"{s.device}/{s.channel}: {s.quality}" + (f": {s.error}" if s.error else "")
            if reason != self.bad:  # one marker per failure, not per bad sample
                stamp = dt.datetime.fromtimestamp(s.timestamp_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]
                self.markers.append((t, self.last_good, f"{stamp} {reason}"))
                self.bad = reason
            self.t.append(t)
            self.v.append(math.nan)  # a gap: the line is not drawn through it
        if not self.first_ns:
            self.first_ns = s.timestamp_ns


class PlotPanel(QSplitter):
    """A checkable list of numeric channels beside a pyqtgraph plot of the checked
    ones. Emits ``selection_changed`` with the checked (device, channel) keys; the
    window then resubscribes, and ``history_wanted`` with the keys that started
    plotting (the window fetches their recent archive). :meth:`add_samples` only
    appends to buffers; a ``REDRAW_HZ`` timer draws."""

    selection_changed = Signal(list)
    history_wanted = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.channels = QListWidget()
        self.plot = pg.PlotWidget(background="w")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setLabel("bottom", "time", units="s")
        self.plot.addLegend(offset=(10, 10))
        self.addWidget(self.channels)
        self.addWidget(self.plot)
        self.setStretchFactor(1, 4)
        self.setSizes([200, 800])
        self._data: dict[Key, _Channel] = {}
        #: The plotted curve of each checked channel.
        self.curves: dict[Key, Any] = {}
        #: The failure markers of each checked channel (a scatter plot; the
        #: tooltip of a marker is the failure's time and reason).
        self.markers: dict[Key, Any] = {}
        #: How many times the plot was redrawn with new data.
        self.redraws = 0
        self._dirty = False
        self._t0 = time.time()
        self.channels.itemChanged.connect(self._item_changed)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // REDRAW_HZ)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    def set_devices(self, devices: list[Device], checked: set[Key]) -> None:
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
            it = self.channels.item(i)
            if it is not None and it.checkState() == Qt.CheckState.Checked:
                self.channels.scrollToItem(it, QListWidget.ScrollHint.PositionAtCenter)
                break
        self._sync_curves()

    def checked(self) -> list[Key]:
        """The (device, channel) keys being plotted."""
        out: list[Key] = []
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                dev, ch = item.data(Qt.ItemDataRole.UserRole)
                out.append((str(dev), str(ch)))
        return out

    def set_checked(self, key: Key, on: bool = True) -> None:
        """Checks or unchecks one channel (as a click would)."""
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if item is not None and tuple(item.data(Qt.ItemDataRole.UserRole)) == tuple(key):
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def _item_changed(self, _item: object) -> None:
        self._sync_curves()
        self.selection_changed.emit(self.checked())

    def _sync_curves(self) -> None:
        want = self.checked()
        for key in list(self.curves):
            if key not in want:
                self.plot.removeItem(self.curves.pop(key))
                self.plot.removeItem(self.markers.pop(key))
        new: list[Key] = []
        for i, key in enumerate(want):
            if key not in self.curves:
                color = _PENS[i % len(_PENS)]
                # Sample-and-hold: a reading stays valid until the next one, so a
                # slowly polled channel is drawn as steps, not interpolated; NaN
                # (not GOOD) breaks the line.
                curve = self.plot.plot([], [], pen=pg.mkPen(color, width=1), name=f"{key[0]}/{key[1]}",
                                       stepMode="right", connect="finite")
                # Draw only what is in view, at most about one point per pixel
                # (peaks kept): a redraw costs the same however fast samples come.
                curve.setClipToView(True)
                curve.setDownsampling(auto=True, method="peak")
                self.curves[key] = curve
                marker = pg.ScatterPlotItem(symbol="x", size=14, pen=pg.mkPen("#d50000", width=3), brush=None,
                                            hoverable=True, tip=_tip)
                self.plot.addItem(marker)
                self.markers[key] = marker
                if key not in self._data:
                    self._data[key] = _Channel()
                    new.append(key)
        if new:
            self.history_wanted.emit(new)

    def add_samples(self, samples: list[Sample]) -> None:
        """Appends the samples of plotted channels to their buffers: GOOD numeric
        values as points, anything else as a gap with a marker."""
        for s in samples:
            ch = self._data.get((s.device, s.channel))
            if ch is None:
                continue
            ch.add(s, s.timestamp_ns / 1e9 - self._t0)
            self._dirty = True

    def add_history(self, key: Key, samples: list[Sample]) -> None:
        """Puts a channel's archived samples (oldest first) before what the live
        stream delivered."""
        ch = self._data.get(key)
        if ch is None or not samples:
            return
        older = [s for s in samples if not ch.first_ns or s.timestamp_ns < ch.first_ns]
        if not older:
            return
        merged = _Channel()
        for s in older:
            merged.add(s, s.timestamp_ns / 1e9 - self._t0)
        merged.markers.extend(ch.markers)
        merged.t.extend(ch.t)
        merged.v.extend(ch.v)
        merged.last_good, merged.bad = ch.last_good, ch.bad
        self._data[key] = merged
        self._dirty = True

    def points(self, key: Key) -> tuple[list[float], list[float]]:
        """A channel's buffered (times, values); NaN where it was not GOOD."""
        ch = self._data.get(key)
        return (list(ch.t), list(ch.v)) if ch else ([], [])

    def failures(self, key: Key) -> list[tuple[float, float, str]]:
        """A channel's failure markers: (time, y, reason)."""
        ch = self._data.get(key)
        return list(ch.markers) if ch else []

    def latest_value(self, key: Key) -> float | None:
        """The newest buffered good value of a channel, or None."""
        ch = self._data.get(key)
        return ch.last_good if ch and not math.isnan(ch.last_good) else None

    def redraw(self) -> None:
        """Draws the buffers into the curves if anything arrived since the last draw."""
        if not self._dirty:
            return
        self._dirty = False
        for key, curve in self.curves.items():
            ch = self._data[key]
            curve.setData(np.fromiter(ch.t, float, len(ch.t)), np.fromiter(ch.v, float, len(ch.v)))
            if ch.markers_drawn != len(ch.markers) or ch.markers and ch.markers[0] is not ch.first_marker:
                m = [(x, y, why) for x, y, why in ch.markers if not math.isnan(y)]
                self.markers[key].setData(x=[p[0] for p in m], y=[p[1] for p in m], data=[p[2] for p in m])
                ch.markers_drawn = len(ch.markers)
                ch.first_marker = ch.markers[0] if ch.markers else None
        self.redraws += 1


def _tip(x: float, y: float, data: object) -> str:
    return str(data)
