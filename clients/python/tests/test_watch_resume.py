"""Every watch (devices, alarms, supervision) and the subscription resume after
a dropped connection and after a server restart, with both clients, and
report exactly what they could not recover: without an archive, the changes
they missed; with one (``archived_*`` fixtures), the device and alarm watches
replay what happened meanwhile, each once and in order, and only the
supervision watch (its events are not archived) reports a gap."""

import datetime as dt
import threading
import time

import pytest

from switchyard import Backoff, Client, Gap, Process, SupervisionEvent

from conftest import Proxy, questdb_query, wait_for

FAST = dict(backoff=Backoff(initial=0.05, cap=0.3))


class Reader:
    """Reads a stream in a thread, keeping (reconnects when received, item)."""

    def __init__(self, stream):
        self.stream = stream
        self.items = []
        self.error = None
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for item in self.stream:
                with self.lock:
                    self.items.append((self.stream.reconnects, item))
        except Exception as err:  # noqa: BLE001 (reported by stop())
            self.error = err

    def after(self, reconnects=1):
        with self.lock:
            return [it for r, it in self.items if r >= reconnects]

    def stop(self):
        self.stream.cancel()
        self.thread.join(30)
        assert not self.thread.is_alive(), "stream did not end after cancel()"
        assert self.error is None, repr(self.error)


def test_watches_resume_after_a_dropped_connection_and_count_what_they_missed(faulty_demo, make_client):
    proxy = Proxy(faulty_demo.grpc_addr)
    direct = Client(faulty_demo.grpc_addr)
    c = make_client(proxy.addr)
    devs = Reader(c.watch_devices("psu-1[678]", **FAST))
    alarms = Reader(c.watch_alarms("psu-17", "voltage", **FAST))
    sup = Reader(c.watch_supervision(processes="devices/psu-1[67]", **FAST))
    sub = Reader(c.subscribe("psu-16", "voltage", **FAST))
    readers = [devs, alarms, sup, sub]
    try:
        wait_for(lambda: len({d.name for _, (d, _) in devs.items}) == 3, 30, "the devices' states")
        wait_for(lambda: sup.items and sub.items, 30, "the tree and samples")
        # The alarm watch yields nothing while no alarm is active: wait until
        # its stream is up (the server said where its live part starts), or a
        # watch that first connects after the cut has no break to report.
        wait_for(lambda: alarms.stream.cursor_ns, 30, "the alarm watch's stream")
        before = {d.name: d for d in direct.devices()}
        tree_before = {p.id: p for _, p in direct.supervision_tree().walk()}

        proxy.pause()
        # While the client cannot reach the server: psu-16 loses its connection
        # and reconnects, psu-17's process is restarted, psu-17 goes into alarm.
        faulty_demo.fault("psu-16", drop="1")
        wait_for(lambda: direct.device("psu-16").reconnections > before["psu-16"].reconnections, 30,
                 "psu-16 reconnecting")
        faulty_demo.fault("psu-16", clear="1")
        wait_for(lambda: direct.device("psu-16").state == "CONNECTED", 30, "psu-16 connected again")
        direct.restart_process("devices/psu-17")
        wait_for(lambda: direct.device("psu-17").state == "CONNECTED", 30, "psu-17 connected again")
        direct.send_command("psu-17", "set_voltage", 16)
        wait_for(lambda: direct.alarms("psu-17"), 30, "psu-17's HIGH alarm")
        missed_reconnections = direct.device("psu-16").reconnections - before["psu-16"].reconnections
        tree_after = {p.id: p for _, p in direct.supervision_tree().walk()}
        missed_restarts = tree_after["psu-17"].restarts - tree_before["psu-17"].restarts
        assert missed_reconnections >= 1 and missed_restarts == 1
        time.sleep(0.5)  # the streams keep failing to reconnect meanwhile
        proxy.resume()

        gaps = {}
        for name, r in (("devices", devs), ("alarms", alarms), ("supervision", sup)):
            gaps[name] = wait_for(lambda r=r: r.stream.gaps, 30, f"the {name} watch's gap")
            assert len(gaps[name]) == 1, gaps[name]
            g = gaps[name][0]
            assert isinstance(g, Gap) and g.watch == name and g.server_restarted is False
            assert g.up_ns > g.down_ns and g.seconds >= 0.5
        # Exactly what was missed, per device and process.
        assert gaps["devices"][0].counts == {"psu-16": missed_reconnections}
        assert f"psu-16: {missed_reconnections} reconnection" in str(gaps["devices"][0])
        assert gaps["supervision"][0].counts == {"switchyard/devices/psu-17": 1}
        assert any("psu-17/voltage: became active unseen (now MINOR HIGH)" in line for line in gaps["alarms"][0].lost)
        # The state is whole again: the alarm was listed, the tree re-read
        # (the snapshot is yielded, as one was asked for), the device states
        # are current, and nothing was repeated.
        assert [t.event for t in alarms.after()][:1] == ["ACTIVE"]
        assert alarms.after()[0].alarm.condition == "HIGH"
        assert isinstance(sup.after()[0], Process)
        assert all(isinstance(x, SupervisionEvent) for x in sup.after()[1:])
        now = {d.name: d for d in direct.devices()}
        wait_for(lambda: {d.name: d for _, (d, _) in devs.items}["psu-16"].reconnections
                 == now["psu-16"].reconnections, 30, "psu-16's current state")
        # psu-17 reconnected with its restarted process; psu-18 did not change.
        assert [d for d, _ in devs.after() if d.name == "psu-17"]
        assert [d for d, _ in devs.after() if d.name == "psu-18"] == [], "psu-18's unchanged state was repeated"
        # The telemetry of the same server run: the samples published while
        # away are reported as a gap (no archive to replay from), exactly.
        events = wait_for(lambda: sub.stream.events, 30, "the subscription's sequence event")
        assert [(e.kind, e.after_reconnect) for e in events] == [("gap", True)]
        assert events[0].missing == events[0].seq - events[0].last_seq - 1 > 0
    finally:
        for r in readers:
            r.stream.cancel()
        direct.send_command("psu-17", "set_voltage", 12)
        proxy.close()
        for r in readers:
            r.stop()
        direct.close()


