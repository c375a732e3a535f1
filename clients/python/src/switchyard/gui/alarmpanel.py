"""The alarm panel: active alarms, live, coloured by severity, with Acknowledge."""

from __future__ import annotations

import datetime as dt

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QGroupBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..alarms import SEVERITY_RANK, Alarm

#: Row colours of the alarm panel by severity (background, text).
SEVERITY_COLORS = {
    "INVALID": ("#e1bee7", "#4a148c"),
    "MAJOR": ("#ffcdd2", "#b71c1c"),
    "MINOR": ("#fff59d", "#795548"),
    "NO_ALARM": ("#e8f5e9", "#1b5e20"),  # cleared but latched, waiting for an acknowledgement
}


class AlarmPanel(QGroupBox):
    """Active alarms, live, with Acknowledge.

    :meth:`apply` takes each alarm state the watch delivers (the window feeds it
    from an :class:`~switchyard.gui.workers.AlarmWatchWorker`); rows are sorted
    most severe first and coloured by severity (the latched severity while the
    condition has cleared). Acknowledge emits ``acknowledge(device, channel,
    comment)`` for the selected row, the comment from the field below the table;
    the window runs it off the GUI thread (who: the OS user) and calls
    :meth:`show_result`.
    """

    acknowledge = Signal(str, str, str)

    COLUMNS = ("device", "channel", "severity", "condition", "value", "state", "message")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Alarms", parent)
        self.table = QTableWidget(0, len(self.COLUMNS))
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The message takes the rest of the width and wraps: a long message is
        # read in full, on as many lines as it needs (and in the tooltip).
        self.table.horizontalHeader().setSectionResizeMode(len(self.COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(True)
        self.table.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().setVisible(False)
        # Row heights follow the message column's width as the window resizes.
        self.table.horizontalHeader().sectionResized.connect(lambda *_: self.table.resizeRowsToContents())
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.comment = QLineEdit()
        self.comment.setPlaceholderText("comment for the acknowledgement")
        self.ack = QPushButton("Acknowledge")
        self.ack.clicked.connect(self._ack)
        self.comment.returnPressed.connect(self._ack)
        self.note = QLabel("")
        self.note.setWordWrap(True)
        lay = QVBoxLayout(self)
        lay.addWidget(self.table)
        lay.addWidget(self.comment)
        lay.addWidget(self.ack)
        lay.addWidget(self.note)
        #: The active alarms shown, by (device, channel).
        self.alarms: dict[tuple[str, str], Alarm] = {}

    def clear_alarms(self) -> None:
        """Forgets every row (a new watch is about to list the active alarms) and
        an error shown from the previous one."""
        self.alarms.clear()
        if self.note.styleSheet():
            self.note.setStyleSheet("")
            self.note.setText("")
        self._render()

    def apply(self, a: Alarm) -> None:
        """Shows an alarm's new state: added or updated while active (and not
        shelved), removed otherwise."""
        if a.active and not a.shelved:
            self.alarms[a.key] = a
        else:
            self.alarms.pop(a.key, None)
        self._render()

    def remove(self, key: tuple[str, str]) -> None:
        """Drops an alarm the server no longer has."""
        self.alarms.pop(key, None)
        self._render()

    def _key_of(self, row: int) -> tuple[str, str]:
        dev, ch = self.table.item(row, 0), self.table.item(row, 1)
        return (dev.text() if dev else "", ch.text() if ch else "")

    def row_of(self, device: str, channel: str) -> int:
        """The row showing an alarm, or -1."""
        for r in range(self.table.rowCount()):
            if self._key_of(r) == (device, channel):
                return r
        return -1

    def _render(self) -> None:
        selected = self._selected()
        rows = sorted(self.alarms.values(),
                      key=lambda a: (-SEVERITY_RANK.get(a.severity if a.severity != "NO_ALARM" else a.latched, 0),
                                     a.device, a.channel))
        self.table.setRowCount(len(rows))
        for r, a in enumerate(rows):
            state = "acked" if a.acked else "UNACKED"
            if a.severity == "NO_ALARM":
                state += ", cleared"
            value = "" if a.value is None else f"{a.value:g}"
            shown = a.severity if a.severity != "NO_ALARM" else a.latched
            bg, fg = SEVERITY_COLORS.get(shown, ("#ffffff", "#000000"))
            if a.acked:
                bg = "#f5f5f5"  # acknowledged: the text keeps the severity colour
            for c, text in enumerate((a.device, a.channel, shown, a.condition, value, state, a.message)):
                item = self.table.item(r, c)
                if item is None:
                    item = QTableWidgetItem()
                    self.table.setItem(r, c, item)
                item.setText(text)
                item.setToolTip(a.message)
                item.setBackground(QBrush(QColor(bg)))
                item.setForeground(QBrush(QColor(fg)))
        self.table.resizeRowsToContents()
        if selected is not None:
            r = self.row_of(*selected)
            if r >= 0:
                self.table.selectRow(r)
        self.setTitle(f"Alarms ({sum(1 for a in rows if not a.acked)} unacknowledged)")

    def _selected(self) -> tuple[str, str] | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows:
            return None
        return self._key_of(rows[0].row())

    def select(self, device: str, channel: str) -> bool:
        """Selects an alarm's row (as a click would); False if it is not shown."""
        r = self.row_of(device, channel)
        if r >= 0:
            self.table.selectRow(r)
        return r >= 0

    def unavailable(self, why: str) -> None:
        """Shows why alarms cannot be listed or acknowledged."""
        self.note.setStyleSheet("color: #c62828")
        self.note.setText(why)

    def show_result(self, text: str, ok: bool) -> None:
        """Shows the outcome of an acknowledgement and re-enables the button."""
        self.ack.setEnabled(True)
        stamp = dt.datetime.now().strftime("%H:%M:%S")
        self.note.setStyleSheet("" if ok else "color: #c62828")
        self.note.setText(f"{stamp} {text}")

    def _ack(self) -> None:
        sel = self._selected()
        if sel is None:
            self.note.setText("select an alarm to acknowledge")
            return
        self.ack.setEnabled(False)
        self.acknowledge.emit(sel[0], sel[1], self.comment.text())
