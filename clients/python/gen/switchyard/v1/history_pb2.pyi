from buf.validate import validate_pb2 as _validate_pb2
from switchyard.v1 import sample_pb2 as _sample_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Aggregate(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATE_UNSPECIFIED: _ClassVar[Aggregate]
    AGGREGATE_AVG: _ClassVar[Aggregate]
    AGGREGATE_MIN: _ClassVar[Aggregate]
    AGGREGATE_MAX: _ClassVar[Aggregate]
    AGGREGATE_FIRST: _ClassVar[Aggregate]
    AGGREGATE_LAST: _ClassVar[Aggregate]
    AGGREGATE_COUNT: _ClassVar[Aggregate]
AGGREGATE_UNSPECIFIED: Aggregate
AGGREGATE_AVG: Aggregate
AGGREGATE_MIN: Aggregate
AGGREGATE_MAX: Aggregate
AGGREGATE_FIRST: Aggregate
AGGREGATE_LAST: Aggregate
AGGREGATE_COUNT: Aggregate

class QueryHistoryRequest(_message.Message):
    __slots__ = ("device", "channel", "start_ns", "end_ns", "limit", "aggregate", "interval_ms")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    START_NS_FIELD_NUMBER: _ClassVar[int]
    END_NS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    AGGREGATE_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    start_ns: int
    end_ns: int
    limit: int
    aggregate: Aggregate
    interval_ms: int
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., start_ns: _Optional[int] = ..., end_ns: _Optional[int] = ..., limit: _Optional[int] = ..., aggregate: _Optional[_Union[Aggregate, str]] = ..., interval_ms: _Optional[int] = ...) -> None: ...

class HistoryBucket(_message.Message):
    __slots__ = ("timestamp_ns", "value", "count")
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    value: float
    count: int
    def __init__(self, timestamp_ns: _Optional[int] = ..., value: _Optional[float] = ..., count: _Optional[int] = ...) -> None: ...

class QueryHistoryResponse(_message.Message):
    __slots__ = ("samples", "buckets", "truncated")
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    samples: _containers.RepeatedCompositeFieldContainer[_sample_pb2.Sample]
    buckets: _containers.RepeatedCompositeFieldContainer[HistoryBucket]
    truncated: bool
    def __init__(self, samples: _Optional[_Iterable[_Union[_sample_pb2.Sample, _Mapping]]] = ..., buckets: _Optional[_Iterable[_Union[HistoryBucket, _Mapping]]] = ..., truncated: _Optional[bool] = ...) -> None: ...
