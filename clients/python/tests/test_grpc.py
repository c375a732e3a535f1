"""The generated Python stubs against a running Switchyard over real grpcio."""

import grpc

from switchyard.v1 import (
    device_pb2,
    device_pb2_grpc,
    sample_pb2,
    telemetry_pb2,
    telemetry_pb2_grpc,
)


def test_subscribe_receives_samples(demo):
    with grpc.insecure_channel(demo.grpc_addr) as ch:
        stub = telemetry_pb2_grpc.TelemetryServiceStub(ch)
        req = telemetry_pb2.SubscribeRequest(
            selector=telemetry_pb2.Selector(devices=["psu-0*"], channels=["voltage"]),
        )
        stream = stub.Subscribe(req, timeout=30)
        got = []
        for batch in stream:
            got.extend(batch.samples)
            if len(got) >= 50:
                stream.cancel()
                break
    assert len(got) >= 50
    assert {s.channel for s in got} == {"voltage"}
    assert all(s.device.startswith("psu-0") for s in got)
    good = [s for s in got if s.quality == sample_pb2.QUALITY_GOOD]
    assert good, "no GOOD sample"
    # The demo's supplies start at a 12 V set-point with output on.
    assert all(abs(s.value.double_value - 12.0) < 1.0 for s in good)
    # Per-channel sequence numbers only grow, one at a time.
    last = {}
    for s in got:
        key = (s.device, s.channel)
        if key in last:
            assert s.seq == last[key] + 1, f"{key}: seq {s.seq} after {last[key]}"
        last[key] = s.seq


def test_list_devices_and_unknown_device(demo):
    with grpc.insecure_channel(demo.grpc_addr) as ch:
        stub = device_pb2_grpc.DeviceServiceStub(ch)
        devices = stub.ListDevices(device_pb2.ListDevicesRequest(), timeout=5).devices
        assert len(devices) == 24
        psu = next(d for d in devices if d.name == "psu-01")
        assert psu.driver == "scpi"
        assert psu.identity.startswith("Switchyard,SIM-PSU")
        try:
            stub.GetDevice(device_pb2.GetDeviceRequest(name="nope"), timeout=5)
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND
            assert "nope" in err.details()
        else:
            raise AssertionError("GetDevice of an unknown device succeeded")
