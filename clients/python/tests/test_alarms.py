"""Alarms and supervision events through switchyard.Client against the demo.

The demo sweeps psu-20's set-point 1-19 V against limits 2/4/15/17, so psu-20's
voltage alarm is raised within seconds of the start and stays latched until
someone acknowledges it: these tests only read it (the GUI test acknowledges
it). psu-11 and psu-12 are this file's own: pushed out of their limits here and
put back at 12 V.
"""

import threading
import time

import pytest

import switchyard
from switchyard import AlarmLimits, Client, Process, SupervisionEvent, Threshold

from conftest import wait_for


@pytest.fixture
def client(demo, make_client):
    return make_client(demo.grpc_addr)


class Collector:
    """Reads an iterator with cancel() in a thread and keeps what it yields."""

    def __init__(self, watch):
        self.watch = watch
        self.items = []
        self.error = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def _run(self):
        try:
            for item in self.watch:
                with self._lock:
                    self.items.append(item)
        except Exception as err:  # reported by stop()
            self.error = err

    def snapshot(self):
        with self._lock:
            return list(self.items)

    def stop(self):
        self.watch.cancel()
        self._thread.join(30)
        assert not self._thread.is_alive(), "watch did not end after cancel()"
        assert self.error is None, self.error


def test_psu20_alarm_is_listed_with_its_limits(client):
    alarms = wait_for(lambda: [a for a in client.alarms() if a.key == ("psu-20", "voltage")], 60,
                      "psu-20's voltage alarm")
    a = alarms[0]
    assert a.active and a.group == "power"
    assert a.latched in ("MINOR", "MAJOR")
    assert a.limits.lolo == Threshold(2.0, "MAJOR") and a.limits.hihi == Threshold(17.0, "MAJOR")
    assert (a.limits.low.value, a.limits.high.value, a.limits.delay_s) == (4.0, 15.0, 1.0)
    # Filters are globs; other groups do not match.
    assert [x.key for x in client.alarms("psu-2*", "volt*")] == [("psu-20", "voltage")]
    assert not [x for x in client.alarms(groups="vacuum") if x.device == "psu-20"]
    # The same state, active or not, from GetAlarmLimits.
    assert client.alarm("psu-20", "voltage").limits == a.limits


def test_watch_starts_with_the_active_alarms(client):
    watch = client.watch_alarms("psu-20")
    got = Collector(watch)
    try:
        first = wait_for(lambda: got.snapshot(), 30, "the active alarms")[0]
    finally:
        got.stop()
    assert first.event == "ACTIVE" and first.alarm.key == ("psu-20", "voltage")


def test_acknowledge_and_shelve_a_raised_alarm(client):
    dev = "psu-12"
    watch = Collector(client.watch_alarms(dev, "voltage", include_active=False))
    try:
        client.send_command(dev, "set_voltage", 16)  # above HIGH 15, below HIHI 20
        a = wait_for(lambda: [a for a in client.alarms(dev) if a.condition == "HIGH"], 30, "psu-12 HIGH")[0]
        assert (a.severity, a.latched, a.acked) == ("MINOR", "MINOR", False)
        assert "HIGH 15" in a.message and a.value > 15

        a = client.acknowledge(dev, "voltage", who="pytest", comment="seen it")
        assert a.acked and (a.acked_by, a.ack_comment) == ("pytest", "seen it") and a.acked_at_ns > 0
        assert client.acknowledge(dev, "voltage", who="pytest").acked  # twice is harmless
        assert client.alarms(dev)[0].acked  # still in alarm, so still listed

        a = client.shelve(dev, "voltage", 3600 + time.time(), who="pytest", comment="maintenance")
        assert a.shelved and a.shelved_by == "pytest"
        assert client.alarms(dev) == []
        assert [x.key for x in client.alarms(dev, include_shelved=True)] == [(dev, "voltage")]
        assert not client.shelve(dev, "voltage", None, who="pytest").shelved
        assert client.alarms(dev)

        client.send_command(dev, "set_voltage", 12)
        # Cleared and acknowledged: no longer active.
        wait_for(lambda: client.alarms(dev) == [], 30, "psu-12 cleared")
        events = wait_for(lambda: [t.event for t in watch.snapshot()][-1:] == ["CLEARED"]
                          and [t.event for t in watch.snapshot()], 30, "the CLEARED transition")
    finally:
        client.send_command(dev, "set_voltage", 12)
        watch.stop()
    assert events == ["RAISED", "ACKED", "SHELVED", "UNSHELVED", "CLEARED"], events
    acked = watch.items[1]
    assert (acked.who, acked.comment, acked.alarm.acked) == ("pytest", "seen it", True)
    assert watch.items[0].alarm.condition == "HIGH" and watch.items[-1].alarm.severity == "NO_ALARM"


