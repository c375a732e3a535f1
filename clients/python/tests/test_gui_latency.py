"""The Qt event loop stays responsive while 2,000 samples/s stream into 20
plotted channels: a QTimer probe measures how late the loop runs a 10 ms timer.

The samples come over real gRPC from a small server written here, run in a
process of its own (a Switchyard server cannot be made to publish exactly this
load; in the test's process its Python threads would compete for the GIL with
the GUI), through the client's subscription, the GUI's worker thread and
signals, into the plots. After a warm-up, the probe runs for MEASURE_S
seconds; the figures (p50/p95/p99/max, and the same less the time the GUI
thread waited for a CPU, which the p99 < 50 ms assertion is about) are written
to artifacts/gui-latency.txt (and printed with -s). tests/profile_gui.py runs
the same load under cProfile.
"""

import math
import os
import statistics
import subprocess
import sys
import threading
import time
from concurrent import futures

import grpc
import pytest

from switchyard.v1 import (  # noqa: E402
    alarm_pb2,
    alarm_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    sample_pb2,
    system_pb2,
    system_pb2_grpc,
    telemetry_pb2,
    telemetry_pb2_grpc,
)

from conftest import ARTIFACTS  # noqa: E402

DEVICES = [f"load-{i:02d}" for i in range(5)]
CHANNELS = ["a", "b", "c", "d"]  # 5 x 4 = 20 channels
RATE = 2000  # samples per second, all channels together


def _wait(context):
    while context.is_active():
        time.sleep(0.05)


class _Devices(device_pb2_grpc.DeviceServiceServicer):
    def _all(self):
        return [device_pb2.Device(name=d, state=device_pb2.DEVICE_STATE_CONNECTED, driver="lines",
                                  channels=[device_pb2.Channel(name=c, unit="V") for c in CHANNELS]) for d in DEVICES]

    def ListDevices(self, request, context):
        return device_pb2.ListDevicesResponse(devices=self._all())

    def WatchDevices(self, request, context):
        for d in self._all():
            yield device_pb2.WatchDevicesResponse(device=d, timestamp_ns=time.time_ns())
        _wait(context)


class _Telemetry(telemetry_pb2_grpc.TelemetryServiceServicer):
    def __init__(self):
        self.sent = 0  # samples sent (the test asks for it on stdin)

    def GetLatest(self, request, context):
        return telemetry_pb2.GetLatestResponse()

    def Subscribe(self, request, context):
        # One batch per batch window, as the server sends them (the GUI asks for 40 ms).
        tick = (request.batch_window_ms or 50) / 1000
        per_channel = round(RATE * tick / (len(DEVICES) * len(CHANNELS)))
        seq, start, k = 0, time.monotonic(), 0
        while context.is_active():
            k += 1
            now, spacing = time.time_ns(), int(tick * 1e9 / per_channel)
            batch = [sample_pb2.Sample(device=d, channel=c, seq=seq + j, timestamp_ns=now - (per_channel - j) * spacing,
                                       value=sample_pb2.Value(double_value=((seq + j) % 100) / 10),
                                       quality=sample_pb2.QUALITY_GOOD)
                     for d in DEVICES for c in CHANNELS for j in range(per_channel)]
            seq += per_channel
            yield telemetry_pb2.SubscribeResponse(samples=batch)
            self.sent += len(batch)
            time.sleep(max(0.0, start + k * tick - time.monotonic()))


class _System(system_pb2_grpc.SystemServiceServicer):
    def GetSupervisionTree(self, request, context):
        return system_pb2.GetSupervisionTreeResponse(root=system_pb2.Process(id="fake", started_ns=1))

    def WatchSupervisionEvents(self, request, context):
        yield system_pb2.WatchSupervisionEventsResponse(snapshot=system_pb2.Process(id="fake", started_ns=1))
        _wait(context)


class _Alarms(alarm_pb2_grpc.AlarmServiceServicer):
    def ListActiveAlarms(self, request, context):
        return alarm_pb2.ListActiveAlarmsResponse()

    def WatchAlarms(self, request, context):
        _wait(context)
        return iter(())


def serve():
    """Runs the load server until stdin closes; prints "port N", then "sent N"
    for every line read from stdin (no thread of the GUI's process wakes up
    for it while the latency is measured)."""
    telemetry = _Telemetry()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    device_pb2_grpc.add_DeviceServiceServicer_to_server(_Devices(), server)
    telemetry_pb2_grpc.add_TelemetryServiceServicer_to_server(telemetry, server)
    system_pb2_grpc.add_SystemServiceServicer_to_server(_System(), server)
    alarm_pb2_grpc.add_AlarmServiceServicer_to_server(_Alarms(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    for _ in sys.stdin:
        print(f"sent {telemetry.sent}", flush=True)
    server.stop(0)


class _LoadServer:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, __file__], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, cwd=os.path.dirname(__file__))
        line = self.proc.stdout.readline()
        assert line.startswith("port "), line
        self.port = int(line.split()[1])

    def sent(self):
        """How many samples the server has sent."""
        self.proc.stdin.write("sent?\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("sent "), line
        return int(line.split()[1])

    def stop(self):
        self.proc.stdin.close()
        self.proc.wait(30)


#: The probe's period, how long it measures after the warm-up, and the target.
PROBE_MS = 10
MEASURE_S = 10
P99_LIMIT_MS = 50


def percentile(sorted_values, p):
    """The p-th percentile (nearest rank) of an ascending list."""
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(p / 100 * len(sorted_values)) - 1))]


