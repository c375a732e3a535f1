"""A guard against a reference-count bug of the PySide6 6.12 bindings on Python < 3.12.

shiboken6 6.12 returns ``None`` from every void Qt method, and ``True``/``False``
from ``Signal.emit``, without taking a new reference. On Python 3.12 and later
those objects are immortal, so nothing happens; on 3.10 and 3.11 each call
drops one reference the caller never owned, and after some tens of thousands of
calls (seconds of a live plot: every redraw makes dozens) the interpreter
aborts with ``Fatal Python error: none_dealloc`` (or ``bool_dealloc``).

:func:`install` emulates 3.12's immortality for those three objects: it adds a
reference count so large (2**40) that the leak cannot exhaust it in any
realistic run time (17 years at a million calls a second), which is exactly
what the leaked references would have needed. It changes nothing on 3.12+.
The GUI package calls it on import; it is idempotent and thread-safe (it runs
under the import lock, before any Qt call).
"""

from __future__ import annotations

import ctypes
import sys

#: References added to each object: never reached by the leak in practice.
RESERVE = 1 << 40

_installed = False


def needed() -> bool:
    """True when the interpreter's None/True/False are mortal (Python < 3.12)."""
    return sys.version_info < (3, 12)


def install() -> None:
    """Adds the reserve to None, True and False on Python < 3.12. Idempotent."""
    global _installed
    if _installed or not needed() or sys.implementation.name != "cpython":
        return
    for obj in (None, True, False):
        # ob_refcnt is the first field of every CPython object (non-debug builds).
        ctypes.c_ssize_t.from_address(id(obj)).value += RESERVE
    _installed = True
