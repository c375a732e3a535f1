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
import threading
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

    def __init__(self, binary: str, log_dir: Path, control: bool = True, questdb: str = "",
                 layout: str = "", extra: tuple[str, ...] = ()):
        self.binary = binary
        #: More arguments for `switchyard demo`.
        self.extra = list(extra)
        #: QuestDB HTTP host:port the demo archives to ("": none), with a spool
        #: under log_dir that outlives restarts.
        self.questdb = questdb
        #: The archive layout (--archive-layout): "" (the default, narrow) or "wide".
        self.layout = layout
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
        if self.layout:
            args += ["--archive-layout", self.layout]
        args += self.extra
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




def questdb_query(addr: str, sql: str) -> list[list[object]]:
    """The rows of a SQL query on the test QuestDB (its HTTP /exec)."""
    import json

    url = f"http://{addr}/exec?" + urllib.parse.urlencode({"query": sql})
    with urllib.request.urlopen(url, timeout=30) as resp:
        body = json.load(resp)
    if "error" in body:
        raise AssertionError(f"QuestDB: {body['error']} in {sql}")
    return body.get("dataset", [])


@pytest.fixture(params=["narrow", "wide"])
def archived_demo(switchyard_bin, tmp_path, request):
    """A demo of the test's own that archives to the test QuestDB (table
    "samples", spool in tmp_path) and may be restarted; once with each archive
    layout (the wide one in table "samples_wide")."""
    d = Demo(switchyard_bin, tmp_path, control=False, questdb=questdb_addr(), layout=request.param)
    d.start()
    try:
        yield d
    finally:
        d.stop()


@pytest.fixture
def archived_faulty_demo(switchyard_bin, tmp_path):
    """A demo of the test's own that archives to the test QuestDB, with the
    simulator's fault API, which the test may restart."""
    d = Demo(switchyard_bin, tmp_path, control=True, questdb=questdb_addr())
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


class AsyncAsSync:
    """An AsyncClient driven from blocking test code: its coroutines run on an
    event loop in a thread of their own, its streams are read through it. The
    suite is parametrised over Client and this, so both clients pass the same
    tests with the same values and exceptions."""

    def __init__(self, address: str, **kw):
        import asyncio

        from switchyard import AsyncClient

        self._asyncio = asyncio
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

        async def make():
            return AsyncClient(address, **kw)

        self.client = self._run(make())

    def _run(self, coro):
        return self._asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __getattr__(self, name):
        attr = getattr(self.client, name)
        if self._asyncio.iscoroutinefunction(attr):
            return lambda *a, **k: self._run(attr(*a, **k))
        if name.startswith(("watch_", "subscribe")):
            return lambda *a, **k: _AsyncStream(self, attr(*a, **k))
        return attr

    def close(self):
        if self._loop.is_running():
            self._run(self.client.close())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _AsyncStream:
    """A stream of an AsyncClient read with async for on the adapter's loop."""

    def __init__(self, owner: AsyncAsSync, stream):
        self._owner, self.stream = owner, stream
        self._it = None

    def __iter__(self):
        self._it = self.stream.__aiter__()
        while True:
            try:
                yield self._owner._run(self._it.__anext__())
            except StopAsyncIteration:
                return

    def __getattr__(self, name):
        return getattr(self.stream, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stream.cancel()


@pytest.fixture(params=["sync", "async"])
def make_client(request):
    """Opens clients of the kind the test is parametrised with (sync: Client;
    async: AsyncClient through AsyncAsSync) and closes them afterwards."""
    from switchyard import Client

    made = []

    def make(address: str, **kw):
        c = Client(address, **kw) if request.param == "sync" else AsyncAsSync(address, **kw)
        made.append(c)
        return c

    make.kind = request.param
    yield make
    for c in made:
        c.close()


class Proxy:
    """A loopback TCP proxy in front of a server's gRPC port. ``pause()`` drops
    every connection through it and refuses new ones (the client sees its
    streams break while the server runs on) until ``resume()``."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._lsock = socket.socket()
        self._lsock.bind(("127.0.0.1", 0))
        self._lsock.listen(64)
        self.addr = f"127.0.0.1:{self._lsock.getsockname()[1]}"
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self._paused = False
        self._closed = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self):
        while True:
            try:
                c, _ = self._lsock.accept()
            except OSError:
                return
            with self._lock:
                if self._paused or self._closed:
                    c.close()
                    continue
                try:
                    u = socket.create_connection(self._target, timeout=5)
                except OSError:
                    c.close()
                    continue
                u.settimeout(None)
                self._conns += [c, u]
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self):
        with self._lock:
            self._paused = True
            conns, self._conns = self._conns, []
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def resume(self):
        with self._lock:
            self._paused = False

    def close(self):
        self._closed = True
        self.pause()
        self._lsock.close()


@pytest.fixture
def faulty_demo(switchyard_bin, tmp_path):
    """A demo of the test's own with the simulator's fault API, which the test
    may restart."""
    d = Demo(switchyard_bin, tmp_path, control=True)
    d.start()
    try:
        yield d
    finally:
        d.stop()
