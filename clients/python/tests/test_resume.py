"""A subscription survives a server restart: it reconnects, never repeats a
sample, and reports precisely what the restart cost.

Today's server cannot replay (SubscribeRequest has no `since` yet), so a restart
loses the samples published while the client was away; the client must report
them as a `restart` event per channel naming the last sequence number it had and
the first one it got from the new run.
"""

import asyncio
import threading

import pytest

from switchyard import Backoff, Client

from conftest import wait_for

CHANNELS = [("psu-01", "voltage"), ("psu-02", "voltage"), ("env-01", "temp")]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_subscription_resumes_across_a_server_restart(fresh_demo, mode):
    with Client(fresh_demo.grpc_addr) as client:
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
            fresh_demo.restart()
            wait_for(lambda: min(count(True).values()) >= 10, 60, "10 samples per channel after the restart")
        finally:
            sub.cancel()
            reader.join(30)
        assert not reader.is_alive(), "subscription did not end after cancel()"

    assert sub.reconnects >= 1
    with lock:
        samples = list(received)
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
