from buf.validate import validate_pb2 as _validate_pb2
from switchyard.v1 import sample_pb2 as _sample_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_NO_ALARM: _ClassVar[Severity]
    SEVERITY_MINOR: _ClassVar[Severity]
    SEVERITY_MAJOR: _ClassVar[Severity]
    SEVERITY_INVALID: _ClassVar[Severity]

class AlarmCondition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALARM_CONDITION_UNSPECIFIED: _ClassVar[AlarmCondition]
    ALARM_CONDITION_NONE: _ClassVar[AlarmCondition]
    ALARM_CONDITION_COMM: _ClassVar[AlarmCondition]
    ALARM_CONDITION_STALE: _ClassVar[AlarmCondition]
    ALARM_CONDITION_HIHI: _ClassVar[AlarmCondition]
    ALARM_CONDITION_LOLO: _ClassVar[AlarmCondition]
    ALARM_CONDITION_HIGH: _ClassVar[AlarmCondition]
    ALARM_CONDITION_LOW: _ClassVar[AlarmCondition]
    ALARM_CONDITION_READBACK: _ClassVar[AlarmCondition]

class AlarmEvent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALARM_EVENT_UNSPECIFIED: _ClassVar[AlarmEvent]
    ALARM_EVENT_RAISED: _ClassVar[AlarmEvent]
    ALARM_EVENT_CHANGED: _ClassVar[AlarmEvent]
    ALARM_EVENT_CLEARED: _ClassVar[AlarmEvent]
    ALARM_EVENT_ACKED: _ClassVar[AlarmEvent]
    ALARM_EVENT_SHELVED: _ClassVar[AlarmEvent]
    ALARM_EVENT_UNSHELVED: _ClassVar[AlarmEvent]
    ALARM_EVENT_LIMITS_CHANGED: _ClassVar[AlarmEvent]
SEVERITY_UNSPECIFIED: Severity
SEVERITY_NO_ALARM: Severity
SEVERITY_MINOR: Severity
SEVERITY_MAJOR: Severity
SEVERITY_INVALID: Severity
ALARM_CONDITION_UNSPECIFIED: AlarmCondition
ALARM_CONDITION_NONE: AlarmCondition
ALARM_CONDITION_COMM: AlarmCondition
ALARM_CONDITION_STALE: AlarmCondition
ALARM_CONDITION_HIHI: AlarmCondition
ALARM_CONDITION_LOLO: AlarmCondition
ALARM_CONDITION_HIGH: AlarmCondition
ALARM_CONDITION_LOW: AlarmCondition
ALARM_CONDITION_READBACK: AlarmCondition
ALARM_EVENT_UNSPECIFIED: AlarmEvent
ALARM_EVENT_RAISED: AlarmEvent
ALARM_EVENT_CHANGED: AlarmEvent
ALARM_EVENT_CLEARED: AlarmEvent
ALARM_EVENT_ACKED: AlarmEvent
ALARM_EVENT_SHELVED: AlarmEvent
ALARM_EVENT_UNSHELVED: AlarmEvent
ALARM_EVENT_LIMITS_CHANGED: AlarmEvent

class Threshold(_message.Message):
    __slots__ = ("value", "severity")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    value: float
    severity: Severity
    def __init__(self, value: _Optional[float] = ..., severity: _Optional[_Union[Severity, str]] = ...) -> None: ...

class AlarmLimits(_message.Message):
    __slots__ = ("hihi", "high", "low", "lolo", "hysteresis", "delay_ms", "delay_samples", "stale_after_ms", "setpoint", "tolerance", "readback_severity", "readback_delay_ms")
    HIHI_FIELD_NUMBER: _ClassVar[int]
    HIGH_FIELD_NUMBER: _ClassVar[int]
    LOW_FIELD_NUMBER: _ClassVar[int]
    LOLO_FIELD_NUMBER: _ClassVar[int]
    HYSTERESIS_FIELD_NUMBER: _ClassVar[int]
    DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    DELAY_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    STALE_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    SETPOINT_FIELD_NUMBER: _ClassVar[int]
    TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    READBACK_SEVERITY_FIELD_NUMBER: _ClassVar[int]
    READBACK_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    hihi: Threshold
    high: Threshold
    low: Threshold
    lolo: Threshold
    hysteresis: float
    delay_ms: int
    delay_samples: int
    stale_after_ms: int
    setpoint: str
    tolerance: float
    readback_severity: Severity
    readback_delay_ms: int
    def __init__(self, hihi: _Optional[_Union[Threshold, _Mapping]] = ..., high: _Optional[_Union[Threshold, _Mapping]] = ..., low: _Optional[_Union[Threshold, _Mapping]] = ..., lolo: _Optional[_Union[Threshold, _Mapping]] = ..., hysteresis: _Optional[float] = ..., delay_ms: _Optional[int] = ..., delay_samples: _Optional[int] = ..., stale_after_ms: _Optional[int] = ..., setpoint: _Optional[str] = ..., tolerance: _Optional[float] = ..., readback_severity: _Optional[_Union[Severity, str]] = ..., readback_delay_ms: _Optional[int] = ...) -> None: ...