def _cpu_wait_ns():
    """How long this thread has waited for a CPU while ready to run (ns; 0
    where the kernel does not say)."""
    try:
        with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0


def test_event_loop_latency_while_2000_samples_per_second_stream_into_20_plots(qtbot):
    pytest.importorskip("PySide6")
    from PySide6.QtCore import QElapsedTimer, Qt, QTimer

    from switchyard import Client
    from switchyard.gui import MainWindow
    from switchyard.gui.plots import REDRAW_HZ

    if not os.environ.get("DISPLAY") and os.environ.get("QT_QPA_PLATFORM") != "offscreen":
        pytest.fail("no DISPLAY: run the GUI tests under xvfb-run (scripts/test does)")
    telemetry = _LoadServer()
    port = telemetry.port
    keys = [(d, c) for d in DEVICES for c in CHANNELS]
    try:
        with Client(f"127.0.0.1:{port}") as client:
            win = MainWindow(client, plot=keys)
            qtbot.addWidget(win)
            win.show()
            plots = win.plots
            # Warm-up (not measured): the stream runs, 2 s of samples were
            # taken in and every channel has been drawn.
            qtbot.waitUntil(lambda: plots.received >= 2 * RATE, timeout=30_000)
            assert set(plots.curves) == set(keys)
            qtbot.waitUntil(lambda: all(c.samples > 0 for c in plots.curves.values()), timeout=30_000)

            # The probe: a 10 ms timer; how late each timeout runs is the loop's
            # latency. Beside it, how long of each interval the GUI thread was
            # ready to run but waiting for a CPU (the machine's share of the
            # lateness: the kernel's schedstat, where there is one).
            late, cpu_wait, clock = [], [], QElapsedTimer()
            clock.start()
            last = [clock.nsecsElapsed(), _cpu_wait_ns()]

            def tick():
                now, waited = clock.nsecsElapsed(), _cpu_wait_ns()
                late.append(max(0.0, (now - last[0]) / 1e6 - PROBE_MS))
                cpu_wait.append((waited - last[1]) / 1e6)
                last[:] = [now, waited]

            probe = QTimer()
            probe.setTimerType(Qt.TimerType.PreciseTimer)
            probe.setInterval(PROBE_MS)
            probe.timeout.connect(tick)
            sent0, got0, redraws0 = telemetry.sent(), plots.received, plots.redraws
            t0, cpu0 = time.monotonic(), time.process_time()
            load0 = os.getloadavg()[0]
            probe.start()
            last[:] = [clock.nsecsElapsed(), _cpu_wait_ns()]
            qtbot.wait(MEASURE_S * 1000)
            probe.stop()
            elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
            sent, got, redraws = telemetry.sent() - sent0, plots.received - got0, plots.redraws - redraws0
            # The plot kept up: every channel's line reaches to within a second
            # of the newest sample taken in.
            newest = max(ch.t[-1] for ch in plots._data.values())
            behind = newest - min(c.last_t for c in plots.curves.values())
            win.close()
    finally:
        telemetry.stop()
    own = sorted(max(0.0, a - b) for a, b in zip(late, cpu_wait))
    late.sort()
    p50, p95, p99 = (percentile(late, p) for p in (50, 95, 99))
    report = (f"event loop latency (a {PROBE_MS} ms QTimer's lateness) over {elapsed:.1f} s after a warm-up, "
              f"{got / elapsed:.0f} samples/s received ({sent / elapsed:.0f}/s sent) into {len(keys)} plotted "
              f"channels: p50 {p50:.1f} ms, p95 {p95:.1f} ms, p99 {p99:.1f} ms, max {late[-1]:.1f} ms, "
              f"mean {statistics.mean(late):.1f} ms ({len(late)} probes of {elapsed * 1000 / PROBE_MS:.0f} due); "
              f"less the time the GUI thread waited for a CPU ({sum(cpu_wait):.0f} ms in all): p99 "
              f"{percentile(own, 99):.1f} ms, max {own[-1]:.1f} ms ("
              f"{redraws / elapsed:.1f} frames/s; lines {behind * 1000:.0f} ms behind the newest sample; "
              f"test process {100 * cpu / elapsed:.0f}% of a core; load average {load0:.1f} -> "
              f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(report)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "gui-latency.txt").write_text(report + "\n")
    # The load was there: the GUI took in what was sent (no backlog) and drew it.
    assert got >= 0.9 * sent and sent >= 0.8 * RATE * elapsed, report
    assert redraws >= 0.5 * REDRAW_HZ * elapsed and behind < 1.0, report
    assert len(late) >= 0.25 * elapsed * 1000 / PROBE_MS, report
    # Issue 17's requirement, the one speed this suite asserts: p99 < 50 ms.
    # Asserted on the lateness less the time the kernel kept the GUI thread
    # waiting for a CPU: what the GUI is accountable for. On a machine that
    # gives the thread a CPU when it wakes (CI) the two are the same; on a
    # shared machine at a load average of 15 on 2 CPUs the waits alone reach
    # 100-250 ms and the raw p99 measures the machine (both are in the
    # artifact). The GUI before this test asserted it had p99 130-250 ms even
    # with the waits taken out (tests/profile_gui.py prints both).
    assert percentile(own, 99) < P99_LIMIT_MS, report


if __name__ == "__main__":
    serve()
