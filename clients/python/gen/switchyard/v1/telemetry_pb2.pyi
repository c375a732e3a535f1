from buf.validate import validate_pb2 as _validate_pb2
from switchyard.v1 import device_pb2 as _device_pb2
from switchyard.v1 import sample_pb2 as _sample_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Selector(_message.Message):
    __slots__ = ("devices", "channels", "tags")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    tags: _containers.ScalarMap[str, str]
    def __init__(self, devices: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ("selector", "batch_window_ms", "max_batch", "since_ns", "deadband_abs", "deadband_rel", "max_rate_hz", "initial_values", "heartbeat_ms", "device_states")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    BATCH_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    DEADBAND_ABS_FIELD_NUMBER: _ClassVar[int]
    DEADBAND_REL_FIELD_NUMBER: _ClassVar[int]
    MAX_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    INITIAL_VALUES_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_MS_FIELD_NUMBER: _ClassVar[int]
    DEVICE_STATES_FIELD_NUMBER: _ClassVar[int]
    selector: Selector
    batch_window_ms: int
    max_batch: int
    since_ns: int
    deadband_abs: float
    deadband_rel: float
    max_rate_hz: float
    initial_values: bool
    heartbeat_ms: int
    device_states: bool
    def __init__(self, selector: _Optional[_Union[Selector, _Mapping]] = ..., batch_window_ms: _Optional[int] = ..., max_batch: _Optional[int] = ..., since_ns: _Optional[int] = ..., deadband_abs: _Optional[float] = ..., deadband_rel: _Optional[float] = ..., max_rate_hz: _Optional[float] = ..., initial_values: _Optional[bool] = ..., heartbeat_ms: _Optional[int] = ..., device_states: _Optional[bool] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ("samples", "dropped", "squashed", "initial", "heartbeat", "devices")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    SQUASHED_FIELD_NUMBER: _ClassVar[int]
    INITIAL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[_sample_pb2.Sample]
    dropped: int
    squashed: int
    initial: bool
    heartbeat: bool
    devices: _containers.RepeatedCompositeFieldContainer[_device_pb2.Device]
    def __init__(self, samples: _Optional[_Iterable[_Union[_sample_pb2.Sample, _Mapping]]] = ..., dropped: _Optional[int] = ..., squashed: _Optional[int] = ..., initial: _Optional[bool] = ..., heartbeat: _Optional[bool] = ..., devices: _Optional[_Iterable[_Union[_device_pb2.Device, _Mapping]]] = ...) -> None: ...

class GetLatestRequest(_message.Message):
    __slots__ = ("selector",)
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    selector: Selector
    def __init__(self, selector: _Optional[_Union[Selector, _Mapping]] = ...) -> None: ...

class GetLatestResponse(_message.Message):
    __slots__ = ("samples",)
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[_sample_pb2.Sample]
    def __init__(self, samples: _Optional[_Iterable[_Union[_sample_pb2.Sample, _Mapping]]] = ...) -> None: ...
