"""The main window and the ``switchyard-gui`` entry point."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any, Callable

from PySide6.QtCore import Qt, QThreadPool, QTimer
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QLabel, QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from ..client import Client
from ..errors import NoArchive
from ..model import CommandReply, Device, Sample
from ..supervision import SupervisionEvent
from ..transport import TLS, TLSConfig, read_token_file
from .alarmpanel import AlarmPanel
from .panels import CommandPanel, DevicePanel, TreePanel
from .plots import Batch, PlotPanel
from .workers import AlarmWatchWorker, DeviceWatchWorker, StreamWorker, SupervisionWatchWorker, Task

#: The supervision tree is fetched again this long after a lifecycle event (events
#: in a burst, such as a restart, coalesce into one fetch), in milliseconds.
TREE_EVENT_DELAY_MS = 200
#: How often the tree is fetched anyway, for what changes without an event
#: (mailbox depths, process status): milliseconds; and when the server streams
#: no supervision events, the polling period instead.
TREE_REFRESH_MS = 10_000
TREE_POLL_MS = 2000
#: How much archive a channel shows when it starts plotting (when the server archives).
HISTORY_WINDOW = dt.timedelta(minutes=5)
#: How many channels are plotted at start when none are named: the first numeric
#: channels the server has.
DEFAULT_PLOTS = 2
#: The window's size at start: it fits a 1400x900 screen with room for a
#: title bar and a task bar.
START_SIZE = (1360, 820)


class MainWindow(QMainWindow):
    """Devices and supervision tree (left), live plots above the alarm panel
    (centre, the alarm messages get the full width), the command panel (right).
    ``plot`` lists the channels plotted from the start (device, channel); without
    it, the first numeric channels the server has. A channel that starts
    plotting shows the last :data:`HISTORY_WINDOW` of its archive, when the
    server archives. The window owns its worker threads and stops them in
    :meth:`closeEvent`; it does not close the client."""

    def __init__(self, client: Client, plot: list[tuple[str, str]] | None = None) -> None:
        super().__init__()
        self.client = client
        self.setWindowTitle(f"Switchyard — {client.address}")
        self.resize(*START_SIZE)
        self._initial_plot = set(plot or [])
        #: Whether the server archives (None: not known yet).
        self.archives: bool | None = None
        self._pool = QThreadPool(self)
        self._tasks: set[Task] = set()
        self._stream: StreamWorker | None = None
        self._closed = False

        self.devices = DevicePanel()
        self.tree = TreePanel()
        left = QTabWidget()
        left.addTab(self.devices, "Devices")
        left.addTab(self.tree, "Supervision")
        self.plots = PlotPanel()
        self.commands = CommandPanel()
        self.alarms = AlarmPanel()
        centre = QSplitter(Qt.Orientation.Vertical)
        centre.addWidget(self.plots)
        centre.addWidget(self.alarms)
        centre.setSizes([520, 260])
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.addWidget(self.commands)
        rl.addStretch(1)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(centre)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([330, 790, 240])
        self.setCentralWidget(split)
        self.stream_status = QLabel("stream: waiting for the device list")
        self.statusBar().addWidget(self.stream_status, 1)

        self.plots.selection_changed.connect(self._resubscribe)
        self.plots.history_wanted.connect(self._fetch_history)
        self.commands.send.connect(self._send_command)
        self.alarms.acknowledge.connect(self._acknowledge)

        self._watch = DeviceWatchWorker(client, self)
        self._watch.device.connect(self._device_changed)
        self._watch.status.connect(self.statusBar().showMessage)
        self._watch.start()

        self._alarm_watch = AlarmWatchWorker(client, self)
        self._alarm_watch.removed.connect(self.alarms.remove)
        self._alarm_watch.alarm.connect(self.alarms.apply)
        self._alarm_watch.status.connect(self.alarms.unavailable)
        self._alarm_watch.unsupported.connect(self.alarms.unavailable)
        self._alarm_watch.start()

        self._run(client.devices, self._got_devices, "devices")

        # The tree is redrawn from the snapshot each supervision watch starts with
        # and fetched again shortly after lifecycle events; a slow timer catches
        # what changes without an event (or polls, if the server has no events).
        self._tree_timer = QTimer(self)
        self._tree_timer.setInterval(TREE_REFRESH_MS)
        self._tree_timer.timeout.connect(self._refresh_tree)
        self._tree_timer.start()
        self._tree_soon = QTimer(self)
        self._tree_soon.setSingleShot(True)
        self._tree_soon.setInterval(TREE_EVENT_DELAY_MS)
        self._tree_soon.timeout.connect(self._refresh_tree)
        #: Supervision events received, newest last (for the status bar and tests).
        self.supervision_events: list[SupervisionEvent] = []
        self._sup_watch = SupervisionWatchWorker(client, self)
        self._sup_watch.tree.connect(self.tree.show_tree)
        self._sup_watch.supervision_event.connect(self._supervision_event)
        self._sup_watch.status.connect(self.statusBar().showMessage)
        self._sup_watch.unsupported.connect(self._no_supervision_events)
        self._sup_watch.start()

    # -- plumbing -----------------------------------------------------------------

    def _run(self, fn: Callable[[], Any], done: Callable[[Any], None], what: str,
             unavailable: Callable[[str], None] | None = None,
             error: Callable[[BaseException], None] | None = None) -> None:
        """Runs fn on the pool; done(result) or an error message in the GUI thread."""
        if self._closed:
            return
        task = Task(fn)
        self._tasks.add(task)
        if error is not None:
            task.signals.error.connect(error)

        def finished(result: Any, ok: bool = True) -> None:
            self._tasks.discard(task)
            if self._closed:
                return
            if ok:
                done(result)
            elif unavailable is not None:
                unavailable(result)
            else:
                self.statusBar().showMessage(f"{what}: {result}")

        task.signals.done.connect(finished)
        task.signals.failed.connect(lambda msg: finished(msg, False))
        self._pool.start(task)

    def _got_devices(self, devices: list[Device]) -> None:
        for d in devices:
            self.devices.update_device(d)
        self.commands.set_devices(devices)
        have = {(d.name, c.name) for d in devices for c in d.channels}
        wanted = self._initial_plot & have
        if self._initial_plot - have:
            missing = ", ".join(f"{d}/{c}" for d, c in sorted(self._initial_plot - have))
            self.statusBar().showMessage(f"not on this server: {missing}", 10_000)
        if wanted or not have:
            self._show_plots(devices, wanted)
        else:
            # Nothing named (or nothing the server has): the first numeric
            # channels of the server's devices.
            self._run(self.client.latest, lambda latest: self._show_plots(devices, _numeric(latest)), "latest values")

    def _show_plots(self, devices: list[Device], checked: set[tuple[str, str]]) -> None:
        self.plots.set_devices(devices, checked)
        self._resubscribe(self.plots.checked())

    def _fetch_history(self, keys: list[tuple[str, str]]) -> None:
        """Fills channels that started plotting with their recent archive."""
        if self.archives is False:
            return
        for key in keys:
            def got(batch: Batch, key: tuple[str, str] = key) -> None:
                self.archives = True
                self.plots.add_history(key, batch)

            def failed(err: BaseException) -> None:
                if isinstance(err, NoArchive):
                    self.archives = False

            def fetch(key: tuple[str, str] = key) -> Batch:
                return self.plots.sort_history(self.client.history(key[0], key[1], HISTORY_WINDOW))

            self._run(fetch, got, "history", unavailable=lambda msg: None, error=failed)

    def _device_changed(self, d: Device) -> None:
        self.devices.update_device(d)

    def _resubscribe(self, keys: list[tuple[str, str]]) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        if not keys or self._closed:
            self.stream_status.setText("stream: no channel selected")
            return
        devices = sorted({k[0] for k in keys})
        channels = sorted({k[1] for k in keys})
        # The worker sorts each batch per plotted channel in its own thread.
        self._stream = StreamWorker(self.client, devices, channels, self, prepare=self.plots.intake(keys))
        self._stream.samples.connect(self.plots.add_batch)
        self._stream.status.connect(self.stream_status.setText)
        self._stream.start()
        self.stream_status.setText(f"stream: {len(keys)} channels")

    def _refresh_tree(self) -> None:
        self._run(self.client.supervision_tree, self.tree.show_tree, "supervision tree")

    def _supervision_event(self, ev: SupervisionEvent) -> None:
        self.supervision_events.append(ev)
        del self.supervision_events[:-100]
        if ev.kind in ("EXITED", "RESTART_SCHEDULED", "LEAKED"):
            why = f": {ev.reason.splitlines()[0]}" if ev.reason else ""
            self.statusBar().showMessage(f"{ev.process} {ev.kind.lower().replace('_', ' ')}{why}", 10_000)
        if not self._tree_soon.isActive():
            self._tree_soon.start()

    def _no_supervision_events(self, why: str) -> None:
        self.statusBar().showMessage(why, 10_000)
        self._tree_timer.setInterval(TREE_POLL_MS)
        self._refresh_tree()

    def _send_command(self, device: str, command: str, args: list[str]) -> None:
        def done(reply: CommandReply) -> None:
            text = f"{device} {command} {' '.join(args)}: ok"
            if reply.reply:
                text += f" — {reply.reply}"
            self.commands.show_result(text, True)

        task_fn = lambda: self.client.send_command(device, command, *args)  # noqa: E731
        self._run(task_fn, done, "command", unavailable=lambda msg: self.commands.show_result(msg, False))

    def _acknowledge(self, device: str, channel: str, comment: str) -> None:
        """Acknowledges as the OS user, off the GUI thread; the watch then shows
        the ACKED state too (the reply is applied at once so the row updates
        even if the watch is reconnecting)."""
        def done(a: Any) -> None:
            self.alarms.apply(a)
            self.alarms.show_result(f"{device}/{channel} acknowledged by {a.acked_by}", True)

        self._run(lambda: self.client.acknowledge(device, channel, comment=comment), done, "acknowledge",
                  unavailable=lambda msg: self.alarms.show_result(msg, False))

    # -- life cycle ---------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt's name)
        """Cancels the streams from the GUI thread and waits for every worker."""
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Stops timers, streams and pending calls. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._tree_timer.stop()
        self._tree_soon.stop()
        self.plots.timer.stop()
        if self._stream is not None:
            self._stream.stop()
            self._stream = None
        self._watch.stop()
        self._alarm_watch.stop()
        self._sup_watch.stop()
        self._pool.waitForDone(int((self.client.timeout + 5) * 1000))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``switchyard-gui``."""
    ap = argparse.ArgumentParser(prog="switchyard-gui", description="Live view of a Switchyard server.")
    ap.add_argument("--address", default="127.0.0.1:7400", help="gRPC host:port (default %(default)s)")
    ap.add_argument("--token", default=None,
                    help="bearer token, if the server wants one (default: $SWITCHYARD_TOKEN, or the file "
                         "$SWITCHYARD_TOKEN_FILE names)")
    ap.add_argument("--token-file", default=None, metavar="FILE", help="read the bearer token from FILE's first line")
    ap.add_argument("--tls", action="store_true", help="use TLS with the system's root certificates")
    ap.add_argument("--tls-ca", default=None, metavar="FILE",
                    help="use TLS, trusting the CA certificate in FILE (PEM) instead of the system's roots")
    ap.add_argument("--tls-cert", default=None, metavar="FILE",
                    help="use TLS and present this client certificate (PEM; an mTLS identity), with --tls-key")
    ap.add_argument("--tls-key", default=None, metavar="FILE", help="the client certificate's private key (PEM)")
    ap.add_argument("--plot", action="append", default=[], metavar="DEVICE/CHANNEL",
                    help="channel to plot from the start (repeatable; default: the first numeric channels)")
    args = ap.parse_args(argv)
    plot = []
    for p in args.plot:
        dev, sep, ch = p.partition("/")
        if not sep or not dev or not ch:
            ap.error(f"--plot {p!r}: want DEVICE/CHANNEL")
        plot.append((dev, ch))
    token = args.token
    if args.token_file:
        try:
            token = read_token_file(args.token_file)
        except (OSError, ValueError) as err:
            ap.error(f"--token-file: {err}")
    tls = _tls(ap, args)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    with Client(args.address, token=token, tls=tls) as client:
        win = MainWindow(client, plot or None)
        win.show()
        return int(app.exec())


def _tls(ap: argparse.ArgumentParser, args: argparse.Namespace) -> TLS:
    """The client's ``tls`` from --tls, --tls-ca, --tls-cert and --tls-key: the
    files are read here, so that a missing one is a usage error, not a failed
    connection."""
    if (args.tls_cert is None) != (args.tls_key is None):
        ap.error("--tls-cert and --tls-key go together")
    if args.tls_ca is None and args.tls_cert is None:
        return True if args.tls else None
    pem: dict[str, bytes | None] = {}
    for flag, path in (("ca", args.tls_ca), ("cert", args.tls_cert), ("key", args.tls_key)):
        try:
            pem[flag] = None if path is None else Path(path).read_bytes()
        except OSError as err:
            ap.error(f"--tls-{flag}: {err}")
    return TLSConfig(ca=pem["ca"], cert=pem["cert"], key=pem["key"])


def _numeric(latest: list[Sample]) -> set[tuple[str, str]]:
    """The first DEFAULT_PLOTS numeric channels, of as few devices as possible."""
    keys = sorted(s.key for s in latest if isinstance(s.value, (int, float)) and not isinstance(s.value, bool))
    return set(keys[:DEFAULT_PLOTS])


if __name__ == "__main__":
    sys.exit(main())
