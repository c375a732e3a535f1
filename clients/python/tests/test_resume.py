"""A subscription survives a server restart: it reconnects, never repeats a
sample, and reports precisely what the restart cost.

Without an archive (``fresh_demo``) the server cannot replay, so a restart loses
the samples published while the client was away; the client must report them as
a `restart` event per channel naming the last sequence number it had and the
first one it got from the new run. With an archive (``archived_demo``, on the
test QuestDB) the client resumes with ``since_ns``: the old run's archived tail
and the new run from seq 1 arrive, with no gap and no repeat.
"""

import asyncio
import threading

import pytest

from switchyard import Backoff, Client

from conftest import wait_for

CHANNELS = [("psu-01", "voltage"), ("psu-02", "voltage"), ("env-01", "temp")]


def _run_across_a_restart(demo, mode):
    """Subscribes to CHANNELS, restarts the demo after 10 samples per channel and
    returns (subscription, [(reconnects when received, sample)]) once 10 more per
    channel arrived after the reconnect."""
    with Client(demo.grpc_addr) as client:
        sub = client.subscribe(["psu-01", "psu-02", "env-01"], ["voltage", "temp"],
                               backoff=Backoff(initial=0.1, cap=0.5))
        received = []  # (reconnects when received, sample)
        lock = threading.Lock()

        def read():
            for batch in sub:
                with lock:
                    received.extend((batch.reconnects, s) for s in batch.samples)

        async def aread():
            async for batch in sub:
                with lock:
                    received.extend((batch.reconnects, s) for s in batch.samples)

        if mode == "async":
            read = lambda: asyncio.run(aread())  # noqa: E731  (cancel() reaches the loop thread-safely)

        reader = threading.Thread(target=read)
        reader.start()
        try:
            def count(after_restart):
                with lock:
                    return {k: sum(1 for r, s in received if s.key == k and (r > 0) == after_restart) for k in CHANNELS}

            wait_for(lambda: min(count(False).values()) >= 10, 60, "10 samples per channel before the restart")
            demo.restart()
            wait_for(lambda: min(count(True).values()) >= 10, 60, "10 samples per channel after the restart")
        finally:
            sub.cancel()
            reader.join(30)
        assert not reader.is_alive(), "subscription did not end after cancel()"

    assert sub.reconnects >= 1
    with lock:
        return sub, list(received)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_subscription_resumes_across_a_server_restart(fresh_demo, mode):
    sub, samples = _run_across_a_restart(fresh_demo, mode)
    assert not sub.resuming  # the server said it does not archive
    for key in CHANNELS:
        before = [s.seq for r, s in samples if s.key == key and r == 0]
        after = [s.seq for r, s in samples if s.key == key and r > 0]
        # Within each run of the server: consecutive, no repeat, no gap.
        assert before == list(range(before[0], before[0] + len(before))), f"{key} before: {before}"
        assert after == list(range(after[0], after[0] + len(after))), f"{key} after: {after}"
        # The break is reported exactly once, precisely.
        events = [e for e in sub.events if (e.device, e.channel) == key]
        assert len(events) == 1, f"{key}: {events}"
        ev = events[0]
        assert ev.kind == "restart" and ev.after_reconnect
        assert (ev.last_seq, ev.seq) == (before[-1], after[0])
        assert f"seq started again at {after[0]} after {before[-1]}" in str(ev)
    # Nothing else was reported (no spurious gap or repeat).
    assert {(e.device, e.channel) for e in sub.events} == set(CHANNELS)
    assert len(sub.events) == len(CHANNELS)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_subscription_resumes_from_the_archive_without_gap_or_repeat(archived_demo, mode):
    sub, samples = _run_across_a_restart(archived_demo, mode)
    assert sub.resuming
    for key in CHANNELS:
        got = [(r, s) for r, s in samples if s.key == key]
        # One stream in time order; no (seq, timestamp) twice.
        stamps = [s.timestamp_ns for _, s in got]
        assert stamps == sorted(set(stamps)), f"{key}: timestamps not strictly increasing"
        before = [s.seq for r, s in got if r == 0]
        after = [s.seq for r, s in got if r > 0]
        assert before == list(range(before[0], before[0] + len(before))), f"{key} before: {before}"
        # After the reconnect: the rest of the old run from the archive, then the
        # new run from its first sample.
        k = next(i for i, q in enumerate(after) if i > 0 and q <= after[i - 1]) if 1 in after[1:] else 0
        tail, new_run = after[:k], after[k:]
        assert tail == list(range(before[-1] + 1, before[-1] + 1 + len(tail))), f"{key} old tail: {tail}"
        assert new_run == list(range(1, 1 + len(new_run))), f"{key} new run: {new_run[:20]}"
        # The run change is reported once, as a resumed restart that lost nothing.
        events = [e for e in sub.events if (e.device, e.channel) == key]
        assert len(events) == 1, f"{key}: {events}"
        ev = events[0]
        assert (ev.kind, ev.resumed, ev.seq) == ("restart", True, 1)
        assert ev.last_seq == (tail[-1] if tail else before[-1])
        assert "resumed from the archive" in str(ev) and "not received" not in str(ev)
    assert len(sub.events) == len(CHANNELS), sub.events
