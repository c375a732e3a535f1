"""Switchyard's Python client.

:class:`Client` talks to a Switchyard server's gRPC port and returns plain Python
values (named tuples and dataclasses) that go straight into numpy or pandas::

    from switchyard import Client

    with Client("127.0.0.1:7400") as sy:
        print([d.name for d in sy.devices()])
        sy.send_command("psu-01", "set_voltage", 24)
        for batch in sy.subscribe("psu-01", "voltage"):
            for s in batch.samples:
                print(s.device, s.channel, s.seq, s.value, s.quality)

Subscriptions are also async iterators on grpc.aio (``async for batch in
sy.subscribe(...)``), reconnect with backoff when the stream drops and report
every sequence gap, repeat or server restart they see (see
:mod:`switchyard.sequence`). Alarms are listed, watched, acknowledged and
shelved as plain values too (:mod:`switchyard.alarms`), and the supervision
tree can be watched event by event (:mod:`switchyard.supervision`). Failed calls raise the exceptions of
:mod:`switchyard.errors`. The generated messages and stubs live in
``switchyard.v1``; the PySide6 GUI is :mod:`switchyard.gui` (``pip install
switchyard-client[gui]``, then ``switchyard-gui``).
"""

from .alarms import SEVERITY_RANK, Alarm, AlarmLimits, AlarmTransition, AlarmWatch, Threshold
from .backoff import Backoff
from .client import KEEPALIVE_OPTIONS, Bucket, Client, History, TLSConfig, token_from_env
from .errors import (
    Aborted,
    Cancelled,
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    SwitchyardError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from .model import Channel, CommandReply, Device, Process, Sample
from .sequence import SeqEvent, SeqTracker
from .subscription import Batch, Subscription
from .supervision import SupervisionEvent, SupervisionWatch

__version__ = "0.1.0"

__all__ = [
    "TLSConfig",
    "token_from_env",
    "Aborted",
    "Alarm",
    "AlarmLimits",
    "AlarmTransition",
    "AlarmWatch",
    "Backoff",
    "Batch",
    "Bucket",
    "Cancelled",
    "Channel",
    "Client",
    "CommandReply",
    "DeadlineExceeded",
    "Device",
    "History",
    "InvalidArgument",
    "KEEPALIVE_OPTIONS",
    "NotFound",
    "PermissionDenied",
    "Process",
    "SEVERITY_RANK",
    "Sample",
    "SeqEvent",
    "SeqTracker",
    "Subscription",
    "SupervisionEvent",
    "SupervisionWatch",
    "SwitchyardError",
    "Threshold",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
]
