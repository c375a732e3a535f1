"""The panels of the main window: devices, supervision tree, commands (alarms: :mod:`.alarmpanel`)."""

from __future__ import annotations

import bisect
import datetime as dt

from typing import Iterator

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QTreeWidget,
    QTreeWidgetItem,
    QWidget,
)

from ..model import Device, Process

STATE_COLORS = {
    "CONNECTED": "#2e7d32",
    "CONNECTING": "#f9a825",
    "BACKOFF": "#c62828",
    "STOPPED": "#616161",
    "RUNNING": "#2e7d32",
    "STARTING": "#f9a825",
    "STOPPING": "#616161",
    "LEAKED": "#6a1b9a",
}


class DevicePanel(QTableWidget):
    """The device list: name, live state, reconnections and the current error, one
    row per device. The error column is empty while the device is CONNECTED;
    its tooltip then gives the last error, from before the reconnection."""

    COLUMNS = ("device", "state", "reconnections", "error")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.horizontalHeader().setStretchLastSection(True)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self._rows: dict[str, int] = {}
        #: The newest Device of each name, as last shown.
        self.devices: dict[str, Device] = {}

    def update_device(self, d: Device) -> None:
        """Shows the device's current state (adding its row the first time)."""
        self.devices[d.name] = d
        row = self._rows.get(d.name)
        if row is None:
            # Rows stay sorted by name whichever source (list or watch) comes first.
            row = bisect.bisect(sorted(self._rows), d.name)
            self.insertRow(row)
            self._rows = {n: r + (r >= row) for n, r in self._rows.items()}
            self._rows[d.name] = row
        tip = d.error
        if not tip and d.last_error:
            since = d.connected_since.astimezone().strftime("%H:%M:%S") if d.connected_since else "?"
            tip = f"connected since {since}; last error before that: {d.last_error}"
        cells = (d.name, d.state, str(d.reconnections), d.error)
        for col, text in enumerate(cells):
            item = self.item(row, col)
            if item is None:
                item = QTableWidgetItem()
                self.setItem(row, col, item)
            item.setText(text)
            item.setToolTip(tip)
            if col == 1:
                item.setForeground(QBrush(QColor(STATE_COLORS.get(d.state, "#000000"))))

    def state_of(self, name: str) -> str:
        """The state shown for a device ("" if not listed)."""
        d = self.devices.get(name)
        return d.state if d else ""


class TreePanel(QTreeWidget):
    """The supervision tree: every supervisor and process with its state, restarts,
    mailbox (depth; the message in progress as the tooltip), its own status (a
    device's connection) and last exit."""

    #: Column of the process's status.
    STATUS_COLUMN = 5

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setHeaderLabels(["process", "kind", "state", "restarts", "mailbox", "status", "last exit"])
        self.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    def show_tree(self, root: Process) -> None:
        """Replaces the view with a new snapshot, keeping which nodes are expanded."""
        collapsed = {self._path(it) for it in self._items() if not it.isExpanded() and it.childCount()}
        self.clear()
        self._add(self.invisibleRootItem(), root, "", collapsed)

    def _add(self, parent: QTreeWidgetItem, p: Process, prefix: str, collapsed: set[str]) -> None:
        kind = p.kind + (f" ({p.strategy})" if p.strategy else "")
        item = QTreeWidgetItem(parent, [p.id, kind, p.state, str(p.restarts), str(p.mailbox_depth), p.status,
                                        p.last_exit.splitlines()[0] if p.last_exit else ""])
        item.setForeground(2, QBrush(QColor(STATE_COLORS.get(p.state, "#000000"))))
        if p.in_progress:
            item.setToolTip(4, p.in_progress)
        path = f"{prefix}/{p.id}"
        for c in p.children:
            self._add(item, c, path, collapsed)
        item.setExpanded(path not in collapsed)

    def status_of(self, path: str) -> str | None:
        """The status shown for the process at path ("/switchyard/devices/psu-01"),
        or None if it is not shown."""
        for it in self._items():
            if self._path(it) == path:
                return str(it.text(self.STATUS_COLUMN))
        return None

    def _items(self) -> Iterator[QTreeWidgetItem]:
        stack = [self.invisibleRootItem()]
        while stack:
            it = stack.pop()
            for i in range(it.childCount()):
                child = it.child(i)
                if child is not None:
                    stack.append(child)
                    yield child

    @staticmethod
    def _path(item: QTreeWidgetItem) -> str:
        parts: list[str] = []
        cur: QTreeWidgetItem | None = item
        while cur is not None:
            parts.append(cur.text(0))
            cur = cur.parent()
        return "/" + "/".join(reversed(parts))


class CommandPanel(QGroupBox):
    """Send a named command: pick a device and a command, type the arguments
    (space-separated), press Send. Emits ``send(device, command, args)``; the
    window runs it off the GUI thread and calls :meth:`show_result`."""

    send = Signal(str, str, list)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Command", parent)
        self.device = QComboBox()
        self.command = QComboBox()
        self.args = QLineEdit()
        self.args.setPlaceholderText("arguments, e.g. 24")
        self.button = QPushButton("Send")
        self.result = QLabel("")
        self.result.setWordWrap(True)
        self.result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        form = QFormLayout(self)
        form.addRow("device", self.device)
        form.addRow("command", self.command)
        form.addRow("args", self.args)
        form.addRow(self.button)
        form.addRow(self.result)
        self._commands: dict[str, tuple[str, ...]] = {}
        self.device.currentTextChanged.connect(self._device_changed)
        self.button.clicked.connect(self._clicked)
        self.args.returnPressed.connect(self._clicked)

    def set_devices(self, devices: list[Device]) -> None:
        """Offers the devices that have commands."""
        self._commands = {d.name: d.commands for d in devices if d.commands}
        current = self.device.currentText()
        self.device.blockSignals(True)
        self.device.clear()
        self.device.addItems(sorted(self._commands))
        self.device.blockSignals(False)
        if current in self._commands:
            self.device.setCurrentText(current)
        self._device_changed(self.device.currentText())

    def _device_changed(self, name: str) -> None:
        self.command.clear()
        self.command.addItems(list(self._commands.get(name, ())))

    def _clicked(self) -> None:
        dev, cmd = self.device.currentText(), self.command.currentText()
        if not dev or not cmd:
            return
        self.button.setEnabled(False)
        self.result.setText(f"sending {cmd} to {dev} ...")
        self.send.emit(dev, cmd, self.args.text().split())

    def show_result(self, text: str, ok: bool) -> None:
        """Shows a command's reply (or error) and re-enables Send."""
        self.button.setEnabled(True)
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.result.setStyleSheet("" if ok else "color: #c62828")
        self.result.setText(f"{stamp} {text}")
