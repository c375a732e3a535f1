"""The PySide6 GUI against a running demo, under Xvfb (scripts/test runs pytest
in xvfb-run). Saves a screenshot to artifacts/gui.png."""

import getpass
import math
import os
import threading
import time

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pyqtgraph")

from PySide6.QtCore import Qt  # noqa: E402

from switchyard import Client  # noqa: E402
from switchyard.gui import MainWindow  # noqa: E402
from switchyard.gui.alarmpanel import SEVERITY_COLORS  # noqa: E402

from conftest import ARTIFACTS, wait_for  # noqa: E402

DEV = "psu-14"  # not psu-0*: test_grpc expects those at their initial 12 V
BROKEN = "psu-15"  # made to fail through the simulator's control API


@pytest.fixture
def window(demo, qtbot):
    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        pytest.fail("no DISPLAY: run the GUI tests under xvfb-run (scripts/test does)")
    with Client(demo.grpc_addr) as client:
        win = MainWindow(client, plot=[(DEV, "setpoint"), (DEV, "voltage"), (BROKEN, "voltage")])
        qtbot.addWidget(win)
        win.show()
        yield win
        win.close()


def test_gui_lists_devices_plots_and_sends_a_command(window, qtbot, demo):
    # The device list shows the demo's 24 devices, live state from WatchDevices.
    qtbot.waitUntil(lambda: window.devices.rowCount() == 24, timeout=30_000)
    qtbot.waitUntil(lambda: window.devices.state_of(DEV) == "CONNECTED", timeout=30_000)
    names = [window.devices.item(r, 0).text() for r in range(24)]
    assert names == sorted(names) and names[0] == "env-01"

    # The plotted voltage updates: redraws happen and the line grows.
    assert set(window.plots.curves) == {(DEV, "voltage"), (DEV, "setpoint"), (BROKEN, "voltage")}
    curve = window.plots.curves[(DEV, "voltage")]
    qtbot.waitUntil(lambda: curve.samples >= 5, timeout=30_000)
    last, redraws = curve.last_t, window.plots.redraws
    qtbot.waitUntil(lambda: curve.last_t > last and window.plots.redraws > redraws, timeout=30_000)
    assert abs(window.plots.latest_value((DEV, "voltage")) - 12.0) < 1.0

    # A command from the panel changes the set-point.
    panel = window.commands
    panel.device.setCurrentText(DEV)
    panel.command.setCurrentText("set_voltage")
    panel.args.setText("21.5")
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "ok" in panel.result.text(), timeout=30_000)
    assert "psu-14 set_voltage 21.5: ok" in panel.result.text()
    qtbot.waitUntil(lambda: window.plots.latest_value((DEV, "setpoint")) == 21.5, timeout=30_000)
    qtbot.waitUntil(lambda: abs(window.plots.latest_value((DEV, "voltage")) - 21.5) < 1.0, timeout=30_000)
    with Client(demo.grpc_addr) as c:
        assert c.latest(DEV, "setpoint")[0].value == 21.5

    # A bad argument shows the server's message, in red, without blocking anything.
    panel.args.setText("99")
    qtbot.mouseClick(panel.button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "above the maximum" in panel.result.text(), timeout=30_000)

    # The supervision tree (from the supervision watch's snapshot).
    qtbot.waitUntil(lambda: window.tree.topLevelItemCount() == 1, timeout=30_000)
    assert window.tree.topLevelItem(0).text(0) == "switchyard"
    # 21.5 V is above psu-14's HIHI limit (20 V): a MAJOR alarm shows up live.
    qtbot.waitUntil(lambda: (DEV, "voltage") in window.alarms.alarms, timeout=30_000)
    a = window.alarms.alarms[(DEV, "voltage")]
    assert (a.condition, a.severity) == ("HIHI", "MAJOR")
    row = window.alarms.row_of(DEV, "voltage")
    assert window.alarms.table.item(row, 2).text() == "MAJOR"
    assert window.alarms.table.item(row, 0).background().color().name() == SEVERITY_COLORS["MAJOR"][0]

    # A failing instrument shows up live in the device list, with the reason,
    # and as a gap with a marker in its plot.
    # (hang, not refuse: a refused port may be taken by someone else before it is
    # listened on again.)
    broken = (BROKEN, "voltage")
    qtbot.waitUntil(lambda: len(window.plots.points(broken)[1]) >= 5, timeout=30_000)
    assert not any(math.isnan(v) for v in window.plots.points(broken)[1])
    demo.fault(BROKEN, hang="1", drop="1")
    try:
        qtbot.waitUntil(lambda: window.devices.state_of(BROKEN) == "BACKOFF", timeout=30_000)
        assert window.devices.devices[BROKEN].last_error
        assert window.devices.devices[BROKEN].error == window.devices.devices[BROKEN].last_error
        qtbot.waitUntil(lambda: bool(window.plots.failures(broken)), timeout=30_000)
        t_fail, y_fail, why = window.plots.failures(broken)[0]
        assert why.split(" ", 1)[1].startswith(f"{BROKEN}/voltage: ") and ("COMM_ERROR" in why or "TIMEOUT" in why)
        assert abs(y_fail - 12.0) < 1.0  # at the last good value
        t, v = window.plots.points(broken)
        assert math.isnan(v[-1]) and t[-1] >= t_fail  # the line stops: no value drawn across the outage
        qtbot.wait(1500)  # (a longer outage, for a gap that shows in the screenshot)
        # Its process stays up and says why in the supervision tree (the STATUS
        # events refresh it).
        qtbot.waitUntil(lambda: (window.tree.status_of(f"/switchyard/devices/{BROKEN}") or "").startswith("backoff: "),
                        timeout=30_000)
    finally:
        demo.fault(BROKEN, clear="1")
    qtbot.waitUntil(lambda: window.devices.state_of(BROKEN) == "CONNECTED", timeout=60_000)
    # Connected again: the error column is empty, the last error is history.
    d = window.devices.devices[BROKEN]
    assert d.error == "" and d.last_error and d.reconnections >= 1
    row = window.devices._rows[BROKEN]
    assert window.devices.item(row, 3).text() == ""
    assert "last error before that" in window.devices.item(row, 3).toolTip()
    # The line goes on after the gap; the marker's tooltip says why.
    qtbot.waitUntil(lambda: not math.isnan(window.plots.points(broken)[1][-1]), timeout=30_000)
    window.plots.redraw()
    marker = window.plots.markers[broken]
    assert len(marker.data) >= 1 and marker.data[0]["data"] == why
    # Let a few more points arrive, then keep a screenshot: the failed
    # instrument's line has a gap with a red marker.
    n = curve.samples
    qtbot.waitUntil(lambda: curve.samples >= n + 20, timeout=30_000)
    window.plots.redraw()
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / "gui.png"
    assert window.grab().save(str(path))
    assert path.stat().st_size > 10_000


