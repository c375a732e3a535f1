"""Capped, jittered exponential backoff for reconnecting streams."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays between reconnect attempts: ``initial`` doubling (``factor``) up to
    ``cap`` seconds, each multiplied by a random factor in [1 - jitter, 1].
    :meth:`reset` after a success starts again from ``initial``. ``rng`` can be
    given a seeded ``random.Random`` to make the delays deterministic in tests.
    """

    initial: float = 0.1
    cap: float = 5.0
    factor: float = 2.0
    jitter: float = 0.2
    rng: random.Random = field(default_factory=random.Random)
    _next: float = 0.0

    def __post_init__(self) -> None:
        self._next = self.initial

    def next(self) -> float:
        """Returns the delay before the next attempt and grows the one after it."""
        d = self._next
        self._next = min(self.cap, self._next * self.factor)
        return d * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Starts again from ``initial`` (call after a successful connection)."""
        self._next = self.initial
