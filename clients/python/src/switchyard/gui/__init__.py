"""The Switchyard telemetry GUI (PySide6 + pyqtgraph): ``switchyard-gui``.

A starting point for lab GUIs: a device list with live states, live plots of
chosen channels, a command panel, an alarm panel and the supervision tree.

Threading contract: the Qt event loop never waits on the network and never
does long work. Streams (telemetry, device states, alarms, supervision events)
are read in worker QThreads (:mod:`.workers`) that hand plain values to the GUI
thread with queued signals (telemetry already sorted per plotted channel into
numpy arrays); unary calls run on a thread pool and report back the same way;
plots are drawn from a timer, a few channels per tick and one repaint per frame,
not per sample (:mod:`.plots`). Closing the window cancels every stream from the
GUI thread and waits for the workers to end.

Install with ``pip install switchyard-client[gui]``.
"""

try:
    import pyqtgraph  # noqa: F401
    import PySide6  # noqa: F401
except ImportError as err:  # pragma: no cover - depends on the install
    raise ImportError(
        f"switchyard.gui needs the [gui] extra: pip install 'switchyard-client[gui]' ({err})"
    ) from err

from . import refguard  # noqa: E402

# Before any Qt call: see refguard (a reference-count bug of PySide6 6.12 that
# aborts Python 3.10/3.11 after seconds of live plotting).
refguard.install()

from .app import MainWindow, main  # noqa: E402

__all__ = ["MainWindow", "main"]
