"""SeqTracker and Backoff: pure logic, no server."""

import random

import pytest

from switchyard import Backoff, Sample, SeqTracker


def s(seq, ts=None, dev="psu-01", ch="voltage"):
    return Sample(dev, ch, ts if ts is not None else seq * 100, seq, 1.0, "GOOD")


def test_in_order_delivers_everything_without_events():
    t = SeqTracker()
    out, ev = t.check([s(1), s(2), s(3), s(1, dev="psu-02")])
    assert [x.seq for x in out] == [1, 2, 3, 1]
    assert ev == []
    assert t.last_seqs() == {("psu-01", "voltage"): 3, ("psu-02", "voltage"): 1}


def test_gap_is_reported_exactly_and_delivered():
    t = SeqTracker()
    t.check([s(4)])
    out, ev = t.check([s(8), s(9)])
    assert [x.seq for x in out] == [8, 9]
    assert len(ev) == 1 and ev[0].kind == "gap"
    assert (ev[0].last_seq, ev[0].seq, ev[0].missing) == (4, 8, 3)
    assert str(ev[0]) == "psu-01/voltage: gap: seq 5..7 (3 samples) not received"


def test_repeat_is_dropped_and_reported():
    t = SeqTracker()
    t.check([s(1), s(2), s(3)])
    t.reconnected()
    out, ev = t.check([s(2), s(3), s(4)])
    assert [x.seq for x in out] == [4]
    assert [(e.kind, e.seq, e.after_reconnect) for e in ev] == [("repeat", 2, True), ("repeat", 3, False)]


def test_restart_known_from_the_server():
    t = SeqTracker()
    t.check([s(50)])
    t.reconnected(server_restarted=True)
    out, ev = t.check([s(70, ts=10_000), s(71, ts=10_100)])
    assert [x.seq for x in out] == [70, 71]
    assert [(e.kind, e.last_seq, e.seq, e.after_reconnect) for e in ev] == [("restart", 50, 70, True)]
    assert ev[0].missing is None
    assert "seq started again at 70 after 50" in str(ev[0])


def test_restart_guessed_from_timestamps():
    t = SeqTracker()
    t.check([s(50)])
    t.reconnected()
    out, ev = t.check([s(3, ts=99_999)])
    assert [x.seq for x in out] == [3]
    assert [(e.kind, e.last_seq, e.seq) for e in ev] == [("restart", 50, 3)]


def test_backoff_doubles_to_the_cap_with_jitter_and_resets():
    b = Backoff(initial=0.1, cap=0.5, jitter=0.2, rng=random.Random(1))
    d = [b.next() for _ in range(5)]
    for got, base in zip(d, [0.1, 0.2, 0.4, 0.5, 0.5]):
        assert base * 0.8 <= got <= base
    b.reset()
    assert b.next() <= 0.1


def test_resumed_replay_overlap_is_dropped_and_counted_not_reported():
    t = SeqTracker()
    t.check([s(1), s(2), s(3), s(1, dev="psu-02")])
    t.reconnected(server_restarted=True, resumed=True)  # restarted is left to the timestamps
    # The replay starts at the oldest last timestamp: psu-01 2..3 and psu-02 1 again.
    out, ev = t.check([s(2), s(3), s(1, dev="psu-02"), s(4), s(2, dev="psu-02")])
    assert [(x.device, x.seq) for x in out] == [("psu-01", 4), ("psu-02", 2)]
    assert ev == [] and t.overlap == 3
    assert t.last_timestamps() == {("psu-01", "voltage"): 400, ("psu-02", "voltage"): 200}


def test_resumed_restart_is_reported_without_claiming_a_loss():
    t = SeqTracker()
    t.check([s(5), s(6)])
    t.reconnected(server_restarted=True, resumed=True)
    # The old run's archived tail (7), then the new run from 1 with newer timestamps.
    out, ev = t.check([s(6), s(7), s(1, ts=10_000), s(2, ts=10_100)])
    assert [x.seq for x in out] == [7, 1, 2]
    assert len(ev) == 1 and (ev[0].kind, ev[0].resumed, ev[0].last_seq, ev[0].seq) == ("restart", True, 7, 1)
    assert ev[0].after_reconnect is False  # 7 was the channel's first new sample after the reconnect
    assert "resumed from the archive" in str(ev[0]) and "not received" not in str(ev[0])
    # A new run whose first samples the archive did not hold says so.
    t.reconnected(resumed=True)
    _, ev = t.check([s(2, ts=20_000)])
    assert "samples before 2 of this run not received" in str(ev[0])
