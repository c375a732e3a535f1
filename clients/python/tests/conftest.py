"""Fixtures that run a real Switchyard demo server for the tests.

SWITCHYARD_BIN names the switchyard binary (scripts/test builds it); without it
the fixture builds one with `go build`.
"""

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from switchyard.v1 import device_pb2, device_pb2_grpc

REPO = Path(__file__).resolve().parents[3]


def _free_ports(n: int) -> list[int]:
    """n distinct free ports: all sockets stay open until every port is known."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _binary(tmp_path_factory) -> str:
    env_bin = os.environ.get("SWITCHYARD_BIN")
    if env_bin:
        return env_bin
    out = tmp_path_factory.mktemp("bin") / "switchyard"
    subprocess.run(["go", "build", "-o", str(out), "./cmd/switchyard"], cwd=REPO, check=True)
    return str(out)


class Demo:
    def __init__(self, proc: subprocess.Popen, grpc_addr: str, http_addr: str, log: Path):
        self.proc = proc
        self.grpc_addr = grpc_addr
        self.http_addr = http_addr
        self.log = log


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    binary = _binary(tmp_path_factory)
    grpc_port, http_port = _free_ports(2)
    grpc_addr = f"127.0.0.1:{grpc_port}"
    http_addr = f"127.0.0.1:{http_port}"
    log = tmp_path_factory.mktemp("demo") / "demo.log"
    env = dict(os.environ)
    env.pop("SWITCHYARD_QUESTDB", None)  # these tests do not need the archive
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [binary, "demo", "--grpc", grpc_addr, "--http", http_addr, "--control", ""],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    try:
        _wait_ready(grpc_addr, proc, log)
        yield Demo(proc, grpc_addr, http_addr, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("demo did not stop within 30 s of SIGTERM:\n" + log.read_text())
        assert code == 0, f"demo exited {code}:\n" + log.read_text()


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
