"""Profiles the GUI thread under the load of tests/test_gui_latency.py.

Runs the same load server (2,000 samples/s into 20 plotted channels), opens the
window, warms up, then measures for SECONDS with cProfile enabled on the GUI
thread and a 10 ms QTimer probe, and prints the probe's percentiles, the
longest event-loop stalls and the top functions by cumulative time::

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python \
        clients/python/tests/profile_gui.py [SECONDS] [--no-profile] [--out FILE]

(--no-profile: the probe alone, without cProfile's overhead; --out: keep the
raw profile for pstats; --cpu: profile the GUI thread's CPU time instead of
wall time; --sample: sample the GUI thread's scheduler state from another
process, to tell what late probes waited for; --shot: save a screenshot.)
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import os
import pstats
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))

from test_gui_latency import CHANNELS, DEVICES, RATE, _LoadServer  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("seconds", nargs="?", type=float, default=10.0)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--out", default="")
    ap.add_argument("--sample", action="store_true", help="sample the GUI thread's state from another process")
    ap.add_argument("--shot", default="", help="save a screenshot of the window at the end")
    ap.add_argument("--cpu", action="store_true",
                    help="profile the GUI thread's CPU time (default: wall time; --cpu costs much more per call)")
    args = ap.parse_args()

    from PySide6.QtCore import QElapsedTimer, Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from switchyard import Client
    from switchyard.gui import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    server = _LoadServer()
    keys = [(d, c) for d in DEVICES for c in CHANNELS]
    # Wall time by default (on a loaded machine it includes time the thread
    # waited for a CPU); --cpu: the GUI thread's CPU time.
    prof = cProfile.Profile(time.thread_time) if args.cpu else cProfile.Profile()
    late: list[float] = []
    own: list[float] = []  # lateness less the time the GUI thread waited for a CPU
    stalls: list[tuple[float, float, float]] = []
    windows: list[tuple[float, float]] = []
    samples: list[tuple[float, str]] = []
    gcs: list[tuple[float, int, str]] = []
    gc_start: dict[int, float] = {}

    def gc_watch(phase: str, info: dict[str, int]) -> None:
        tid = threading.get_ident()
        if phase == "start":
            gc_start[tid] = time.perf_counter()
        elif tid in gc_start:
            took = time.perf_counter() - gc_start.pop(tid)
            if info["generation"] == 2 or took > 0.005:
                gcs.append((took, info["generation"], threading.current_thread().name))

    gc.callbacks.append(gc_watch)
    try:
        with Client(f"127.0.0.1:{server.port}") as client:
            win = MainWindow(client, plot=keys)
            win.show()
            deadline = time.monotonic() + 30
            count = [0]
            if not hasattr(win.plots, "received"):  # (the GUI before the plots took sorted batches)
                while win._stream is None and time.monotonic() < deadline:
                    app.processEvents()
                    time.sleep(0.01)
                win._stream.samples.connect(lambda batch: count.__setitem__(0, count[0] + len(batch)))

            def received() -> int:
                return int(getattr(win.plots, "received", count[0]))

            while received() < 2 * RATE and time.monotonic() < deadline:
                app.processEvents()
                time.sleep(0.005)
            clock = QElapsedTimer()
            clock.start()
            last = [clock.nsecsElapsed()]

            # Where a late probe's time went: the GUI thread's CPU time and its
            # wait for a CPU (the scheduler's run-queue delay, /proc schedstat).
            stat = f"/proc/self/task/{threading.get_native_id()}/schedstat"

            def sched() -> tuple[int, int]:
                with open(stat) as f:
                    run, wait, _ = f.read().split()
                return int(run), int(wait)

            prev = [sched()]

            def tick() -> None:
                now = clock.nsecsElapsed()
                lateness = max(0.0, (now - last[0]) / 1e9 - 0.010)
                late.append(lateness)
                last[0] = now
                cur = sched()
                own.append(max(0.0, lateness - (cur[1] - prev[0][1]) / 1e9))
                if lateness > 0.020:
                    stalls.append((lateness, (cur[0] - prev[0][0]) / 1e9, (cur[1] - prev[0][1]) / 1e9))
                    windows.append((time.monotonic() - lateness - 0.010, time.monotonic()))
                prev[0] = cur

            # With --sample: what the GUI thread is doing, sampled every 2 ms by
            # a process of its own (a thread would compete for the GIL): its
            # state (R running or runnable, S sleeping) and, asleep, the kernel
            # function it waits in (futex: a lock such as the GIL; poll: the
            # event loop waiting for events or timers).
            sampler = None
            if args.sample:
                task = f"/proc/{os.getpid()}/task/{threading.get_native_id()}/"
                sampler = subprocess.Popen([sys.executable, "-c", _SAMPLER, task], stdout=subprocess.PIPE, text=True)

            probe = QTimer()
            probe.setTimerType(Qt.TimerType.PreciseTimer)
            probe.setInterval(10)
            probe.timeout.connect(tick)
            stop = QTimer()
            stop.setSingleShot(True)
            stop.timeout.connect(app.quit)
            threads0, server0 = _thread_cpu(os.getpid()), _thread_cpu(server.proc.pid)
            got0, t0, cpu0 = received(), time.monotonic(), time.process_time()
            probe.start()
            stop.start(int(args.seconds * 1000))
            if not args.no_profile:
                prof.enable()
            app.exec()
            prof.disable()
            probe.stop()
            if sampler is not None:
                sampler.send_signal(signal.SIGINT)
                samples.extend((float(t), w) for t, w in (line.split() for line in sampler.stdout))
            elapsed, cpu = time.monotonic() - t0, time.process_time() - cpu0
            got = received() - got0
            threads1, server1 = _thread_cpu(os.getpid()), _thread_cpu(server.proc.pid)
            redraws = win.plots.redraws
            if args.shot:
                win.grab().save(args.shot)
            win.close()
    finally:
        server.stop()
    late.sort()
    pct = {p: late[min(len(late) - 1, int(len(late) * p / 100))] * 1000 for p in (50, 95, 99)}
    print(f"{elapsed:.1f} s, {got / elapsed:.0f} samples/s received, {redraws} redraws, "
          f"process CPU {100 * cpu / elapsed:.0f}% of a core, load {os.getloadavg()[0]:.1f}")
    print(f"probe: {len(late)} ticks, p50 {pct[50]:.1f} ms, p95 {pct[95]:.1f} ms, p99 {pct[99]:.1f} ms, "
          f"max {late[-1] * 1000:.1f} ms")
    own.sort()
    print(f"less the waits for a CPU: p95 {own[int(len(own) * 0.95)] * 1000:.1f} ms, "
          f"p99 {own[int(len(own) * 0.99)] * 1000:.1f} ms, max {own[-1] * 1000:.1f} ms")
    print("CPU by thread (% of a core): " + ", ".join(
        f"{name} {100 * (threads1[name] - threads0.get(name, 0)) / elapsed:.1f}"
        for name in sorted(threads1, key=lambda n: threads0.get(n, 0) - threads1[n])[:8])
        + f"; load server {100 * (sum(server1.values()) - sum(server0.values())) / elapsed:.1f}")
    slow_gc = sorted(gcs, reverse=True)
    print(f"garbage collections: {len(gcs)} of generation 2 or over 5 ms; the longest (ms, generation, thread): "
          + ", ".join(f"{d * 1000:.0f}/{g}/{n}" for d, g, n in slow_gc[:8]))
    during: dict[str, int] = {}
    for t, what in samples:
        if any(a <= t <= b for a, b in windows):
            during[what] = during.get(what, 0) + 1
    print("the GUI thread during those probes' intervals (2 ms samples): "
          + ", ".join(f"{k} {v}" for k, v in sorted(during.items(), key=lambda kv: -kv[1])[:8]))
    stalls.sort(reverse=True)
    print(f"{len(stalls)} probes over 20 ms late; the worst (late / GUI thread running / waiting for a CPU, ms):")
    print("  " + ", ".join(f"{a * 1000:.0f}/{b * 1000:.0f}/{c * 1000:.0f}" for a, b, c in stalls[:15]))
    if not args.no_profile:
        if args.out:
            prof.dump_stats(args.out)
        st = pstats.Stats(prof)
        st.sort_stats("cumulative").print_stats(35)
        st.sort_stats("tottime").print_stats(25)


_SAMPLER = """
import sys, time
base = sys.argv[1]
out = []
try:
    while True:
        with open(base + "stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        with open(base + "wchan") as f:
            wchan = f.read() or "-"
        out.append(f"{time.monotonic()} {state if state != 'S' else 'S:' + wchan}")
        time.sleep(0.002)
except (OSError, KeyboardInterrupt):
    pass
finally:
    print("\\n".join(out))
"""


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process, by "name tid"."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        out[f"{name} {tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


if __name__ == "__main__":
    main()
