"""Switchyard's Python client.

:class:`Client` (blocking) and :class:`AsyncClient` (asyncio, the same methods
awaited) talk to a Switchyard server's gRPC port and return plain Python values
(named tuples and dataclasses) that go straight into numpy or pandas::

    from switchyard import Client

    with Client("127.0.0.1:7400") as sy:
        print([d.name for d in sy.devices()])
        sy.send_command("psu-01", "set_voltage", 24)
        for batch in sy.subscribe("psu-01", "voltage"):
            for s in batch.samples:
                print(s.device, s.channel, s.seq, s.value, s.quality)

    async with AsyncClient("127.0.0.1:7400") as sy:
        await sy.send_command("psu-01", "set_voltage", 24)
        async for batch in sy.subscribe(tags={"area": "vacuum"}):
            ...

Every stream (subscriptions, and the device, alarm and supervision watches)
reconnects with backoff when it breaks, re-establishes what it shows and
reports what it could not recover: sequence gaps, repeats and server restarts
for telemetry (:mod:`switchyard.sequence`), a :class:`Gap` for the watches
(:mod:`switchyard.resume`). Failed calls raise the exceptions of
:mod:`switchyard.errors`, chosen from the server's status code and reason.
Times are datetimes, Unix seconds or timedeltas (:mod:`switchyard.times`). The
generated messages and stubs live in ``switchyard.v1``; the PySide6 GUI is
:mod:`switchyard.gui` (``pip install switchyard-client[gui]``, then
``switchyard-gui``).
"""

from .aio import AsyncClient
from .alarms import SEVERITY_RANK, Alarm, AlarmLimits, AlarmTransition, AlarmWatch, Threshold
from .backoff import Backoff
from .base import Bucket, History, Identity
from .client import Client
from .devices import DeviceWatch
from .errors import (
    Aborted,
    AlreadyExists,
    BadReply,
    Cancelled,
    ConfigInvalid,
    DeadlineExceeded,
    DeviceBusy,
    DeviceNotConnected,
    DeviceRemoved,
    FailedPrecondition,
    InstrumentError,
    InternalError,
    InvalidArgument,
    NoArchive,
    NotFound,
    NotSettled,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    SwitchyardError,
    Unauthenticated,
    Unavailable,
    Unimplemented,
)
from .model import Channel, CommandReply, ConfigReload, ConfigState, Device, Process, Sample
from .resume import Gap
from .sequence import SeqEvent, SeqTracker
from .subscription import Batch, Subscription
from .supervision import SupervisionEvent, SupervisionWatch
from .transport import KEEPALIVE_OPTIONS, USER_AGENT, TLSConfig
from .version import __version__

__all__ = [
    "Aborted",
    "Alarm",
    "AlarmLimits",
    "AlarmTransition",
    "AlarmWatch",
    "AlreadyExists",
    "AsyncClient",
    "Backoff",
    "BadReply",
    "Batch",
    "Bucket",
    "Cancelled",
    "Channel",
    "Client",
    "CommandReply",
    "ConfigInvalid",
    "ConfigReload",
    "ConfigState",
    "DeadlineExceeded",
    "Device",
    "DeviceBusy",
    "DeviceNotConnected",
    "DeviceRemoved",
    "DeviceWatch",
    "FailedPrecondition",
    "Gap",
    "History",
    "Identity",
    "InstrumentError",
    "InternalError",
    "InvalidArgument",
    "KEEPALIVE_OPTIONS",
    "TLSConfig",
    "NoArchive",
    "NotFound",
    "NotSettled",
    "OutOfRange",
    "PermissionDenied",
    "Process",
    "ResourceExhausted",
    "SEVERITY_RANK",
    "Sample",
    "SeqEvent",
    "SeqTracker",
    "Subscription",
    "SupervisionEvent",
    "SupervisionWatch",
    "SwitchyardError",
    "Threshold",
    "USER_AGENT",
    "Unauthenticated",
    "Unavailable",
    "Unimplemented",
    "__version__",
]
