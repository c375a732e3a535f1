"""Switchyard's Python client.

The generated messages and gRPC stubs live in ``switchyard.v1``::

    import grpc
    from switchyard.v1 import telemetry_pb2, telemetry_pb2_grpc

    channel = grpc.insecure_channel("127.0.0.1:7400")
    stub = telemetry_pb2_grpc.TelemetryServiceStub(channel)
    for batch in stub.Subscribe(telemetry_pb2.SubscribeRequest()):
        for s in batch.samples:
            print(s.device, s.channel, s.seq, s.value)
"""

__version__ = "0.1.0"
