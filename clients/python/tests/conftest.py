"""Fixtures that run a real Switchyard demo server for the tests.

SWITCHYARD_BIN names the switchyard binary (scripts/test builds it); without it
the fixture builds one with `go build`. ``demo`` is one server for the whole
session; ``fresh_demo`` is a server of the test's own that the test may restart
on the same ports (``fresh_demo.restart()``).
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import pytest

from switchyard.v1 import device_pb2, device_pb2_grpc

REPO = Path(__file__).resolve().parents[3]
#: Where tests leave files worth keeping (the GUI screenshot); gitignored.
ARTIFACTS = REPO / "artifacts"


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[int] = set()


def _free_port() -> int:
    """A free loopback port below the kernel's ephemeral range: the kernel never
    hands it to an outgoing connection or a port-0 listener, so it stays free
    when a demo is restarted on it (ports of other processes are checked by bind)."""
    high = _ephemeral_low() - 1
    for _ in range(200):
        port = random.randint(20000, high)
        if port in _handed_out:
            continue  # one run never hands the same port to two listeners
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            _handed_out.add(port)
            return port
    raise AssertionError("no free loopback port in 20000-%d" % high)


@pytest.fixture(scope="session")
def switchyard_bin(tmp_path_factory) -> str:
    env_bin = os.environ.get("SWITCHYARD_BIN")
    if env_bin:
        return env_bin
    out = tmp_path_factory.mktemp("bin") / "switchyard"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/switchyard"], cwd=REPO, check=True)
    return str(out)


class Demo:
    """A `switchyard demo` process on fixed loopback ports that can be stopped and
    started again on the same ports."""

    def __init__(self, binary: str, log_dir: Path, control: bool = True, questdb: str = ""):
        self.binary = binary
        #: QuestDB HTTP host:port the demo archives to ("": none), with a spool
        #: under log_dir that outlives restarts.
        self.questdb = questdb
        self.grpc_addr = f"127.0.0.1:{_free_port()}"
        self.http_addr = f"127.0.0.1:{_free_port()}"
        #: The simulator's fault-injection control API (see fault()).
        self.control_addr = f"127.0.0.1:{_free_port()}" if control else ""
        self.log_dir = log_dir
        self.runs = 0
        self.proc: subprocess.Popen | None = None
        self.log = log_dir / "demo-0.log"

    def start(self) -> None:
        self.runs += 1
        self.log = self.log_dir / f"demo-{self.runs}.log"
        env = dict(os.environ)
        env.pop("SWITCHYARD_QUESTDB", None)  # archiving only where asked for
        args = [self.binary, "demo", "--grpc", self.grpc_addr, "--http", self.http_addr,
                "--control", self.control_addr]
        if self.questdb:
            args += ["--questdb", self.questdb, "--spool", str(self.log_dir / "spool")]
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        _wait_ready(self.grpc_addr, self.proc, self.log)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("demo did not stop within 30 s of SIGTERM:\n" + self.log.read_text())
        assert code == 0, f"demo exited {code}:\n" + self.log.read_text()

    def fault(self, instrument: str, **switches: str) -> None:
        """Sets fault switches of a simulated instrument (refuse=1, drop=1, clear=1, ...)."""
        query = urllib.parse.urlencode(switches)
        req = urllib.request.Request(f"http://{self.control_addr}/instruments/{instrument}/fault?{query}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status < 300, f"fault {instrument} {switches}: HTTP {resp.status}"

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def demo(switchyard_bin, tmp_path_factory):
    d = Demo(switchyard_bin, tmp_path_factory.mktemp("demo"))
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def fresh_demo(switchyard_bin, tmp_path):
    d = Demo(switchyard_bin, tmp_path, control=False)
    d.start()
    try:
        yield d
    finally:
        d.stop()


def questdb_addr() -> str:
    """The QuestDB for archive tests (SWITCHYARD_TEST_QUESTDB, host:port of its HTTP
    port): skips the test without one, or fails when SWITCHYARD_REQUIRE_QUESTDB=1."""
    addr = os.environ.get("SWITCHYARD_TEST_QUESTDB", "")
    if not addr:
        if os.environ.get("SWITCHYARD_REQUIRE_QUESTDB") == "1":
            pytest.fail("SWITCHYARD_REQUIRE_QUESTDB=1 but SWITCHYARD_TEST_QUESTDB is not set")
        pytest.skip("no QuestDB: set SWITCHYARD_TEST_QUESTDB=host:port (scripts/test does)")
    try:
        with urllib.request.urlopen(f"http://{addr}/exec?query=select%201", timeout=10) as resp:
            assert resp.status == 200
    except OSError as err:
        pytest.fail(f"SWITCHYARD_TEST_QUESTDB={addr} does not answer: {err}")
    return addr




@pytest.fixture
def archived_demo(switchyard_bin, tmp_path):
    """A demo of the test's own that archives to the test QuestDB (table
    "samples", spool in tmp_path) and may be restarted."""
    d = Demo(switchyard_bin, tmp_path, control=False, questdb=questdb_addr())
    d.start()
    try:
        yield d
    finally:
        d.stop()


def _wait_ready(addr: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(addr) as ch:
        stub = device_pb2_grpc.DeviceServiceStub(ch)
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"demo exited early ({proc.returncode}):\n" + log.read_text())
            try:
                devs = stub.ListDevices(device_pb2.ListDevicesRequest(), timeout=2).devices
                if devs and all(d.state == device_pb2.DEVICE_STATE_CONNECTED for d in devs):
                    return
            except grpc.RpcError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("demo not ready within 60 s:\n" + log.read_text())
            time.sleep(0.2)


def wait_for(cond, timeout: float = 30, what: str = "condition"):
    """Polls cond() until it returns a truthy value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)
