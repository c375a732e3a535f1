"""The client against a small gRPC server written here (real grpcio on a
loopback port), for what the Switchyard server cannot be made to do on demand:
an instrument's refusal (INSTRUMENT_ERROR), a server bug (INTERNAL) on a
stream, recording what metadata every call carries, and a cluster node's alarm
watch (no replay, transitions out of time order)."""

import contextlib
import threading
from concurrent import futures

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

import switchyard
from switchyard.v1 import (
    alarm_pb2,
    alarm_pb2_grpc,
    device_pb2,
    device_pb2_grpc,
    history_pb2,
    system_pb2,
    system_pb2_grpc,
)


def _abort(context, code, message, reason, metadata=None):
    info = error_details_pb2.ErrorInfo(reason=reason, domain="switchyard", metadata=metadata or {})
    st = status_pb2.Status(code=code.value[0], message=message)
    st.details.add().Pack(info)
    context.set_trailing_metadata((("grpc-status-details-bin", st.SerializeToString()),))
    context.abort(code, message)


class _Devices(device_pb2_grpc.DeviceServiceServicer):
    def __init__(self, seen, stream_code):
        self.seen, self.stream_code = seen, stream_code

    def _record(self, context):
        self.seen.append(dict(context.invocation_metadata()))

    def ListDevices(self, request, context):
        self._record(context)
        return device_pb2.ListDevicesResponse(devices=[device_pb2.Device(
            name="psu-01", state=device_pb2.DEVICE_STATE_CONNECTED, reconnections=3, restart_count=3,
            last_error="read: EOF", tags={"area": "vacuum"})])

    def SendCommand(self, request, context):
        self._record(context)
        _abort(context, grpc.StatusCode.FAILED_PRECONDITION,
               'command set_voltage: instrument error: -222,"Data out of range"', "INSTRUMENT_ERROR",
               {"device": request.device, "command": request.name, "instrument_message": '-222,"Data out of range"'})

    def WatchDevices(self, request, context):
        self._record(context)
        _abort(context, getattr(grpc.StatusCode, self.stream_code), "boom", self.stream_code)
        yield device_pb2.WatchDevicesResponse()  # never reached


class _System(system_pb2_grpc.SystemServiceServicer):
    def GetSupervisionTree(self, request, context):
        return system_pb2.GetSupervisionTreeResponse(root=system_pb2.Process(id="fake", started_ns=1))


_CLUSTER_REASON = "a cluster node does not replay alarm transitions"


class _ClusterAlarms(alarm_pb2_grpc.AlarmServiceServicer):
    """WatchAlarms as a cluster node answers it: any since_ns gets a replay end
    that is not complete and has no live_after_ns; live transitions come from
    several nodes, out of time order. The first stream sends two and breaks
    (UNAVAILABLE), the second one sends one older than both and stays open."""

    def __init__(self):
        self.since: list[int] = []
        self.done = threading.Event()

    @staticmethod
    def _transition(ns):
        return alarm_pb2.WatchAlarmsResponse(transition=alarm_pb2.AlarmTransition(
            timestamp_ns=ns, event=alarm_pb2.ALARM_EVENT_CHANGED, alarm=alarm_pb2.Alarm(device="d", channel="c", severity=alarm_pb2.SEVERITY_NO_ALARM,
                                 latched=alarm_pb2.SEVERITY_NO_ALARM)))

    def WatchAlarms(self, request, context):
        self.since.append(request.since_ns)
        yield alarm_pb2.WatchAlarmsResponse(replay_end=history_pb2.ReplayEnd(reason=_CLUSTER_REASON))
        if len(self.since) == 1:
            yield self._transition(2000)
            yield self._transition(1000)
            context.abort(grpc.StatusCode.UNAVAILABLE, "node going away")
        yield self._transition(1500)
        while not self.done.is_set() and context.is_active():
            self.done.wait(0.05)

    def ListActiveAlarms(self, request, context):
        return alarm_pb2.ListActiveAlarmsResponse()


