"""switchyard.Client end to end against a running `switchyard demo`."""

import asyncio
import datetime as dt

import pytest

import switchyard
from switchyard import Client

from conftest import wait_for


@pytest.fixture
def client(demo, make_client):
    return make_client(demo.grpc_addr)


def test_devices(client):
    devices = client.devices()
    assert len(devices) == 24
    psu = next(d for d in devices if d.name == "psu-01")
    assert psu.state == "CONNECTED"
    assert psu.driver == "scpi"
    assert "set_voltage" in psu.commands
    assert [c.name for c in psu.channels] == ["voltage", "current", "setpoint", "output"]
    assert psu.channels[0].unit == "V" and psu.channels[0].period_s == pytest.approx(0.1)
    assert isinstance(psu.connected_since, dt.datetime)
    assert client.device("psu-01").name == "psu-01"


def test_unknown_device_is_not_found_with_the_server_message(client):
    with pytest.raises(switchyard.NotFound) as exc:
        client.device("nope")
    assert "nope" in str(exc.value)
    assert exc.value.method == "DeviceService/GetDevice"
    assert isinstance(exc.value, LookupError)


def test_command_changes_the_setpoint(client):
    reply = client.send_command("psu-13", "set_voltage", 17.5)
    assert reply.reply == ""
    got = wait_for(lambda: [s for s in client.latest("psu-13", "setpoint") if s.value == 17.5],
                   what="psu-13 setpoint 17.5")
    assert got[0].quality == "GOOD" and got[0].good
    ident = client.send_command("psu-13", "identify")
    assert ident.reply.startswith("Switchyard,SIM-PSU")


def test_bad_command_argument_is_invalid_argument(client):
    with pytest.raises(switchyard.InvalidArgument) as exc:
        client.send_command("psu-13", "set_voltage", 99)
    assert "above the maximum 60" in exc.value.message
    assert isinstance(exc.value, ValueError)


def test_latest_returns_plain_values(client):
    samples = client.latest("psu-0[12]", ["voltage", "output"])
    keys = {s.key for s in samples}
    assert keys == {("psu-01", "voltage"), ("psu-01", "output"), ("psu-02", "voltage"), ("psu-02", "output")}
    for s in samples:
        assert isinstance(s.seq, int) and s.seq >= 1
        assert isinstance(s.value, bool if s.channel == "output" else float)
        assert s.time.tzinfo is dt.timezone.utc


def _check_consecutive(samples):
    last = {}
    for s in samples:
        if s.key in last:
            assert s.seq == last[s.key] + 1, f"{s.key}: seq {s.seq} after {last[s.key]}"
        last[s.key] = s.seq


def test_subscribe_sync(client):
    got = []
    with client.subscribe("psu-0*", "voltage") as sub:
        for batch in sub:
            got.extend(batch.samples)
            assert batch.events == []
            if len(got) >= 60:
                break
    assert {s.channel for s in got} == {"voltage"}
    assert {s.device for s in got} <= {f"psu-0{i}" for i in range(1, 10)}
    _check_consecutive(got)
    assert sub.events == [] and sub.reconnects == 0


@pytest.mark.parametrize("kind", ["Client", "AsyncClient"])
def test_subscribe_async(demo, kind):
    # The asyncio form of the README: an AsyncClient on the running loop, or a
    # blocking Client's subscription iterated with async for.
    async def collect():
        got = []
        if kind == "AsyncClient":
            async with switchyard.AsyncClient(demo.grpc_addr) as sy:
                assert len(await sy.devices()) == 24
                sub = sy.subscribe(["env-01"], ["temp", "pressure"])
                async for batch in sub:
                    got.extend(batch.samples)
                    if len(got) >= 20:
                        sub.cancel()
                with pytest.raises(TypeError, match="async for"):
                    iter(sy.subscribe("env-01")).__next__()
        else:
            with Client(demo.grpc_addr) as c:
                sub = c.subscribe(["env-01"], ["temp", "pressure"])
                async for batch in sub:
                    got.extend(batch.samples)
                    if len(got) >= 20:
                        sub.cancel()
        return got, sub

    got, sub = asyncio.run(asyncio.wait_for(collect(), 60))
    assert len(got) >= 20
    assert {s.key for s in got} <= {("env-01", "temp"), ("env-01", "pressure")}
    _check_consecutive(got)
    assert sub.events == []


def test_subscribe_bad_selector_raises_invalid_argument(client):
    with pytest.raises(switchyard.InvalidArgument, match=r"selector\.devices"):
        for _ in client.subscribe("psu-[", "voltage"):
            pass


def test_supervision_tree_and_device_watch(client):
    root = client.supervision_tree()
    ids = [p.id for _, p in root.walk()]
    assert root.state == "RUNNING"
    assert "psu-01" in " ".join(ids)
    with client.watch_devices("psu-0[12]") as watch:
        seen = {}
        for dev, ts in watch:
            seen[dev.name] = dev.state
            assert ts > 0
            if len(seen) == 2:
                break
    assert seen == {"psu-01": "CONNECTED", "psu-02": "CONNECTED"}


def test_token_is_sent_and_tls_argument_checked(demo):
    with Client(demo.grpc_addr, token="secret") as c:
        assert len(c.devices()) == 24  # today's server accepts any token
    with pytest.raises(TypeError, match="Client tls"):
        Client(demo.grpc_addr, tls="yes")


def test_abort_command_on_an_idle_device_and_unknown_device(client):
    # The abort of a command in progress (ABORTED for its caller, over real
    # sockets) is tested in Go; here: the call, its answer and its errors.
    assert client.abort_command("psu-01", "nothing running") == ""
    with pytest.raises(switchyard.NotFound, match="no such device"):
        client.abort_command("nope")
    with pytest.raises(switchyard.InvalidArgument, match="reason: must be one line"):
        client.abort_command("psu-01", "a\nb")


def test_watch_supervision_streams_status_of_a_failing_instrument(demo, client):
    # psu-12 stops answering for a moment (hang, not refuse: a refused port may be
    # taken by someone else before it is listened on again): its process stays up
    # and says so in STATUS events; the filter keeps every other process and kind out.
    with client.watch_supervision(include_snapshot=False, processes="devices/psu-12", kinds=["status"]) as watch:
        demo.fault("psu-12", hang="1", drop="1")
        try:
            reasons = []
            for ev in watch:
                assert (ev.path, ev.child, ev.kind) == ("switchyard/devices", "psu-12", "STATUS"), ev
                reasons.append(ev.reason)
                if ev.reason.startswith("backoff: ") and "next attempt" in ev.reason:
                    break
        finally:
            demo.fault("psu-12", clear="1")
        for ev in watch:
            assert (ev.child, ev.kind) == ("psu-12", "STATUS"), ev
            if ev.reason.startswith("connected"):
                break
    node = next(p for _, p in client.supervision_tree().walk() if p.id == "psu-12")
    assert node.state == "RUNNING" and node.restarts == 0
    with pytest.raises(switchyard.InvalidArgument, match="unknown supervision event kind"):
        client.watch_supervision(kinds="nonsense")
    with pytest.raises(switchyard.InvalidArgument, match=r"processes\[0\]: must be at least 1 characters"):
        list(client.watch_supervision(processes=[""]))
