"""Live plots of chosen channels, drawn so that the Qt event loop stays responsive.

What a sample becomes: a GOOD numeric value is a point; any other sample (the
device failed, a reply did not parse, ...) is never drawn as a value: it breaks
the channel's line (a gap, no interpolation across the outage) and puts a red
marker where the failure began, whose tooltip says why (quality and error). A
channel that starts plotting first shows the last minutes of its archive
(:meth:`PlotPanel.add_history`, filled by the window from QueryHistory when the
server archives).

How the GUI thread is spared (tests/test_gui_latency.py measures the event
loop's latency with 2,000 samples/s streaming into 20 plotted channels):

- The stream's worker thread sorts each batch per channel into numpy arrays
  (:class:`Intake`, :class:`Batch`); the GUI thread only copies them into
  per-channel numpy ring buffers.
- One item draws every line in one paint call (:class:`_Lines`): a prepared
  QPainterPath per channel, 1-pixel cosmetic pens, no antialiasing.
- A path holds only what is in view, and at most two points per pixel column
  (the column's minimum and maximum, so peaks stay visible): drawing costs the
  same however fast the samples come. Sparse data are drawn as steps (sample
  and hold).
- The paths are rebuilt a few channels per timer tick, spread over
  :data:`TICKS_PER_FRAME` ticks, and the plot is repainted once per frame
  (:data:`REDRAW_HZ`): no tick does long work.
- The view follows the data in steps of a tick mark computed from the buffers
  (not pyqtgraph's auto-range, recomputed on every frame): the axes and their
  grid change only when the range does and are cached as pixmaps in between;
  the left axis has a fixed width, so new tick labels never re-lay out the plot.
- The channel list is the legend (a swatch of each plotted channel's colour):
  an in-plot legend would be repainted on every frame, and would cover the plot
  with 20 channels.

Zooming or panning with the mouse stops following the data on that axis; the
plot's "A" button (or an axis' "Auto" in its menu) follows it again.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Collection, Sequence

import numpy as np
import numpy.typing as npt
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsItem,
    QListWidget,
    QListWidgetItem,
    QSplitter,
    QStyleOptionGraphicsItem,
    QWidget,
)

from ..model import Device, Sample

#: Frames per second: how often the plot is repainted with new data.
REDRAW_HZ = 10
#: Timer ticks per frame: the channels' paths are rebuilt over these ticks, at
#: most ceil(channels / TICKS_PER_FRAME) paths per tick.
TICKS_PER_FRAME = 4
#: Samples kept per plotted channel.
HISTORY = 3000
#: Failure markers kept per plotted channel.
MARKERS = 200
#: Width of the left axis in pixels (fixed: room for 7-character tick labels).
AXIS_WIDTH = 58
#: The channel list is made wide enough for the channels' names, up to this.
CHANNEL_LIST_MAX_WIDTH = 280

_PENS = ["#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457", "#4e342e",
         "#f9a825", "#283593", "#558b2f", "#d84315", "#37474f", "#0277bd", "#9e9d24", "#8e24aa"]

Key = tuple[str, str]
#: A failure marker: (time, y, reason); y is the last good value (NaN: none).
Marker = tuple[float, float, str]
Floats = npt.NDArray[np.float64]

_EMPTY: Floats = np.empty(0)
_GRID_MAJOR = QPen(QColor("#dadada"), 0)  # (width 0: cosmetic, one pixel)
_GRID_MINOR = QPen(QColor("#f0f0f0"), 0)


@dataclass
class Batch:
    """Samples sorted per channel (by :meth:`Intake.sort`, off the GUI thread).

    ``points`` holds each channel's times (seconds on the panel's clock,
    ascending) and values (NaN where a sample was not GOOD); ``markers`` the
    failures that began in the batch; ``count`` how many samples the stream
    batch had in all."""

    count: int = 0
    points: dict[Key, tuple[Floats, Floats]] = field(default_factory=dict)
    markers: dict[Key, list[Marker]] = field(default_factory=dict)


class Intake:
    """Sorts samples into :class:`Batch` es, times relative to ``t0`` (seconds).

    It remembers per channel the last good value and the failure in progress
    (one marker per failure, not per bad sample), so one Intake serves one
    thread at a time: the stream workers of a window take turns (the window
    stops one before it starts the next)."""

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self._last_good: dict[Key, float] = {}
        self._bad: dict[Key, str] = {}

    def sort(self, samples: Sequence[Sample], keys: Collection[Key] | None = None) -> Batch:
        """The samples of ``keys`` (all if None) sorted per channel."""
        out = Batch(count=len(samples))
        times: dict[Key, list[float]] = {}
        values: dict[Key, list[float]] = {}
        t0, last_good, bad, nan = self.t0, self._last_good, self._bad, math.nan
        for s in samples:
            key = (s.device, s.channel)
            if keys is not None and key not in keys:
                continue
            ts = times.get(key)
            if ts is None:
                ts = times[key] = []
                values[key] = []
            t = s.timestamp_ns / 1e9 - t0
            ts.append(t)
            value = s.value
            if s.quality == "GOOD" and value is not None and not isinstance(value, str):
                values[key].append(float(value))
                last_good[key] = float(value)
                bad.pop(key, None)
                continue
            reason = f"{s.device}/{s.channel}: {s.quality}" + (f": {s.error}" if s.error else "")
            if reason != bad.get(key):  # one marker per failure, not per bad sample
                stamp = dt.datetime.fromtimestamp(s.timestamp_ns / 1e9).strftime("%H:%M:%S.%f")[:-3]
                out.markers.setdefault(key, []).append((t, last_good.get(key, nan), f"{stamp} {reason}"))
                bad[key] = reason
            values[key].append(nan)  # a gap: the line is not drawn through it
        for key, ts in times.items():
            t_arr, v_arr = np.array(ts, dtype=np.float64), np.array(values[key], dtype=np.float64)
            if len(t_arr) > 1 and bool(np.any(t_arr[1:] < t_arr[:-1])):
                order = np.argsort(t_arr, kind="stable")
                t_arr, v_arr = t_arr[order], v_arr[order]
            out.points[key] = (t_arr, v_arr)
        return out


class _Channel:
    """One channel's last :data:`HISTORY` points (NaN where it was not GOOD) in
    numpy arrays, oldest first and contiguous: they live in buffers of twice
    the capacity, and when the end is reached the newest points move back to
    the front (amortised one copy per point). Times never go back: a point
    older than the newest held is dropped. Also its failure markers."""

    def __init__(self, cap: int = HISTORY) -> None:
        self.cap = cap
        self._t: Floats = np.empty(2 * cap)
        self._v: Floats = np.empty(2 * cap)
        self._lo = self._hi = 0
        self.markers: deque[Marker] = deque(maxlen=MARKERS)
        self.markers_changed = False
        self.last_good = math.nan

    @property
    def t(self) -> Floats:
        return self._t[self._lo:self._hi]

    @property
    def v(self) -> Floats:
        return self._v[self._lo:self._hi]

    def extend(self, t: Floats, v: Floats) -> None:
        if self._hi > self._lo and len(t) and t[0] < self._t[self._hi - 1]:
            keep = t >= self._t[self._hi - 1]
            t, v = t[keep], v[keep]
        n, cap = len(t), self.cap
        if n == 0:
            return
        if n >= cap:
            t, v, n = t[-cap:], v[-cap:], cap
            self._lo = self._hi = 0
        elif self._hi + n > 2 * cap:
            keep_n = min(self._hi - self._lo, cap - n)
            self._t[:keep_n] = self._t[self._hi - keep_n:self._hi]
            self._v[:keep_n] = self._v[self._hi - keep_n:self._hi]
            self._lo, self._hi = 0, keep_n
        self._t[self._hi:self._hi + n] = t
        self._v[self._hi:self._hi + n] = v
        self._hi += n
        self._lo = max(self._lo, self._hi - cap)
        good = v[~np.isnan(v)]
        if len(good):
            self.last_good = float(good[-1])

    def add_markers(self, markers: list[Marker]) -> None:
        self.markers.extend(markers)
        self.markers_changed = True

    def prepend(self, t: Floats, v: Floats, markers: list[Marker]) -> None:
        """Puts older points (and their markers) before what is held."""
        if self._hi > self._lo:
            first = self._t[self._lo]
            older = t < first
            t, v = t[older], v[older]
            markers = [m for m in markers if m[0] < first]
        if not len(t):
            return
        held_t, held_v = self.t.copy(), self.v.copy()
        self._lo = self._hi = 0
        last_good = self.last_good
        self.extend(np.concatenate([t, held_t]), np.concatenate([v, held_v]))
        if not math.isnan(last_good):
            self.last_good = last_good
        self.markers = deque(markers + list(self.markers), maxlen=MARKERS)
        self.markers_changed = True


class Curve:
    """What the plot draws of one channel: ``pen`` and ``path`` (rebuilt by the
    panel), how many buffered samples the path covers (``samples``), the time of
    the newest (``last_t``) and the range of the values in view (``y_bounds``,
    NaN when none is good)."""

    def __init__(self, pen: QPen) -> None:
        self.pen = pen
        self.path = QPainterPath()
        self.samples = 0
        self.last_t = math.nan
        self.y_bounds = (math.nan, math.nan)


class _Lines(QGraphicsItem):
    """The grid and every plotted channel's line, drawn in one paint call. Its
    bounding rect is the view's (set by the panel when the range changes, with
    the grid's positions: ``grid`` holds the x and the y values of the major
    and of the minor tick marks); ``bounds`` are the data's ((xmin, xmax),
    (ymin, ymax)), for pyqtgraph's "View All". (pyqtgraph's own grid, drawn
    by the axes with translucent lines, takes 7 ms to draw here.)"""

    def __init__(self, curves: dict[Key, Curve]) -> None:
        super().__init__()
        self.curves = curves
        self._rect = QRectF()
        self.bounds: list[tuple[float, float] | None] = [None, None]
        self.grid: tuple[list[float], list[float], list[float], list[float]] = ([], [], [], [])

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt's name)
        return self._rect

    def set_rect(self, rect: QRectF) -> None:
        if rect != self._rect:
            self.prepareGeometryChange()
            self._rect = QRectF(rect)

    def dataBounds(self, axis: int, frac: float = 1.0,  # noqa: N802 (pyqtgraph's name)
                   orthoRange: Any = None) -> tuple[float, float] | None:  # noqa: N803
        return self.bounds[axis]

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        r = self._rect
        x_major, x_minor, y_major, y_minor = self.grid
        for pen, xs, ys in ((_GRID_MINOR, x_minor, y_minor), (_GRID_MAJOR, x_major, y_major)):
            painter.setPen(pen)
            for x in xs:
                painter.drawLine(QPointF(x, r.top()), QPointF(x, r.bottom()))
            for y in ys:
                painter.drawLine(QPointF(r.left(), y), QPointF(r.right(), y))
        for c in self.curves.values():
            if not c.path.isEmpty():
                painter.setPen(c.pen)
                painter.drawPath(c.path)


def line_points(t: Floats, v: Floats, x0: float, x1: float, columns: int) -> tuple[Floats, Floats, int]:
    """The points to draw of one channel whose times ``t`` (ascending) and values
    ``v`` (NaN: a gap) are shown between ``x0`` and ``x1`` on ``columns`` pixels:
    (xs, ys, samples in view). Only the samples in view count, plus the one
    before (its value holds into the view) and the one after. Up to two samples
    per column: steps (each value holds until the next sample's time; a NaN
    ends the line). More: per column its first time, its minimum and its
    maximum (NaN only if the whole column is)."""
    i0 = max(0, int(np.searchsorted(t, x0, "right")) - 1)
    i1 = int(np.searchsorted(t, x1, "left")) + 1
    t, v = t[i0:i1], v[i0:i1]
    n = len(t)
    if n == 0:
        return _EMPTY, _EMPTY, 0
    columns = max(1, columns)
    if n <= 2 * columns:
        xs, ys = np.empty(2 * n - 1), np.empty(2 * n - 1)
        xs[0] = t[0]
        xs[1::2] = t[1:]
        xs[2::2] = t[1:]
        ys[0::2] = v
        ys[1::2] = v[:-1]
        return xs, ys, n
    col = np.floor((t - x0) * (columns / (x1 - x0) if x1 > x0 else 0.0)).astype(np.int64)
    starts = np.concatenate(([0], np.flatnonzero(col[1:] != col[:-1]) + 1))
    xs = np.repeat(t[starts], 2)
    ys = np.empty(2 * len(starts))
    ys[0::2] = np.fmin.reduceat(v, starts)
    ys[1::2] = np.fmax.reduceat(v, starts)
    return xs, ys, n


def nice_step(x: float) -> float:
    """The smallest of 1, 2 and 5 times a power of ten that is >= x (> 0)."""
    e = 10.0 ** math.floor(math.log10(x))
    for m in (1.0, 2.0, 5.0):
        if m * e >= x * (1 - 1e-9):
            return m * e
    return 10 * e


def follow_x(lo: float, hi: float) -> tuple[float, float]:
    """The x range that shows data from lo to hi: whole steps of about an
    eighth of the span, ending at least a quarter step after hi, so it moves
    only when the data cross a step boundary (and the newest data stay in view
    until the next frame moves it)."""
    step = nice_step(max(hi - lo, 1.0) / 8)
    return math.floor(lo / step) * step, (math.floor(hi / step + 0.25) + 1) * step


#: What follow_y starts from: no values seen yet.
NO_ENVELOPE = (math.inf, -math.inf)


def follow_y(lo: float, hi: float, envelope: tuple[float, float]) -> tuple[tuple[float, float], tuple[float, float]]:
    """(envelope, y range) for values in view from lo to hi. The envelope is
    every value seen while it stays tight: it grows to take in new values, and
    starts again from lo..hi when these fill less than a quarter of it (or at
    :data:`NO_ENVELOPE`). The range is the envelope plus 5% on each side,
    widened to whole steps of about a tenth of its span (a flat line: its value
    +-10%, or +-0.1 around zero); it changes only when the envelope does."""
    e0, e1 = envelope
    if e1 >= e0 and hi - lo >= 0.25 * (e1 - e0):
        e0, e1 = min(e0, lo), max(e1, hi)
    else:
        e0, e1 = lo, hi
    lo, hi = e0, e1
    if hi <= lo:  # a flat line
        d = max(abs(hi), 1.0) * 0.1
        lo, hi = lo - d, hi + d
    span = hi - lo
    step = nice_step(span / 10)
    return (e0, e1), (math.floor((lo - 0.05 * span) / step) * step, math.ceil((hi + 0.05 * span) / step) * step)


class PlotPanel(QSplitter):
    """A checkable list of numeric channels beside a pyqtgraph plot of the checked
    ones. Emits ``selection_changed`` with the checked (device, channel) keys (the
    window then resubscribes) and ``history_wanted`` with the keys that started
    plotting (the window fetches their recent archive). :meth:`add_batch` only
    appends to buffers; a timer draws (see the module's doc)."""

    selection_changed = Signal(list)
    history_wanted = Signal(list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.channels = QListWidget()
        self.plot = pg.PlotWidget(background="w")
        self.plot.setLabel("bottom", "time", units="s")
        item = self.plot.getPlotItem()
        self._vb = item.getViewBox()
        self._axes = left, bottom = item.getAxis("left"), item.getAxis("bottom")
        # The view's menu (ranges, auto-range, export) stays; "Plot Options"
        # (log axes, FFT, downsampling, pyqtgraph's grid) acts on pyqtgraph's
        # own curves, not on these lines.
        item.setMenuEnabled(False, enableViewBoxMenu=True)
        left.setWidth(AXIS_WIDTH)
        bottom.enableAutoSIPrefix(False)  # the label stays "time (s)"
        for axis in (left, bottom):  # redrawn when the range changes, a pixmap in between
            axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.addWidget(self.channels)
        self.addWidget(self.plot)
        self.setStretchFactor(1, 4)
        self.setSizes([200, 800])
        #: The panel's clock: plotted times are seconds since this time.time().
        self.t0 = time.time()
        self._intake = Intake(self.t0)
        self._data: dict[Key, _Channel] = {}
        #: What is drawn of each checked channel.
        self.curves: dict[Key, Curve] = {}
        #: The failure markers of each checked channel (a scatter plot, hidden
        #: while empty; the tooltip of a marker is the failure's time and reason).
        self.markers: dict[Key, Any] = {}
        self.lines = _Lines(self.curves)
        self.plot.addItem(self.lines)
        #: Whether the view follows the data on the x and y axes.
        self.follow = [True, True]
        self._y_envelope = NO_ENVELOPE  # the values the y range is made for (see follow_y)
        #: Frames drawn with new data; samples taken in (all, plotted or not);
        #: paths built (for tests and profiling).
        self.redraws = 0
        self.received = 0
        self.paths_built = 0
        self._stale: dict[Key, None] = {}  # channels whose path is out of date, oldest first
        self._all_now = False  # rebuild every stale path on the next tick (after a zoom)
        self._changed = False  # a path changed since the last frame
        self._ticks = 0
        self._vb.disableAutoRange()
        self._vb.sigRangeChanged.connect(self._range_changed)
        self._vb.sigRangeChangedManually.connect(self._zoomed)
        self._vb.sigResized.connect(self._resized)
        self.channels.itemChanged.connect(self._item_changed)
        self.timer = QTimer(self)
        self.timer.setInterval(1000 // (REDRAW_HZ * TICKS_PER_FRAME))
        self.timer.timeout.connect(self._tick)
        self.timer.start()

    # -- channels -------------------------------------------------------------------

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
        self._sync_curves()  # (before the width: the colour swatches take room too)
        # Wide enough for the names (up to a limit), no horizontal scrolling.
        need = (self.channels.sizeHintForColumn(0) + 2 * self.channels.frameWidth()
                + self.channels.verticalScrollBar().sizeHint().width())
        self.channels.setMinimumWidth(min(need, CHANNEL_LIST_MAX_WIDTH))
        for i in range(self.channels.count()):
            it = self.channels.item(i)
            if it is not None and it.checkState() == Qt.CheckState.Checked:
                self.channels.scrollToItem(it, QListWidget.ScrollHint.PositionAtCenter)
                break

    def checked(self) -> list[Key]:
        """The (device, channel) keys being plotted."""
        out: list[Key] = []
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if item is not None and item.checkState() == Qt.CheckState.Checked:
                out.append(_key_of(item))
        return out

    def set_checked(self, key: Key, on: bool = True) -> None:
        """Checks or unchecks one channel (as a click would)."""
        for i in range(self.channels.count()):
            item = self.channels.item(i)
            if item is not None and _key_of(item) == tuple(key):
                item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def color_of(self, key: Key) -> str | None:
        """The colour (#rrggbb) of a plotted channel's line, or None."""
        c = self.curves.get(key)
        return c.pen.color().name() if c else None

    def _item_changed(self, _item: object) -> None:
        self._sync_curves()
        self.selection_changed.emit(self.checked())

    def _sync_curves(self) -> None:
        want = self.checked()
        for key in list(self.curves):
            if key not in want:
                del self.curves[key]
                self._stale.pop(key, None)
                self.plot.removeItem(self.markers.pop(key))
        new: list[Key] = []
        for key in want:
            if key in self.curves:
                continue
            used = [c.pen.color().name() for c in self.curves.values()]
            color = min(_PENS, key=used.count)  # the first colour no line has (or the least used)
            self.curves[key] = Curve(pg.mkPen(color, width=1))
            marker = pg.ScatterPlotItem(symbol="x", size=14, pen=pg.mkPen("#d50000", width=3), brush=None,
                                        hoverable=True, tip=_tip)
            marker.setVisible(False)
            self.plot.addItem(marker)
            self.markers[key] = marker
            if key not in self._data:
                self._data[key] = _Channel()
                new.append(key)
            self._data[key].markers_changed = True
            self._stale[key] = None
        self._changed = True
        blocked = self.channels.blockSignals(True)  # (an icon is no change of selection)
        for i in range(self.channels.count()):  # the list is the legend
            item = self.channels.item(i)
            if item is not None:
                c = self.curves.get(_key_of(item))
                item.setIcon(_swatch(c.pen.color().name() if c else ""))
        self.channels.blockSignals(blocked)
        if new:
            self.history_wanted.emit(new)

    # -- data -----------------------------------------------------------------------

    def intake(self, keys: Collection[Key]) -> Callable[[Sequence[Sample]], Batch]:
        """What a stream worker runs on each batch (in its own thread) before
        handing it to :meth:`add_batch`: the samples of ``keys`` sorted per
        channel."""
        want = frozenset(keys)
        return lambda samples: self._intake.sort(samples, want)

    def sort_history(self, samples: Sequence[Sample]) -> Batch:
        """Archived samples sorted for :meth:`add_history`; safe to run in any
        thread (it keeps no state)."""
        return Intake(self.t0).sort(samples)

    def add_batch(self, batch: Batch) -> None:
        """Appends a batch's channels to their buffers (in the GUI thread)."""
        self.received += batch.count
        for key, (t, v) in batch.points.items():
            ch = self._data.get(key)
            if ch is None:
                continue
            ch.extend(t, v)
            if key in batch.markers:
                ch.add_markers(batch.markers[key])
            if key in self.curves:
                self._stale[key] = None

    def add_history(self, key: Key, batch: Batch) -> None:
        """Puts a channel's archived samples (from :meth:`sort_history`) before
        what the live stream delivered."""
        ch = self._data.get(key)
        if ch is None or key not in batch.points:
            return
        t, v = batch.points[key]
        ch.prepend(t, v, batch.markers.get(key, []))
        if key in self.curves:
            self._stale[key] = None

    def points(self, key: Key) -> tuple[list[float], list[float]]:
        """A channel's buffered (times, values); NaN where it was not GOOD."""
        ch = self._data.get(key)
        return (ch.t.tolist(), ch.v.tolist()) if ch else ([], [])

    def failures(self, key: Key) -> list[Marker]:
        """A channel's failure markers: (time, y, reason)."""
        ch = self._data.get(key)
        return list(ch.markers) if ch else []

    def latest_value(self, key: Key) -> float | None:
        """The newest buffered good value of a channel, or None."""
        ch = self._data.get(key)
        return ch.last_good if ch and not math.isnan(ch.last_good) else None

    # -- drawing --------------------------------------------------------------------

    def redraw(self) -> None:
        """Brings every path, marker and the range up to date now and repaints."""
        for _ in range(3):  # (a new range makes the paths stale, their y range can move it once more)
            self._rebuild(len(self._stale))
            self._changed = True
            self._frame()
            if not self._stale:
                break

    def _tick(self) -> None:
        """A few paths per tick; every TICKS_PER_FRAME-th tick, a frame."""
        self._adopt_autorange()
        if self._all_now:
            self._all_now = False
            self._rebuild(len(self._stale))
        else:
            self._rebuild(-(-len(self.curves) // TICKS_PER_FRAME))
        self._ticks += 1
        if self._ticks % TICKS_PER_FRAME == 0:
            self._frame()

    def _rebuild(self, n: int) -> None:
        """Rebuilds the paths of the n channels stale longest."""
        if not self._stale or n <= 0:
            return
        (x0, x1), _ = self._vb.viewRange()
        columns = int(self._vb.width())
        for key in list(self._stale)[:n]:
            del self._stale[key]
            c, ch = self.curves[key], self._data[key]
            t, v = ch.t, ch.v
            xs, ys, c.samples = line_points(t, v, x0, x1, columns)
            c.y_bounds = (float(np.fmin.reduce(ys)), float(np.fmax.reduce(ys))) if len(ys) else (math.nan, math.nan)
            finite = not math.isnan(c.y_bounds[0])  # (an all-NaN path is no line at all)
            c.path = pg.arrayToQPath(xs, ys, connect="finite") if finite else QPainterPath()
            c.last_t = float(t[-1]) if len(t) else math.nan
            self.paths_built += 1
        self._changed = True

    def _frame(self) -> None:
        """Moves the view with the data, updates markers, repaints what changed."""
        self._follow()
        for key, ch in self._data.items():
            if ch.markers_changed and key in self.markers:
                ch.markers_changed = False
                m = [p for p in ch.markers if not math.isnan(p[1])]
                marker = self.markers[key]
                marker.setData(x=[p[0] for p in m], y=[p[1] for p in m], data=[p[2] for p in m])
                marker.setVisible(bool(m))
        if self._changed:
            self._changed = False
            self.lines.update()
            self.redraws += 1

    def _follow(self) -> None:
        """Sets the view range to the data's on the axes that follow it."""
        xs = [(ch.t[0], ch.t[-1]) for key, ch in self._data.items() if key in self.curves and len(ch.t)]
        ys = [c.y_bounds for c in self.curves.values() if not math.isnan(c.y_bounds[0])]
        xb = (min(x[0] for x in xs), max(x[1] for x in xs)) if xs else None
        yb = (min(y[0] for y in ys), max(y[1] for y in ys)) if ys else None
        self.lines.bounds = [xb, yb]
        if not any(self.follow):
            return
        (cx0, cx1), (cy0, cy1) = self._vb.viewRange()
        xr = follow_x(*xb) if xb and self.follow[0] else None
        yr = None
        if yb and self.follow[1]:
            self._y_envelope, yr = follow_y(yb[0], yb[1], self._y_envelope)
        xr = None if xr == (cx0, cx1) else xr
        yr = None if yr == (cy0, cy1) else yr
        if xr or yr:
            self._vb.setRange(xRange=xr, yRange=yr, padding=0)

    def _adopt_autorange(self) -> None:
        """pyqtgraph's auto-range, switched on by the "A" button or a menu,
        becomes following the data (computed here, in steps)."""
        auto = self._vb.autoRangeEnabled()
        if auto[0] or auto[1]:
            for axis in (0, 1):
                if auto[axis]:
                    self.follow[axis] = True
            if auto[1]:
                self._y_envelope = NO_ENVELOPE
            self._vb.disableAutoRange()
            self._frame()

    def _zoomed(self, mask: list[bool]) -> None:
        """The mouse moved the view: stop following on those axes; redraw at once."""
        for axis in (0, 1):
            if mask[axis]:
                self.follow[axis] = False
        self._all_now = True

    def _range_changed(self, _vb: object, _ranges: object, changed: list[bool] | None = None) -> None:
        self.lines.set_rect(self._vb.viewRect())
        self._place_grid()
        if changed is None or changed[0]:
            self._all_stale()

    def _resized(self, _vb: object) -> None:
        self._place_grid()
        self._all_stale()

    def _place_grid(self) -> None:
        """The grid at the axes' tick marks (as the axes compute them)."""
        (x0, x1), (y0, y1) = self._vb.viewRange()
        left, bottom = self._axes
        grid: list[list[float]] = []
        for axis, lo, hi, size in ((bottom, x0, x1, self._vb.width()), (left, y0, y1, self._vb.height())):
            levels = axis.tickValues(lo, hi, size) if size > 0 and hi > lo else []
            major = [float(v) for v in levels[0][1]] if levels else []
            minor = [float(v) for v in levels[1][1] if v not in major] if len(levels) > 1 else []
            grid += [major, minor]
        self.lines.grid = (grid[0], grid[1], grid[2], grid[3])

    def _all_stale(self) -> None:
        for key in self.curves:
            self._stale[key] = None


def _key_of(item: QListWidgetItem) -> Key:
    dev, ch = item.data(Qt.ItemDataRole.UserRole)
    return (str(dev), str(ch))


@functools.lru_cache(maxsize=64)
def _swatch(color: str) -> QIcon:
    """A legend entry: a short thick line of the colour ("": blank, so that
    every name in the list starts at the same place)."""
    pix = QPixmap(16, 16)
    pix.fill(Qt.GlobalColor.transparent)
    if color:
        p = QPainter(pix)
        p.fillRect(1, 6, 14, 4, QColor(color))
        p.end()
    return QIcon(pix)


def _tip(x: float, y: float, data: object) -> str:
    return str(data)