def test_alarm_errors_name_what_was_wrong(client):
    with pytest.raises(switchyard.NotFound, match="psu-12/nope"):
        client.acknowledge("psu-12", "nope", who="pytest")
    with pytest.raises(switchyard.InvalidArgument, match="who: must be at most 128 characters"):
        client.acknowledge("psu-12", "voltage", who="x" * 200)
    with pytest.raises(switchyard.InvalidArgument, match="psu-03/voltage is not in alarm"):
        client.acknowledge("psu-03", "voltage", who="pytest")
    with pytest.raises(switchyard.InvalidArgument, match="until_ns: must be in the future"):
        client.shelve("psu-12", "voltage", 5, who="pytest")
    with pytest.raises(switchyard.InvalidArgument, match=r"selector|filter\.devices"):
        client.alarms("psu-[")
    with pytest.raises(ValueError, match="high.severity: unknown severity 'LOUD'"):
        client.set_alarm_limits("psu-11", "voltage", AlarmLimits(high=Threshold(15, "LOUD")), who="pytest")


def test_set_alarm_limits_at_run_time(client):
    dev = "psu-11"
    before = client.alarm(dev, "voltage").limits
    try:
        a = client.set_alarm_limits(dev, "voltage", AlarmLimits(high=Threshold(11.0, "MINOR"), hihi=Threshold(30.0, "")),
                                    who="pytest", comment="tighter")
        assert a.limits.high == Threshold(11.0, "MINOR") and a.limits.hihi == Threshold(30.0, "MAJOR")
        wait_for(lambda: [x for x in client.alarms(dev) if x.condition == "HIGH"], 30, "psu-11 HIGH at 12 V")
        with pytest.raises(switchyard.InvalidArgument, match="high: must be >= low"):
            client.set_alarm_limits(dev, "voltage", AlarmLimits(low=Threshold(13.0, ""), high=Threshold(11.0, "")),
                                    who="pytest")
    finally:
        client.set_alarm_limits(dev, "voltage", before, who="pytest", comment="restore")
        wait_for(lambda: [x for x in client.alarms(dev) if x.severity == "NO_ALARM"] or not client.alarms(dev),
                 30, "psu-11 back within its limits")
        if client.alarms(dev):
            client.acknowledge(dev, "voltage", who="pytest")
    assert client.alarms(dev) == []
    assert client.alarm(dev, "voltage").limits == before


def test_watch_supervision_starts_with_the_tree(client):
    watch = Collector(client.watch_supervision())
    try:
        first = wait_for(lambda: watch.snapshot(), 30, "the supervision snapshot")[0]
    finally:
        watch.stop()
    assert isinstance(first, Process) and first.id == "switchyard" and first.state == "RUNNING"
    assert all(isinstance(x, SupervisionEvent) for x in watch.items[1:])
    # Without a snapshot the stream waits for events; cancel still ends it.
    quiet = Collector(client.watch_supervision(include_snapshot=False))
    time.sleep(0.5)
    quiet.stop()
    assert all(isinstance(x, SupervisionEvent) for x in quiet.items)