@contextlib.contextmanager
def fake_server(stream_code="INTERNAL", seen=None, alarms=None):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    device_pb2_grpc.add_DeviceServiceServicer_to_server(_Devices(seen if seen is not None else [], stream_code), server)
    system_pb2_grpc.add_SystemServiceServicer_to_server(_System(), server)
    if alarms is not None:
        alarm_pb2_grpc.add_AlarmServiceServicer_to_server(alarms, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(0)


def test_instrument_refusal_is_an_instrument_error_with_its_words(make_client):
    with fake_server() as addr:
        c = make_client(addr)
        with pytest.raises(switchyard.InstrumentError) as exc:
            c.send_command("psu-01", "set_voltage", 61)
    err = exc.value
    assert isinstance(err, switchyard.FailedPrecondition)
    assert err.reason == "INSTRUMENT_ERROR" and err.instrument_message == '-222,"Data out of range"'
    assert err.metadata["device"] == "psu-01" and err.method == "DeviceService/SendCommand"


def test_every_call_names_the_client_and_its_version_and_sends_the_token(make_client, tmp_path, monkeypatch):
    seen = []
    token_file = tmp_path / "token"
    token_file.write_text("s3cret-from-file\n")
    monkeypatch.setenv("SWITCHYARD_TOKEN_FILE", str(token_file))
    with fake_server(seen=seen) as addr:
        c = make_client(addr)
        devices = c.devices()
        with pytest.raises(switchyard.InternalError):
            list(c.watch_devices())
        make_client(addr, token="explicit").devices()
    assert len(seen) == 3
    for md in seen:
        assert md["x-switchyard-client"] == f"switchyard-python/{switchyard.__version__}"
        assert f"switchyard-python/{switchyard.__version__}" in md["user-agent"]
    assert [md["authorization"] for md in seen] == ["Bearer s3cret-from-file"] * 2 + ["Bearer explicit"]
    d = devices[0]
    assert (d.reconnections, d.tags, d.last_error, d.error) == (3, {"area": "vacuum"}, "read: EOF", "")
    with pytest.warns(DeprecationWarning, match="reconnections"):
        assert d.restart_count == 3


def test_a_stream_failing_with_internal_is_not_retried(make_client):
    with fake_server(stream_code="INTERNAL") as addr:
        watch = make_client(addr).watch_devices(backoff=switchyard.Backoff(initial=0.01, cap=0.01))
        with pytest.raises(switchyard.InternalError, match="boom"):
            for _ in watch:
                pass
    assert watch.reconnects == 0


def test_a_stream_failing_with_unavailable_is_retried(make_client):
    reconnects = []
    with fake_server(stream_code="UNAVAILABLE") as addr:
        watch = make_client(addr).watch_devices(backoff=switchyard.Backoff(initial=0.01, cap=0.01),
                                                on_reconnect=lambda n, err: reconnects.append((n, err.reason)))
        done = threading.Event()

        def read():
            for _ in watch:
                pass
            done.set()

        threading.Thread(target=read, daemon=True).start()
        try:
            from conftest import wait_for

            wait_for(lambda: len(reconnects) >= 3, 30, "three reconnects")
        finally:
            watch.cancel()
        assert done.wait(30)
    assert reconnects[:3] == [(1, "UNAVAILABLE"), (2, "UNAVAILABLE"), (3, "UNAVAILABLE")]


def test_alarm_watch_on_a_cluster_node_keeps_transitions_out_of_time_order_and_reports_the_break(make_client):
    # A cluster node does not replay and merges every node's transitions: the
    # watch yields each live one, also one older than the last it yielded,
    # and after a break resumes from its last time, is told there is no
    # replay, and reports the break as a gap.
    alarms, gaps = _ClusterAlarms(), []
    with fake_server(alarms=alarms) as addr:
        watch = make_client(addr).watch_alarms(include_active=False, on_gap=gaps.append,
                                               backoff=switchyard.Backoff(initial=0.01, cap=0.01))
        got: list[int] = []

        def read():
            for t in watch:
                got.append(t.timestamp_ns)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            from conftest import wait_for

            wait_for(lambda: len(got) >= 3, 30, "three transitions")
        finally:
            alarms.done.set()
            watch.cancel()
        reader.join(30)
    assert got == [2000, 1000, 1500]
    assert watch.overlap == 0
    assert alarms.since[1] == 2000 and alarms.since[0] > 2000  # first: in the future; then: from the newest
    assert len(gaps) == 1 and _CLUSTER_REASON in gaps[0].error