def test_gui_alarm_panel_acknowledges_psu20(window, qtbot, demo):
    # The demo's sweep raised psu-20's voltage alarm at the start and nobody has
    # acknowledged it (test_alarms only reads it): it is listed, unacknowledged.
    key = ("psu-20", "voltage")
    panel = window.alarms
    qtbot.waitUntil(lambda: key in panel.alarms and not panel.alarms[key].acked, timeout=90_000)
    row = panel.row_of(*key)
    assert "UNACKED" in panel.table.item(row, 5).text()
    assert panel.table.item(row, 2).text() in ("MINOR", "MAJOR")

    # Watch psu-20's transitions through the API while the panel acknowledges.
    seen, done = [], threading.Event()
    with Client(demo.grpc_addr) as c:
        watch = c.watch_alarms("psu-20", "voltage", include_active=False)

        def read():
            for t in watch:
                seen.append(t)
                if t.event == "ACKED":
                    done.set()

        reader = threading.Thread(target=read)
        reader.start()
        try:
            assert panel.select(*key)
            panel.comment.setText("gui test: seen the sweep")
            qtbot.mouseClick(panel.ack, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(lambda: "acknowledged by" in panel.note.text(), timeout=30_000)
            assert f"psu-20/voltage acknowledged by {getpass.getuser()}" in panel.note.text()
            assert done.wait(30), f"no ACKED transition for psu-20: {seen}"
        finally:
            watch.cancel()
            reader.join(30)
    acked = next(t for t in seen if t.event == "ACKED")
    assert (acked.who, acked.comment) == (getpass.getuser(), "gui test: seen the sweep")
    assert acked.alarm.acked
    # The panel shows it acknowledged (or, if its condition had already cleared, no
    # longer lists it), until the sweep raises it again.
    qtbot.waitUntil(lambda: key not in panel.alarms or panel.alarms[key].acked
                    or panel.alarms[key].since_ns > acked.timestamp_ns, timeout=30_000)


def test_gui_close_stops_its_threads(window, qtbot):
    qtbot.waitUntil(lambda: window._stream is not None and window._stream.isRunning(), timeout=30_000)
    stream, watch = window._stream, window._watch
    alarm_watch, sup_watch = window._alarm_watch, window._sup_watch
    qtbot.waitUntil(lambda: alarm_watch.isRunning() and sup_watch.isRunning(), timeout=30_000)
    window.close()
    assert not stream.isRunning() and not watch.isRunning()
    assert not alarm_watch.isRunning() and not sup_watch.isRunning()
    assert window._closed


def test_gui_survives_a_server_restart(fresh_demo, qtbot):
    with Client(fresh_demo.grpc_addr) as client:
        win = MainWindow(client, plot=[(DEV, "voltage")])
        qtbot.addWidget(win)
        win.show()
        def curve_len():
            return win.plots.curves[(DEV, "voltage")].samples if (DEV, "voltage") in win.plots.curves else 0

        qtbot.waitUntil(lambda: (DEV, "voltage") in win.plots.curves and curve_len() >= 5, timeout=30_000)
        fresh_demo.restart()
        n = curve_len()
        # The stream reconnected (and said so), the plot goes on, the device list is live again.
        qtbot.waitUntil(lambda: "server restarted" in win.stream_status.text(), timeout=30_000)
        assert f"{DEV}/voltage: server restarted after a reconnect" in win.stream_status.text()
        qtbot.waitUntil(lambda: curve_len() >= n + 10, timeout=30_000)
        qtbot.waitUntil(lambda: all(win.devices.state_of(d) == "CONNECTED" for d in win.devices.devices),
                        timeout=30_000)
        # The alarm and supervision watches reconnected too: the new server's
        # psu-20 alarm (raised by its own sweep) and its tree are shown.
        qtbot.waitUntil(lambda: ("psu-20", "voltage") in win.alarms.alarms, timeout=30_000)
        qtbot.waitUntil(lambda: win.tree.topLevelItemCount() == 1, timeout=30_000)
        win.close()


def test_refguard_outlasts_the_pyside_reference_leak(qapp):
    # PySide6 6.12 drops a reference to None on every void Qt call and to True on
    # every emit; on Python < 3.12 these 50,000 calls alone would abort the
    # interpreter (none_dealloc) without switchyard.gui.refguard.
    import sys

    from PySide6.QtCore import QObject, Signal
    from PySide6.QtWidgets import QLabel

    from switchyard.gui import refguard

    class Emitter(QObject):
        sig = Signal()

    label, emitter = QLabel(), Emitter()
    for _ in range(50_000):
        label.setText("x")
        emitter.sig.emit()
    if refguard.needed():
        assert sys.getrefcount(None) > refguard.RESERVE // 2


def test_gui_fits_the_screen_and_wraps_long_alarm_messages(window, qtbot):
    # The window opens within a 1400x900 screen (room left for decorations) and
    # can be made smaller still.
    assert window.width() <= 1400 and window.height() <= 900 - 40
    hint = window.minimumSizeHint()
    assert hint.width() <= 1400 and hint.height() <= 900, hint
    # Every panel gets room.
    for w in (window.devices, window.plots.plot, window.alarms.table, window.commands):
        assert w.isVisible() and w.width() > 150 and w.height() > 100, w
    # A long alarm message is shown in full, wrapped over several lines.
    from dataclasses import replace

    from PySide6.QtGui import QFontMetrics

    from switchyard import Alarm

    long = ("device down: BACKOFF: dial tcp 127.0.0.1:40597: connect: connection refused after the instrument's "
            "controller stopped answering its SCPI port; next attempt in 5 s; see the supervision tree for details")
    a = Alarm("zz-test", "voltage", "power", "COMM", "INVALID", "INVALID", False, message=long)
    window.alarms.apply(a)
    try:
        row = window.alarms.row_of("zz-test", "voltage")
        item = window.alarms.table.item(row, len(window.alarms.COLUMNS) - 1)
        rect = window.alarms.table.visualItemRect(item)
        need = QFontMetrics(item.font()).boundingRect(rect.adjusted(0, 0, -8, 0), int(Qt.TextFlag.TextWordWrap), long)
        assert rect.height() >= need.height() > QFontMetrics(item.font()).height(), (rect, need)
        assert item.toolTip() == long
    finally:
        window.alarms.apply(replace(a, severity="NO_ALARM", latched="NO_ALARM"))


def test_gui_default_plots_come_from_the_server(demo, qtbot):
    with Client(demo.grpc_addr) as client:
        win = MainWindow(client)  # no channels named: the server's first numeric ones
        qtbot.addWidget(win)
        win.show()
        try:
            qtbot.waitUntil(lambda: len(win.plots.checked()) == 2, timeout=30_000)
            have = {(d.name, c.name) for d in client.devices() for c in d.channels}
            assert set(win.plots.checked()) <= have
            qtbot.waitUntil(lambda: win._stream is not None and win._stream.isRunning(), timeout=30_000)
            key = win.plots.checked()[0]
            qtbot.waitUntil(lambda: win.plots.latest_value(key) is not None, timeout=30_000)
        finally:
            win.close()
        # A channel this server does not have is said so, and not plotted.
        win = MainWindow(client, plot=[("nope-01", "voltage")])
        qtbot.addWidget(win)
        win.show()
        try:
            qtbot.waitUntil(lambda: "not on this server: nope-01/voltage" in win.statusBar().currentMessage(),
                            timeout=30_000)
            qtbot.waitUntil(lambda: len(win.plots.checked()) == 2, timeout=30_000)
        finally:
            win.close()


def test_gui_plot_opens_with_the_archives_last_minutes(archived_demo, qtbot):
    with Client(archived_demo.grpc_addr) as client:
        wait_for(lambda: len(client.history("psu-01", "voltage", time.time() - 60)) >= 20, 60, "archived samples")
        opened = time.time()
        win = MainWindow(client, plot=[("psu-01", "voltage")])
        qtbot.addWidget(win)
        win.show()
        try:
            key = ("psu-01", "voltage")
            qtbot.waitUntil(lambda: win.archives is True, timeout=30_000)
            t, v = win.plots.points(key)
            older = [x for x in t if x + win.plots.t0 < opened - 1]
            assert len(older) >= 10, "no archived samples before the window opened"
            assert t == sorted(t)
        finally:
            win.close()
