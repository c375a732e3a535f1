"""Times and durations as the client accepts them.

Wherever a method takes a point in time it accepts a timezone-aware
``datetime`` (a naive one is taken as UTC), Unix seconds (``int``/``float``)
or a ``timedelta`` relative to now: for times in the past (a history range, a
subscription's replay start) ``timedelta(minutes=10)`` and
``-timedelta(minutes=10)`` both mean ten minutes ago; for times in the future
(shelving an alarm) it is that long from now. Durations (timeouts, intervals)
are seconds or a ``timedelta``.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Union

#: A point in time: a datetime, Unix seconds, or a timedelta relative to now.
When = Union[dt.datetime, int, float, dt.timedelta]
#: A duration: seconds or a timedelta.
Duration = Union[int, float, dt.timedelta]


def to_ns(t: When, name: str, method: str, *, future: bool = False) -> int:
    """Nanoseconds since the Unix epoch of ``t``; a timedelta counts back from
    now (``future``: forward). Raises TypeError naming the argument otherwise."""
    if isinstance(t, dt.timedelta):
        delta = abs(t) if future else -abs(t)
        return time.time_ns() + delta // dt.timedelta(microseconds=1) * 1000
    if isinstance(t, dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=dt.timezone.utc)
        return int(t.timestamp() * 1e6) * 1000
    if isinstance(t, (int, float)) and not isinstance(t, bool):
        return int(t * 1e9)
    raise TypeError(f"{method} {name}: want a datetime, Unix seconds or a timedelta, got {type(t).__name__}")


def to_seconds(d: Duration, name: str, method: str) -> float:
    """Seconds of a duration given as seconds or a timedelta."""
    if isinstance(d, dt.timedelta):
        return d.total_seconds()
    if isinstance(d, (int, float)) and not isinstance(d, bool):
        return float(d)
    raise TypeError(f"{method} {name}: want seconds or a timedelta, got {type(d).__name__}")
