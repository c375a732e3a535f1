"""History out of the archive through switchyard.Client: a demo of the test's own
archives to the test QuestDB (SWITCHYARD_TEST_QUESTDB)."""

import time

import pytest

import switchyard
from switchyard import Client
from switchyard.client import Bucket

from conftest import wait_for


def test_history_raw_and_downsampled(archived_demo):
    t0 = time.time() - 1
    with Client(archived_demo.grpc_addr) as c:
        # The archive is written asynchronously (spool, then QuestDB's WAL): poll.
        rows = wait_for(lambda: (h := c.history("psu-01", "voltage", t0)) and len(h) >= 20 and h, 60,
                        "20 archived psu-01 voltage samples")
        assert not rows.truncated
        assert all(s.key == ("psu-01", "voltage") and s.quality == "GOOD" for s in rows)
        assert all(abs(s.value - 12.0) < 1.0 for s in rows)
        # In time order, and (one server run) consecutive sequence numbers.
        assert [s.timestamp_ns for s in rows] == sorted(s.timestamp_ns for s in rows)
        assert [s.seq for s in rows] == list(range(rows[0].seq, rows[0].seq + len(rows)))
        assert all(s.timestamp_ns % 1000 == 0 for s in rows)  # the archive keeps microseconds

        page = c.history("psu-01", "voltage", t0, limit=5)
        assert page == rows[:5] and page.truncated
        nxt = c.history("psu-01", "voltage", start_ns=page.next_start_ns, limit=5)
        assert nxt[0].seq == page[-1].seq + 1

        buckets = c.history_buckets("psu-01", "voltage", t0, interval=1, aggregate="count")
        assert buckets and all(isinstance(b, Bucket) for b in buckets)
        assert sum(b.count for b in buckets) >= len(rows)
        avg = c.history_buckets("psu-01", "voltage", t0, time.time(), interval=1)
        assert all(abs(b.value - 12.0) < 1.0 for b in avg)

        with pytest.raises(ValueError, match="aggregate: want avg"):
            c.history_buckets("psu-01", "voltage", t0, interval=1, aggregate="median")
        with pytest.raises(TypeError, match="history start"):
            c.history("psu-01", "voltage", "yesterday")


def test_history_without_an_archive_is_unavailable(demo):
    with Client(demo.grpc_addr) as c:
        with pytest.raises(switchyard.Unavailable, match="does not archive"):
            c.history("psu-01", "voltage", time.time() - 60)
