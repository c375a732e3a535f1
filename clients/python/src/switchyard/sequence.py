"""Sequence bookkeeping for subscriptions: no sample repeated, every gap reported.

The server numbers the samples of each channel 1, 2, 3, ... within one run of the
server. :class:`SeqTracker` keeps the last sequence number delivered per channel
and classifies every incoming sample:

* the next number: delivered;
* a number at or below the last one, with a timestamp not newer than the last
  delivered sample's: a **repeat** (for example an overlapping replay after a
  reconnect). It is not delivered and is reported as a ``repeat`` event;
* the first sample of a channel after the stream reconnected to a server that
  restarted meanwhile (the subscription tells the tracker, see
  :meth:`SeqTracker.reconnected`), or, when that is unknown, a number at or below
  the last one with a newer timestamp: the server's counter started again.
  Delivered, and reported as a ``restart`` event: the rest of the old run after
  ``last_seq`` and the new run's samples 1..``seq``-1 were not received;
* a number beyond the next one: a **gap**. Delivered, and reported as a ``gap``
  event naming exactly which numbers are missing.

After a reconnect that **resumed** from the server's archive (``since_ns``: the
server replays from the oldest last timestamp, then goes live), samples not
newer than a channel's last delivered one are the replay's expected overlap:
not delivered, counted in :attr:`SeqTracker.overlap`. A server restart then shows
as the sequence falling back to 1 with a newer timestamp, after the old run's
archived tail: a ``restart`` event with ``resumed`` set, which loses nothing the
archive holds.

Nothing is hidden: every repeat, gap and restart becomes a :class:`SeqEvent`.
A tracker is used by one subscription from one thread; it is not thread-safe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .model import Sample


@dataclass(frozen=True)
class SeqEvent:
    """A break in a channel's sequence that the client saw.

    ``kind`` is ``"gap"``, ``"repeat"`` or ``"restart"``; ``last_seq`` is the last
    number delivered before, ``seq`` the number that arrived; ``after_reconnect``
    says whether it was the first sample of the channel after the stream
    reconnected; ``resumed`` whether the stream had resumed from the server's
    archive (``since_ns``), so the samples the old run archived came first.
    """

    kind: str
    device: str
    channel: str
    last_seq: int
    seq: int
    after_reconnect: bool = False
    resumed: bool = False

    @property
    def missing(self) -> int | None:
        """How many samples were not received: exact for a gap, 0 for a repeat,
        None for a restart (the old run's tail is unknown; of the new run,
        ``seq - 1`` samples were missed)."""
        if self.kind == "gap":
            return self.seq - self.last_seq - 1
        if self.kind == "repeat":
            return 0
        return None

    def __str__(self) -> str:
        where = f"{self.device}/{self.channel}"
        why = " after a reconnect" if self.after_reconnect else ""
        if self.kind == "gap":
            return (f"{where}: gap{why}: seq {self.last_seq + 1}..{self.seq - 1} "
                    f"({self.missing} samples) not received")
        if self.kind == "repeat":
            return f"{where}: repeat{why}: seq {self.seq} again after {self.last_seq}; dropped"
        head = f"{where}: server restarted{why}: seq started again at {self.seq} after {self.last_seq}; "
        if self.resumed:
            head += f"resumed from the archive, so the previous run's archived samples after {self.last_seq} came first"
            if self.seq > 1:
                head += f"; samples before {self.seq} of this run not received"
            return head
        return head + (f"samples after {self.last_seq} of the previous run and before {self.seq} "
                       f"of this run not received")


class SeqTracker:
    """Per-channel last sequence numbers of what a subscription delivered."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str], tuple[int, int]] = {}
        self._reconnected: set[tuple[str, str]] = set()
        self._restarted: set[tuple[str, str]] = set()
        self._resumed = False
        #: Samples not delivered because the resume's replay overlapped what had
        #: been delivered already (expected, so not reported as repeats).
        self.overlap = 0

    def last_timestamps(self) -> dict[tuple[str, str], int]:
        """The timestamp (ns) of the last delivered sample of every channel seen so far."""
        return {k: ts for k, (_, ts) in self._last.items()}

    def last_seqs(self) -> dict[tuple[str, str], int]:
        """The last delivered sequence number of every channel seen so far."""
        return {k: seq for k, (seq, _) in self._last.items()}

    def reconnected(self, server_restarted: bool | None = None, resumed: bool = False) -> None:
        """Notes that the stream was re-established: the next sample of each known
        channel is flagged ``after_reconnect`` in any event it causes. With
        ``server_restarted=True`` that sample starts a new run (a ``restart``
        event); with None (unknown) the timestamps decide. With ``resumed`` the
        stream replays the archive from the oldest last timestamp: samples at or
        before a channel's last delivered one are the replay's overlap (counted in
        :attr:`overlap`, not reported), and a restart shows as a sequence number
        that falls back with a newer timestamp (the old run's archived tail comes
        first), so ``server_restarted`` is ignored."""
        self._reconnected = set(self._last)
        self._resumed = resumed
        self._restarted = set(self._last) if server_restarted and not resumed else set()

    def check(self, samples: Iterable[Sample]) -> tuple[list[Sample], list[SeqEvent]]:
        """Returns the samples to deliver (repeats removed) and the events found."""
        out: list[Sample] = []
        events: list[SeqEvent] = []
        for s in samples:
            key = (s.device, s.channel)
            prev = self._last.get(key)
            after = key in self._reconnected
            self._reconnected.discard(key)
            if key in self._restarted and prev is not None:  # (restarted keys are all known)
                self._restarted.discard(key)
                events.append(SeqEvent("restart", s.device, s.channel, prev[0], s.seq, after))
            elif prev is not None:
                last_seq, last_ts = prev
                if s.timestamp_ns <= last_ts and (self._resumed or s.seq <= last_seq):
                    if self._resumed:
                        self.overlap += 1  # the replay read it again: expected
                        if after:
                            self._reconnected.add(key)  # still waiting for its first new sample
                    else:
                        events.append(SeqEvent("repeat", s.device, s.channel, last_seq, s.seq, after))
                    continue
                if s.seq <= last_seq:
                    events.append(SeqEvent("restart", s.device, s.channel, last_seq, s.seq, after, self._resumed))
                elif s.seq != last_seq + 1:
                    events.append(SeqEvent("gap", s.device, s.channel, last_seq, s.seq, after, self._resumed))
            self._last[key] = (s.seq, s.timestamp_ns)
            out.append(s)
        return out, events