def test_watches_resume_across_a_server_restart(fresh_demo, make_client):
    c = make_client(fresh_demo.grpc_addr)
    devs = Reader(c.watch_devices(**FAST))
    alarms = Reader(c.watch_alarms(**FAST))
    sup = Reader(c.watch_supervision(**FAST))
    readers = [devs, alarms, sup]
    try:
        wait_for(lambda: len(devs.items) >= 24 and sup.items, 30, "the device states and the tree")
        fresh_demo.restart()
        for r in readers:
            gaps = wait_for(lambda r=r: r.stream.gaps, 60, "a gap")
            assert len(gaps) == 1 and gaps[0].server_restarted is True, gaps
            assert "the server restarted" in str(gaps[0])
            assert r.stream.last_error is not None and r.stream.last_error.code.name == "UNAVAILABLE"
        # Every device of the new run, its tree, and psu-20's alarm (raised by
        # the new run's sweep) arrive on the resumed watches.
        wait_for(lambda: {d.name for d, _ in devs.after() if d.state == "CONNECTED"} >= {"psu-01", "env-01"}, 60,
                 "device states of the new run")
        assert isinstance(sup.after()[0], Process) and sup.after()[0].id == "switchyard"
        wait_for(lambda: any(t.alarm.key == ("psu-20", "voltage") for t in alarms.after()), 60,
                 "psu-20's alarm of the new run")
    finally:
        for r in readers:
            r.stop()


# -- with an archive: what happened while away is replayed, exactly once --------

STATES = "('connecting', 'connected', 'backoff', 'stopped')"


def _us(ts: object) -> int:
    """A QuestDB timestamp (RFC 3339, UTC) in microseconds since the epoch."""
    d = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    return (d - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)


def _archived_transitions(qdb, device, channel, from_us):
    rows = questdb_query(qdb, f"SELECT ts, event FROM alarm_events WHERE device = '{device}' AND channel = "
                              f"'{channel}' AND ts >= {from_us} ORDER BY ts")
    return [(_us(ts), ev) for ts, ev in rows]


def _archived_states(qdb, device, from_us):
    rows = questdb_query(qdb, f"SELECT ts, kind FROM device_events WHERE source = '{device}' AND kind IN {STATES} "
                              f"AND ts >= {from_us} ORDER BY ts")
    return [(_us(ts), kind.upper()) for ts, kind in rows]


