from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Quality(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUALITY_UNSPECIFIED: _ClassVar[Quality]
    QUALITY_GOOD: _ClassVar[Quality]
    QUALITY_COMM_ERROR: _ClassVar[Quality]
    QUALITY_TIMEOUT: _ClassVar[Quality]
    QUALITY_PARSE_ERROR: _ClassVar[Quality]
    QUALITY_DISCONNECTED: _ClassVar[Quality]
QUALITY_UNSPECIFIED: Quality
QUALITY_GOOD: Quality
QUALITY_COMM_ERROR: Quality
QUALITY_TIMEOUT: Quality
QUALITY_PARSE_ERROR: Quality
QUALITY_DISCONNECTED: Quality

class Value(_message.Message):
    __slots__ = ("double_value", "int_value", "string_value", "bool_value")
    DOUBLE_VALUE_FIELD_NUMBER: _ClassVar[int]
    INT_VALUE_FIELD_NUMBER: _ClassVar[int]
    STRING_VALUE_FIELD_NUMBER: _ClassVar[int]
    BOOL_VALUE_FIELD_NUMBER: _ClassVar[int]
    double_value: float
    int_value: int
    string_value: str
    bool_value: bool
    def __init__(self, double_value: _Optional[float] = ..., int_value: _Optional[int] = ..., string_value: _Optional[str] = ..., bool_value: _Optional[bool] = ...) -> None: ...

class Sample(_message.Message):
    __slots__ = ("device", "channel", "timestamp_ns", "seq", "value", "quality", "error")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    timestamp_ns: int
    seq: int
    value: Value
    quality: Quality
    error: str
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., timestamp_ns: _Optional[int] = ..., seq: _Optional[int] = ..., value: _Optional[_Union[Value, _Mapping]] = ..., quality: _Optional[_Union[Quality, str]] = ..., error: _Optional[str] = ...) -> None: ...
