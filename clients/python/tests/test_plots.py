"""The plots without a server: ring buffers, steps and per-pixel peaks, gaps
and markers, paths rebuilt a few per tick and painted once per frame, the view
following the data in steps (and not after a zoom), the channel list as the
legend, and what ends up on screen (a gap is not painted)."""

import math

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import QPointF  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402

from switchyard.gui.plots import (  # noqa: E402
    NO_ENVELOPE,
    TICKS_PER_FRAME,
    Intake,
    PlotPanel,
    _Channel,
    follow_x,
    follow_y,
    line_points,
    nice_step,
)
from switchyard.model import Channel, Device, Sample  # noqa: E402

nan = math.nan


def sample(t0, t, value=None, quality="GOOD", error="", dev="d", ch="c"):
    return Sample(dev, ch, int((t0 + t) * 1e9), 0, value, quality, error)


def devices(names, channels):
    return [Device(n, "127.0.0.1:1", "scpi", "CONNECTED", tuple(Channel(c, unit="V") for c in channels))
            for n in names]


@pytest.fixture
def panel(qtbot):
    p = PlotPanel()
    qtbot.addWidget(p)
    p.resize(1000, 500)
    p.show()
    qtbot.waitExposed(p)
    p.timer.stop()  # the tests tick by hand
    return p


def test_ring_keeps_the_newest_points_in_time_order():
    rng = np.random.default_rng(1)
    ch = _Channel(cap=100)
    ref, t = [], 0.0
    for _ in range(400):  # chunks of 0..29 points: the buffer wraps many times
        n = int(rng.integers(0, 30))
        chunk = t + np.arange(n, dtype=float)
        t += n
        ch.extend(chunk, chunk * 2)
        ref.extend(chunk.tolist())
        assert ch.t.tolist() == ref[-100:]
        assert ch.v.tolist() == [x * 2 for x in ref[-100:]]
    big = t + np.arange(250, dtype=float)  # more than the capacity at once
    ch.extend(big, -big)
    assert ch.t.tolist() == big[-100:].tolist() and ch.last_good == -big[-1]
    # Times never go back: a point older than the newest held is dropped.
    ch.extend(np.array([big[-1] - 5, big[-1] + 1]), np.array([1.0, nan]))
    assert ch.t[-2:].tolist() == [big[-1], big[-1] + 1] and math.isnan(ch.v[-1])
    assert ch.last_good == -big[-1]  # NaN is no value
    # Older points (history) go before what is held, within the capacity.
    ch2 = _Channel(cap=10)
    ch2.extend(np.array([5.0, 6.0]), np.array([50.0, 60.0]))
    ch2.prepend(np.arange(0.0, 7.0), np.arange(0.0, 7.0), [(1.0, 1.0, "old failure"), (5.5, 5.0, "overlaps")])
    assert ch2.t.tolist() == [0, 1, 2, 3, 4, 5, 6] and ch2.v.tolist() == [0, 1, 2, 3, 4, 50, 60]
    assert ch2.last_good == 60.0 and list(ch2.markers) == [(1.0, 1.0, "old failure")]