def _transitions(reader, key):
    """The transitions (not the watch's own ACTIVE/RESYNC/REMOVED) of an alarm
    a reader got: (µs, event)."""
    return [(t.timestamp_ns // 1000, t.event) for _, t in reader.items
            if t.alarm.key == key and t.event not in ("ACTIVE", "RESYNC", "REMOVED")]


def _states(reader, name):
    """The states of a device a reader got: (µs, state)."""
    return [(ts // 1000, d.state) for _, (d, ts) in reader.items if d.name == name]


def _same_as_archive(what, got, archived, timeout=30):
    """got equals what the archive holds (polled: QuestDB applies rows a moment
    after it acknowledged them)."""
    last = []

    def same():
        last[:] = archived()
        return got() == last

    try:
        wait_for(same, timeout, what)
    except AssertionError:
        raise AssertionError(f"{what}:\n got {got()}\nwant {last} (the archive, each once, in order)") from None


def test_watches_replay_what_happened_during_a_cut(archived_faulty_demo, make_client):
    demo, qdb = archived_faulty_demo, archived_faulty_demo.questdb
    proxy = Proxy(demo.grpc_addr)
    direct = Client(demo.grpc_addr)
    c = make_client(proxy.addr)
    devs = Reader(c.watch_devices("psu-1[67]", **FAST))
    alarms = Reader(c.watch_alarms("psu-17", "voltage", **FAST))
    sup = Reader(c.watch_supervision(processes="devices/psu-17", **FAST))
    readers = [devs, alarms, sup]
    key = ("psu-17", "voltage")
    try:
        wait_for(lambda: len({d.name for _, (d, _) in devs.items}) == 2 and sup.items, 30, "the states and the tree")
        wait_for(lambda: devs.stream.resuming and alarms.stream.resuming, 30, "the server's answer: it replays")
        start_us = alarms.stream.cursor_ns // 1000
        # Transitions before the cut, seen live.
        direct.send_command("psu-17", "set_voltage", 16)
        wait_for(lambda: ("RAISED" in [e for _, e in _transitions(alarms, key)]), 30, "psu-17's HIGH alarm")
        direct.send_command("psu-17", "set_voltage", 12)
        direct.acknowledge("psu-17", "voltage", who="tester", comment="before the cut")
        wait_for(lambda: not direct.alarms("psu-17"), 30, "psu-17's alarm cleared and acknowledged")
        wait_for(lambda: ("ACKED" in [e for _, e in _transitions(alarms, key)]), 30, "the acknowledgement, live")
        tree_before = {p.id: p for _, p in direct.supervision_tree().walk()}

        proxy.pause()
        # While the client cannot reach the server: psu-16 loses its
        # connection and reconnects; psu-17's process is restarted, goes into
        # alarm, back, and the alarm is acknowledged.
        before = direct.device("psu-16").reconnections
        demo.fault("psu-16", drop="1")
        wait_for(lambda: direct.device("psu-16").reconnections > before, 30, "psu-16 reconnecting")
        demo.fault("psu-16", clear="1")
        wait_for(lambda: direct.device("psu-16").state == "CONNECTED", 30, "psu-16 connected again")
        direct.restart_process("devices/psu-17")
        wait_for(lambda: direct.device("psu-17").state == "CONNECTED", 30, "psu-17 connected again")
        direct.send_command("psu-17", "set_voltage", 16)
        wait_for(lambda: direct.alarms("psu-17"), 30, "psu-17's HIGH alarm again")
        direct.send_command("psu-17", "set_voltage", 12)
        direct.acknowledge("psu-17", "voltage", who="tester", comment="during the cut")
        wait_for(lambda: not direct.alarms("psu-17"), 30, "psu-17's alarm cleared and acknowledged")
        time.sleep(0.5)  # the streams keep failing to reconnect meanwhile
        proxy.resume()

        wait_for(lambda: [t for t in alarms.after() if t.event == "ACKED" and t.replayed], 60,
                 "the acknowledgement, replayed")
        wait_for(lambda: {d.name for d, _ in devs.after() if d.state == "CONNECTED"} == {"psu-16", "psu-17"}, 60,
                 "both devices connected, replayed")
        # Every transition of the alarm since the watch began, each once and
        # in order: those of the cut replayed (the one the resume started
        # from dropped as the overlap), nothing reported lost.
        _same_as_archive("psu-17/voltage's transitions", lambda: _transitions(alarms, key),
                         lambda: _archived_transitions(qdb, *key, start_us + 1))
        replayed = [t for t in alarms.after() if t.replayed]
        assert {t.event for t in replayed} >= {"RAISED", "ACKED"}, replayed
        assert all(t.replayed for t in alarms.after() if t.event not in ("ACTIVE", "RESYNC", "REMOVED")
                   and t.timestamp_ns < replayed[-1].timestamp_ns)
        assert alarms.stream.overlap == 1 and alarms.stream.gaps == [], (alarms.stream.overlap, alarms.stream.gaps)
        # Every state change of each device since its first state, each once
        # and in order: psu-16's reconnection, psu-17's process restart.
        for name in ("psu-16", "psu-17"):
            first_us = _states(devs, name)[0][0]
            _same_as_archive(f"{name}'s states", lambda name=name: _states(devs, name),
                             lambda name=name, first_us=first_us: _archived_states(qdb, name, first_us))
        assert [s for _, s in _states(devs, "psu-17")][-3:] == ["STOPPED", "CONNECTING", "CONNECTED"]
        assert "BACKOFF" in [s for _, s in _states(devs, "psu-16")]
        assert devs.stream.gaps == [] and devs.stream.replayed >= 5, (devs.stream.gaps, devs.stream.replayed)
        # The supervision events are not archived: their loss is reported, exactly.
        gaps = wait_for(lambda: sup.stream.gaps, 30, "the supervision watch's gap")
        tree_after = {p.id: p for _, p in direct.supervision_tree().walk()}
        assert gaps[0].counts == {"switchyard/devices/psu-17": tree_after["psu-17"].restarts
                                  - tree_before["psu-17"].restarts}
    finally:
        for r in readers:
            r.stream.cancel()
        proxy.close()
        for r in readers:
            r.stop()
        direct.close()


def test_watches_replay_across_a_server_restart(archived_demo, make_client):
    qdb = archived_demo.questdb
    c = make_client(archived_demo.grpc_addr)
    devs = Reader(c.watch_devices("psu-0[12]", **FAST))
    alarms = Reader(c.watch_alarms("psu-20", "voltage", **FAST))
    key = ("psu-20", "voltage")
    try:
        wait_for(lambda: len({d.name for _, (d, _) in devs.items}) == 2, 30, "the device states")
        wait_for(lambda: devs.stream.resuming and alarms.stream.resuming, 30, "the server's answer: it replays")
        start_us = alarms.stream.cursor_ns // 1000
        archived_demo.restart()
        # The old run's last states (STOPPED at shutdown) and the new run's,
        # and the alarm the new run raises, each once, from the archive.
        wait_for(lambda: all(s[-1] == "CONNECTED" and "STOPPED" in s for s in
                             ([st for _, st in _states(devs, n)] for n in ("psu-01", "psu-02"))), 60,
                 "the devices stopped and connected again")
        for name in ("psu-01", "psu-02"):
            first_us = _states(devs, name)[0][0]
            _same_as_archive(f"{name}'s states", lambda name=name: _states(devs, name),
                             lambda name=name, first_us=first_us: _archived_states(qdb, name, first_us))
        assert devs.stream.gaps == [], devs.stream.gaps
        wait_for(lambda: [t for t in alarms.after() if t.replayed or t.event == "RAISED"], 60,
                 "psu-20's alarm of the new run")
        # From the cursor on, as the archive is read from it (a transition the
        # watch had before the cursor was taken is not part of the replay).
        _same_as_archive("psu-20/voltage's transitions",
                         lambda: [t for t in _transitions(alarms, key) if t[0] > start_us],
                         lambda: _archived_transitions(qdb, *key, start_us + 1))
        # What a restart cannot carry over (the alarm states the old run held)
        # is all a gap may say.
        for g in alarms.stream.gaps:
            assert g.server_restarted and all("not carried over" in x or x.endswith(("no longer on the server",
                                                                                      "(cleared unseen)"))
                                              for x in g.lost), g
    finally:
        for r in (devs, alarms):
            r.stop()
