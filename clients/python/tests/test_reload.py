"""Reloading the server's configuration while clients watch: a device the file
gains (an instrument added to the simulator through its control API) reaches
an open device watch and an open wildcard subscription without resubscribing;
one the file loses is yielded once more, STOPPED, and its queued commands fail
with DeviceRemoved; a file with problems raises ConfigInvalid with each of
them and changes nothing."""

import json
import os
import threading
import urllib.request

import pytest

from switchyard import ConfigInvalid, DeviceRemoved

from conftest import Demo, wait_for


@pytest.fixture
def reloading_demo(switchyard_bin, tmp_path):
    """A demo of two supplies serving its configuration from a file it wrote
    (watch: true), with the simulator's control API."""
    d = Demo(switchyard_bin, tmp_path, control=True,
             extra=("--scpi", "2", "--lines", "0", "--config-out", str(tmp_path / "plant.yaml")))
    d.config = tmp_path / "plant.yaml"
    d.start()
    try:
        yield d
    finally:
        d.stop()


def _edit(path, edit):
    """Rewrites path with edit(text), aside and renamed as editors save."""
    text = edit(path.read_text())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _device_block(text, name):
    """The lines of one device in the demo's YAML (a "    - name: NAME" item)."""
    lines = text.splitlines(keepends=True)
    start = lines.index(f"    - name: {name}\n")
    end = start + 1
    while end < len(lines) and lines[end].startswith("      "):
        end += 1
    return "".join(lines[start:end])


def _add_instrument(demo, name):
    req = urllib.request.Request(f"http://{demo.control_addr}/instruments", method="POST",
                                 data=json.dumps({"name": name, "kind": "scpi"}).encode())
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 201
        return json.load(resp)["address"]


def test_reload_adds_and_removes_devices_under_open_streams(reloading_demo, make_client):
    demo = reloading_demo
    c = make_client(demo.grpc_addr)
    seen, samples, lock = [], [], threading.Lock()
    watch = c.watch_devices()
    sub = c.subscribe("*", "voltage")

    def read(stream, into):
        for item in stream:
            with lock:
                into.extend(item.samples if hasattr(item, "samples") else [item])

    threads = [threading.Thread(target=read, args=(watch, seen), daemon=True),
               threading.Thread(target=read, args=(sub, samples), daemon=True)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: {d.name for d, _ in seen} >= {"psu-01", "psu-02"}, 30, "both supplies watched")
        before = c.get_config()
        assert before.watch and before.devices == 2 and before.source == str(demo.config)

        # A file with problems: refused, every problem said, nothing changed.
        good = demo.config.read_text()
        _edit(demo.config, lambda t: t.replace("period: 100ms", "period: 0s", 1).replace(
            "model: sim-psu", "model: nosuch", 1))
        with pytest.raises(ConfigInvalid) as err:
            c.reload_config()
        assert err.value.reason == "CONFIG_INVALID"
        assert any("period: must be > 0" in p for p in err.value.problems), err.value.problems
        assert any('model: unknown model "nosuch"' in p for p in err.value.problems), err.value.problems
        assert all(p.startswith(str(demo.config) + ":") for p in err.value.problems), err.value.problems
        assert c.get_config().hash == before.hash
        _edit(demo.config, lambda t: good)

        # A new instrument in the simulator, then in the file: the watch saves it.
        addr = _add_instrument(demo, "psu-03")
        _edit(demo.config, lambda t: t.replace(
            "models:\n", f"    - name: psu-03\n      address: {addr}\n      model: sim-psu\n"
                         "      tags:\n        area: demo\n        kind: scpi\nmodels:\n", 1))
        wait_for(lambda: any(d.name == "psu-03" and d.state == "CONNECTED" for d, _ in seen), 30,
                 "psu-03 connected in the device watch")
        wait_for(lambda: any(s.device == "psu-03" and s.good for s in samples), 30,
                 "psu-03's voltage in the wildcard subscription")
        after = c.get_config()
        assert after.devices == 3 and after.hash != before.hash and after.loaded_trigger == "WATCH"
        assert after.last_reload is not None and after.last_reload.added == ("psu-03",)

        # psu-01 leaves the file: the commands queued fail DeviceRemoved... (the
        # instrument is slow, so one command runs while the others wait). (psu-02
        # has an alarm rule of its own: the demo sweeps its set-point.)
        _slow(demo, "psu-01")
        failures, done = [], []

        def send(v):
            try:
                c.send_command("psu-01", "set_voltage", v, timeout=30)
                done.append(v)
            except Exception as e:  # noqa: BLE001 (checked below)
                failures.append(e)

        senders = [threading.Thread(target=send, args=(v,), daemon=True) for v in ("5", "6", "7", "8")]
        for s in senders:
            s.start()
        wait_for(lambda: _depth(c, "psu-01") >= 3, 30, "three commands queued on psu-01")
        dry = c.reload_config(dry_run=True)
        assert dry.dry_run and not dry.applied and dry.removed == ()
        _edit(demo.config, lambda t: t.replace(_device_block(t, "psu-01"), "", 1))
        for s in senders:
            s.join(30)
        assert failures and all(isinstance(f, DeviceRemoved) for f in failures), failures
        assert len(failures) + len(done) == 4, (failures, done)
        # ... and the watch yields its final state, STOPPED, once.
        wait_for(lambda: any(d.name == "psu-01" and d.state == "STOPPED" for d, _ in seen), 30,
                 "psu-01's final state")
        last = [d for d, _ in seen if d.name == "psu-01"][-1]
        assert last.state == "STOPPED" and "device removed by reload" in last.last_error
        assert all(d.name for d, _ in seen), "the watch yielded a device without a name (a reload message)"
        assert [d.name for d in c.devices()] == ["psu-02", "psu-03"]
    finally:
        watch.cancel()
        sub.cancel()
        for t in threads:
            t.join(30)


def _slow(demo, name):
    req = urllib.request.Request(f"http://{demo.control_addr}/instruments/{name}/fault?slow=700ms", method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def _depth(c, name):
    for _, p in c.supervision_tree().walk():
        if p.id == name:
            return p.mailbox_depth
    return 0