class Alarm(_message.Message):
    __slots__ = ("device", "channel", "group", "condition", "severity", "latched", "acked", "since_ns", "value", "quality", "message", "acked_by", "ack_comment", "acked_at_ns", "shelved_until_ns", "shelved_by", "shelve_comment", "limits")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    CONDITION_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    LATCHED_FIELD_NUMBER: _ClassVar[int]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    SINCE_NS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ACKED_BY_FIELD_NUMBER: _ClassVar[int]
    ACK_COMMENT_FIELD_NUMBER: _ClassVar[int]
    ACKED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    SHELVED_UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    SHELVED_BY_FIELD_NUMBER: _ClassVar[int]
    SHELVE_COMMENT_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    group: str
    condition: AlarmCondition
    severity: Severity
    latched: Severity
    acked: bool
    since_ns: int
    value: float
    quality: _sample_pb2.Quality
    message: str
    acked_by: str
    ack_comment: str
    acked_at_ns: int
    shelved_until_ns: int
    shelved_by: str
    shelve_comment: str
    limits: AlarmLimits
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., group: _Optional[str] = ..., condition: _Optional[_Union[AlarmCondition, str]] = ..., severity: _Optional[_Union[Severity, str]] = ..., latched: _Optional[_Union[Severity, str]] = ..., acked: _Optional[bool] = ..., since_ns: _Optional[int] = ..., value: _Optional[float] = ..., quality: _Optional[_Union[_sample_pb2.Quality, str]] = ..., message: _Optional[str] = ..., acked_by: _Optional[str] = ..., ack_comment: _Optional[str] = ..., acked_at_ns: _Optional[int] = ..., shelved_until_ns: _Optional[int] = ..., shelved_by: _Optional[str] = ..., shelve_comment: _Optional[str] = ..., limits: _Optional[_Union[AlarmLimits, _Mapping]] = ...) -> None: ...

class AlarmTransition(_message.Message):
    __slots__ = ("timestamp_ns", "event", "alarm", "who", "comment")
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    event: AlarmEvent
    alarm: Alarm
    who: str
    comment: str
    def __init__(self, timestamp_ns: _Optional[int] = ..., event: _Optional[_Union[AlarmEvent, str]] = ..., alarm: _Optional[_Union[Alarm, _Mapping]] = ..., who: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class AlarmFilter(_message.Message):
    __slots__ = ("devices", "channels", "groups")
    DEVICES_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    devices: _containers.RepeatedScalarFieldContainer[str]
    channels: _containers.RepeatedScalarFieldContainer[str]
    groups: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, devices: _Optional[_Iterable[str]] = ..., channels: _Optional[_Iterable[str]] = ..., groups: _Optional[_Iterable[str]] = ...) -> None: ...

class ListActiveAlarmsRequest(_message.Message):
    __slots__ = ("filter", "include_shelved")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_SHELVED_FIELD_NUMBER: _ClassVar[int]
    filter: AlarmFilter
    include_shelved: bool
    def __init__(self, filter: _Optional[_Union[AlarmFilter, _Mapping]] = ..., include_shelved: _Optional[bool] = ...) -> None: ...

class ListActiveAlarmsResponse(_message.Message):
    __slots__ = ("alarms",)
    ALARMS_FIELD_NUMBER: _ClassVar[int]
    alarms: _containers.RepeatedCompositeFieldContainer[Alarm]
    def __init__(self, alarms: _Optional[_Iterable[_Union[Alarm, _Mapping]]] = ...) -> None: ...

class WatchAlarmsRequest(_message.Message):
    __slots__ = ("filter",)
    FILTER_FIELD_NUMBER: _ClassVar[int]
    filter: AlarmFilter
    def __init__(self, filter: _Optional[_Union[AlarmFilter, _Mapping]] = ...) -> None: ...

class WatchAlarmsResponse(_message.Message):
    __slots__ = ("transition", "dropped")
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    transition: AlarmTransition
    dropped: int
    def __init__(self, transition: _Optional[_Union[AlarmTransition, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...

class AcknowledgeRequest(_message.Message):
    __slots__ = ("device", "channel", "who", "comment")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    who: str
    comment: str
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., who: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class AcknowledgeResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...

class ShelveRequest(_message.Message):
    __slots__ = ("device", "channel", "until_ns", "who", "comment")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    until_ns: int
    who: str
    comment: str
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., until_ns: _Optional[int] = ..., who: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class ShelveResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...

class GetAlarmLimitsRequest(_message.Message):
    __slots__ = ("device", "channel")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ...) -> None: ...

class GetAlarmLimitsResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...

class SetAlarmLimitsRequest(_message.Message):
    __slots__ = ("device", "channel", "limits", "who", "comment")
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    WHO_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    device: str
    channel: str
    limits: AlarmLimits
    who: str
    comment: str
    def __init__(self, device: _Optional[str] = ..., channel: _Optional[str] = ..., limits: _Optional[_Union[AlarmLimits, _Mapping]] = ..., who: _Optional[str] = ..., comment: _Optional[str] = ...) -> None: ...

class SetAlarmLimitsResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...
