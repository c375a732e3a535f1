import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from switchyard.v1 import sample_pb2 as _sample_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DeviceState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEVICE_STATE_UNSPECIFIED: _ClassVar[DeviceState]
    DEVICE_STATE_CONNECTING: _ClassVar[DeviceState]
    DEVICE_STATE_CONNECTED: _ClassVar[DeviceState]
    DEVICE_STATE_BACKOFF: _ClassVar[DeviceState]
    DEVICE_STATE_STOPPED: _ClassVar[DeviceState]
DEVICE_STATE_UNSPECIFIED: DeviceState
DEVICE_STATE_CONNECTING: DeviceState
DEVICE_STATE_CONNECTED: DeviceState
DEVICE_STATE_BACKOFF: DeviceState
DEVICE_STATE_STOPPED: DeviceState

class Channel(_message.Message):
    __slots__ = ("name", "query", "period", "unit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    query: str
    period: _duration_pb2.Duration
    unit: str
    def __init__(self, name: _Optional[str] = ..., query: _Optional[str] = ..., period: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., unit: _Optional[str] = ...) -> None: ...

class Device(_message.Message):
    __slots__ = ("name", "address", "driver", "state", "channels", "last_error", "restart_count", "connected_since", "next_attempt", "identity", "commands", "command_info", "tags", "reconnections")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    DRIVER_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    RESTART_COUNT_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_SINCE_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    COMMANDS_FIELD_NUMBER: _ClassVar[int]
    COMMAND_INFO_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    RECONNECTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    driver: str
    state: DeviceState
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    last_error: str
    restart_count: int
    connected_since: _timestamp_pb2.Timestamp
    next_attempt: _timestamp_pb2.Timestamp
    identity: str
    commands: _containers.RepeatedScalarFieldContainer[str]
    command_info: _containers.RepeatedCompositeFieldContainer[CommandInfo]
    tags: _containers.ScalarMap[str, str]
    reconnections: int
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., driver: _Optional[str] = ..., state: _Optional[_Union[DeviceState, str]] = ..., channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ..., last_error: _Optional[str] = ..., restart_count: _Optional[int] = ..., connected_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., identity: _Optional[str] = ..., commands: _Optional[_Iterable[str]] = ..., command_info: _Optional[_Iterable[_Union[CommandInfo, _Mapping]]] = ..., tags: _Optional[_Mapping[str, str]] = ..., reconnections: _Optional[int] = ...) -> None: ...

class CommandInfo(_message.Message):
    __slots__ = ("name", "role", "args", "has_reply", "readback")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    HAS_REPLY_FIELD_NUMBER: _ClassVar[int]
    READBACK_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    args: _containers.RepeatedCompositeFieldContainer[ArgumentInfo]
    has_reply: bool
    readback: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., args: _Optional[_Iterable[_Union[ArgumentInfo, _Mapping]]] = ..., has_reply: _Optional[bool] = ..., readback: _Optional[str] = ...) -> None: ...

class ArgumentInfo(_message.Message):
    __slots__ = ("name", "type", "min", "max", "choices", "pattern", "unit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    CHOICES_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    UNIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    min: float
    max: float
    choices: _containers.RepeatedScalarFieldContainer[str]
    pattern: str
    unit: str
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., min: _Optional[float] = ..., max: _Optional[float] = ..., choices: _Optional[_Iterable[str]] = ..., pattern: _Optional[str] = ..., unit: _Optional[str] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedCompositeFieldContainer[Device]
    def __init__(self, devices: _Optional[_Iterable[_Union[Device, _Mapping]]] = ...) -> None: ...

class GetDeviceRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetDeviceResponse(_message.Message):
    __slots__ = ("device",)
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    device: Device
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ...) -> None: ...

class SendCommandRequest(_message.Message):
    __slots__ = ("device", "name", "raw", "args", "timeout")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    device: str
    name: str
    raw: str
    args: _containers.RepeatedScalarFieldContainer[str]
    timeout: _duration_pb2.Duration
    def __init__(self, device: _Optional[str] = ..., name: _Optional[str] = ..., raw: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., timeout: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SendCommandResponse(_message.Message):
    __slots__ = ("reply", "values")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    reply: str
    values: _containers.RepeatedCompositeFieldContainer[_sample_pb2.Value]
    def __init__(self, reply: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_sample_pb2.Value, _Mapping]]] = ...) -> None: ...

class AbortCommandRequest(_message.Message):
    __slots__ = ("device", "reason")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    device: str
    reason: str
    def __init__(self, device: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AbortCommandResponse(_message.Message):
    __slots__ = ("aborted",)
    ABORTED_FIELD_NUMBER: _ClassVar[int]
    aborted: str
    def __init__(self, aborted: _Optional[str] = ...) -> None: ...

class WatchDevicesRequest(_message.Message):
    __slots__ = ("devices",)
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, devices: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchDevicesResponse(_message.Message):
    __slots__ = ("device", "timestamp_ns")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    device: Device
    timestamp_ns: int
    def __init__(self, device: _Optional[_Union[Device, _Mapping]] = ..., timestamp_ns: _Optional[int] = ...) -> None: ...
