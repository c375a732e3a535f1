from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProcessState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROCESS_STATE_UNSPECIFIED: _ClassVar[ProcessState]
    PROCESS_STATE_STARTING: _ClassVar[ProcessState]
    PROCESS_STATE_RUNNING: _ClassVar[ProcessState]
    PROCESS_STATE_BACKOFF: _ClassVar[ProcessState]
    PROCESS_STATE_STOPPING: _ClassVar[ProcessState]
    PROCESS_STATE_STOPPED: _ClassVar[ProcessState]
    PROCESS_STATE_LEAKED: _ClassVar[ProcessState]
PROCESS_STATE_UNSPECIFIED: ProcessState
PROCESS_STATE_STARTING: ProcessState
PROCESS_STATE_RUNNING: ProcessState
PROCESS_STATE_BACKOFF: ProcessState
PROCESS_STATE_STOPPING: ProcessState
PROCESS_STATE_STOPPED: ProcessState
PROCESS_STATE_LEAKED: ProcessState

class Process(_message.Message):
    __slots__ = ("id", "kind", "strategy", "restart", "state", "restarts", "last_exit", "started_ns", "next_restart_ns", "mailbox_depth", "children")
    ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    RESTART_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    LAST_EXIT_FIELD_NUMBER: _ClassVar[int]
    STARTED_NS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RESTART_NS_FIELD_NUMBER: _ClassVar[int]
    MAILBOX_DEPTH_FIELD_NUMBER: _ClassVar[int]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    id: str
    kind: str
    strategy: str
    restart: str
    state: ProcessState
    restarts: int
    last_exit: str
    started_ns: int
    next_restart_ns: int
    mailbox_depth: int
    children: _containers.RepeatedCompositeFieldContainer[Process]
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., strategy: _Optional[str] = ..., restart: _Optional[str] = ..., state: _Optional[_Union[ProcessState, str]] = ..., restarts: _Optional[int] = ..., last_exit: _Optional[str] = ..., started_ns: _Optional[int] = ..., next_restart_ns: _Optional[int] = ..., mailbox_depth: _Optional[int] = ..., children: _Optional[_Iterable[_Union[Process, _Mapping]]] = ...) -> None: ...

class GetSupervisionTreeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSupervisionTreeResponse(_message.Message):
    __slots__ = ("root",)
    ROOT_FIELD_NUMBER: _ClassVar[int]
    root: Process
    def __init__(self, root: _Optional[_Union[Process, _Mapping]] = ...) -> None: ...