def test_sparse_data_are_drawn_as_steps_that_stop_at_a_failure():
    t = np.array([0.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    v = np.array([1.0, 2.0, nan, nan, 5.0, 6.0])
    xs, ys, n = line_points(t, v, -1.0, 10.0, 800)
    assert n == 6
    assert xs.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    # Each value holds until the next sample; the line ends where the failure
    # began (t=2) and starts again with the next good value (t=4).
    assert [None if math.isnan(y) else y for y in ys] == [1, 1, 2, 2, None, None, None, None, 5, 5, 6]
    # Only what is in view, plus the samples just before and after it.
    xs, ys, n = line_points(t, v, 1.5, 2.5, 800)
    assert n == 3 and xs[0] == 1.0 and xs[-1] == 3.0
    assert line_points(t, v, 20.0, 30.0, 800)[2] == 1  # the last value holds into the view


def test_dense_data_keep_each_pixel_columns_minimum_and_maximum():
    t = np.arange(100_000) / 1000.0  # 100 s at 1 kHz
    v = np.sin(t)
    v[50_000] = 100.0  # a one-sample spike
    v[70_000:71_000] = nan  # a one-second failure
    columns = 500  # 0.2 s each
    xs, ys, n = line_points(t, v, 0.0, 100.0, columns)
    assert n == 100_000 and len(xs) <= 2 * (columns + 1)
    col = np.floor(t * (columns / 100.0))
    for k in range(columns):  # every column: its first time, its minimum and maximum
        inside = col == k
        i = int(np.searchsorted(xs, t[inside][0]))
        lo, hi = ys[i], ys[i + 1]
        if np.all(np.isnan(v[inside])):
            assert math.isnan(lo) and math.isnan(hi), k
        else:
            assert (lo, hi) == (np.nanmin(v[inside]), np.nanmax(v[inside])), k
    assert np.nanmax(ys) == 100.0  # the spike is drawn
    gap = sorted({int(c) for c in np.floor(xs[np.isnan(ys)] * (columns / 100.0))})
    assert gap == [350, 351, 352, 353, 354]  # the columns wholly inside the failure, no other


def test_a_marker_per_failure_at_the_last_good_value_with_the_reason():
    intake = Intake(t0=1000.0)
    b1 = intake.sort([sample(1000, 1, 12.0), sample(1000, 2, quality="TIMEOUT", error="no reply"),
                      sample(1000, 3, quality="TIMEOUT", error="no reply"), sample(1000, 1, 7.0, dev="other")],
                     keys={("d", "c")})
    assert b1.count == 4 and list(b1.points) == [("d", "c")]
    t, v = b1.points[("d", "c")]
    assert t.tolist() == [1, 2, 3] and v[0] == 12.0 and np.isnan(v[1:]).all()
    [(mt, my, why)] = b1.markers[("d", "c")]
    assert (mt, my) == (2.0, 12.0) and why.endswith(" d/c: TIMEOUT: no reply")
    # The same failure going on in the next batch: no new marker; another
    # failure, or the same one after a good value: a new marker.
    b2 = intake.sort([sample(1000, 4, quality="TIMEOUT", error="no reply"),
                      sample(1000, 5, quality="COMM_ERROR", error="connection refused"),
                      sample(1000, 6, 13.0), sample(1000, 7, quality="TIMEOUT", error="no reply")])
    assert [(m[0], m[1], m[2].split(" ", 1)[1]) for m in b2.markers[("d", "c")]] == [
        (5.0, 12.0, "d/c: COMM_ERROR: connection refused"), (7.0, 13.0, "d/c: TIMEOUT: no reply")]
    # Out-of-order samples of a batch are put in time order.
    b3 = intake.sort([sample(1000, 9, 2.0), sample(1000, 8, 1.0)])
    assert b3.points[("d", "c")][0].tolist() == [8, 9] and b3.points[("d", "c")][1].tolist() == [1, 2]


def test_the_view_follows_the_data_in_steps():
    assert [nice_step(x) for x in (0.3, 1.0, 1.5, 3.75, 7, 40)] == [0.5, 1, 2, 5, 10, 50]
    ranges = set()
    for i in range(1, 6000):  # 60 s at 100 Hz, the last 30 s held
        hi = i / 100
        lo = max(0.0, hi - 30)
        r = follow_x(lo, hi)
        assert r[0] <= lo and r[1] > hi, (lo, hi, r)  # all of it in view, the newest too
        ranges.add(r)
    assert len(ranges) < 60, len(ranges)  # it moves in steps, not with every sample
    # y: a noisy signal (the 30 s in view, one frame every 0.1 s for 100 s)
    # settles in a range that stays; a jump widens it; a much narrower signal
    # narrows it.
    rng = np.random.default_rng(2)
    noise = 12 + rng.normal(0, 0.01, 13_000)
    env, seen = NO_ENVELOPE, []
    for i in range(1000):
        v = noise[i * 10:i * 10 + 3000]
        env, r = follow_y(float(v.min()), float(v.max()), env)
        assert r[0] < v.min() and v.max() < r[1]
        if not seen or seen[-1] != r:
            seen.append(r)
    assert len(seen) <= 3, seen
    env, r = follow_y(12.0, 21.5, env)
    assert r == (11.0, 22.0)
    env, r = follow_y(13.0, 17.0, env)  # still fills a quarter of it: the same range
    assert r == (11.0, 22.0)
    env, r = follow_y(12.0, 12.0, env)  # a flat line
    assert r == pytest.approx((10.5, 13.5))
    assert follow_y(0.0, 0.0, NO_ENVELOPE)[1] == pytest.approx((-0.12, 0.12))
    # A sawtooth rising from 0 to 10 (a frame every 0.1 s): the range grows
    # with it, not past it.
    env = NO_ENVELOPE
    for i in range(1, 101):
        env, r = follow_y(0.0, i / 10, env)
    assert r == (-1.0, 11.0)


def feed(panel, keys, seconds, rate=100, start=0.0, bad=None):
    """rate samples/s per channel from start to start+seconds; value = time
    (NaN where bad(t))."""
    intake = Intake(panel.t0)
    ts = start + np.arange(int(seconds * rate)) / rate
    out = []
    for t in ts:
        for dev, ch in keys:
            if bad and bad(t):
                out.append(sample(panel.t0, t, quality="COMM_ERROR", error="refused", dev=dev, ch=ch))
            else:
                out.append(sample(panel.t0, t, float(t % 10), dev=dev, ch=ch))
    panel.add_batch(intake.sort(out))


def test_paths_are_rebuilt_a_few_per_tick_and_painted_once_per_frame(panel, monkeypatch):
    names = [f"load-{i:02d}" for i in range(5)]
    keys = [(d, c) for d in names for c in "abcd"]
    panel.set_devices(devices(names, "abcd"), set(keys))
    assert len(panel.curves) == 20
    feed(panel, keys, 5)
    updates = []
    monkeypatch.setattr(panel.lines, "update", lambda *a: updates.append(panel._ticks))
    per_tick, frames = [], panel.redraws
    for _ in range(3 * TICKS_PER_FRAME):
        before = panel.paths_built
        panel._tick()
        per_tick.append(panel.paths_built - before)
    assert max(per_tick) <= math.ceil(20 / TICKS_PER_FRAME), per_tick
    assert all(c.samples > 0 for c in panel.curves.values())
    # A repaint per frame at most, none in between.
    assert updates and len(updates) == len(set(updates)) == panel.redraws - frames
    assert all(t % TICKS_PER_FRAME == 0 for t in updates), updates
    # New data for one channel: only its path is rebuilt.
    feed(panel, keys[:1], 0.1, start=5.0)
    built = panel.paths_built
    for _ in range(TICKS_PER_FRAME):
        panel._tick()
    assert panel.paths_built - built == 1 and panel.curves[keys[0]].last_t == pytest.approx(5.09)


def test_zooming_stops_following_and_the_a_button_resumes(panel):
    key = ("d", "c")
    panel.set_devices(devices(["d"], "c"), {key})
    feed(panel, [key], 20)
    panel.redraw()
    (x0, x1), (y0, y1) = panel._vb.viewRange()
    assert x0 <= 0.0 and x1 > 19.99 and y0 < 0.0 and y1 > 9.99, panel._vb.viewRange()
    # A zoom with the mouse (pyqtgraph says so with sigRangeChangedManually).
    panel._vb.setRange(xRange=(2.0, 4.0), padding=0)
    panel._vb.sigRangeChangedManually.emit([True, False])
    assert panel.follow == [False, True]
    before = panel.paths_built
    panel._tick()
    assert panel.paths_built - before == 1  # rebuilt at once for the new range
    assert 200 <= panel.curves[key].samples <= 202  # only what is in view (and one either side)
    feed(panel, [key], 10, start=20.0)
    panel.redraw()
    assert panel._vb.viewRange()[0] == [2.0, 4.0]  # stays where the user put it
    # The "A" button (pyqtgraph's auto-range): following again, in steps.
    panel._vb.enableAutoRange()
    panel._tick()
    assert panel.follow == [True, True] and list(panel._vb.autoRangeEnabled()) == [False, False]
    panel.redraw()
    x0, x1 = panel._vb.viewRange()[0]
    assert x0 <= 0.0 and x1 > 29.99


def test_a_gap_is_not_painted_and_the_list_is_the_legend(panel):
    keys = [("d", "c"), ("e", "c")]
    panel.set_devices(devices(["d", "e"], ["c", "x"]), set(keys))
    colors = {panel.color_of(k) for k in keys}
    assert len(colors) == 2 and None not in colors  # a colour of its own each
    # d/c: 1 V for 30 s except a failure from 10 s to 20 s.
    intake = Intake(panel.t0)
    out = [sample(panel.t0, i / 10, 1.0) if not 100 <= i < 200 else
           sample(panel.t0, i / 10, quality="COMM_ERROR", error="refused") for i in range(300)]
    panel.add_batch(intake.sort(out))
    panel.redraw()
    panel.redraw()
    img = panel.plot.grab().toImage()
    color = QColor(panel.color_of(keys[0]))

    def near(c):  # (the grid is drawn over the lines, translucent)
        return abs(c.red() - color.red()) + abs(c.green() - color.green()) + abs(c.blue() - color.blue()) < 90

    def drawn_near(x, y):
        p = panel.plot.mapFromScene(panel._vb.mapViewToScene(QPointF(x, y)))
        return any(near(img.pixelColor(p.x() + dx, p.y() + dy)) for dx in (-1, 0, 1) for dy in (-2, -1, 0, 1, 2))

    assert drawn_near(5.0, 1.0) and drawn_near(25.0, 1.0)
    assert not drawn_near(12.0, 1.0) and not drawn_near(18.0, 1.0)
    assert panel.failures(keys[0])[0][:2] == (10.0, 1.0) and panel.markers[keys[0]].isVisible()
    assert not panel.markers[keys[1]].isVisible()  # no failure, nothing to paint
    # The list shows each plotted channel's colour; an unplotted one a blank.
    for i in range(panel.channels.count()):
        item = panel.channels.item(i)
        dev, ch = item.data(0x0100)
        swatch = item.icon().pixmap(16, 16).toImage().pixelColor(8, 8)
        if (dev, ch) in keys:
            assert swatch.name() == panel.color_of((dev, ch))
        else:
            assert swatch.alpha() == 0
    panel.set_checked(keys[1], False)
    assert keys[1] not in panel.curves and panel.color_of(keys[1]) is None
