from buf.validate import validate_pb2 as _validate_pb2
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

class SupervisionEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPERVISION_EVENT_KIND_UNSPECIFIED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_STARTING: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_STOPPED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_ADDED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_REMOVED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_STARTED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_EXITED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_RESTART_SCHEDULED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_LEAKED: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_AUTO_SHUTDOWN: _ClassVar[SupervisionEventKind]
    SUPERVISION_EVENT_KIND_STATUS: _ClassVar[SupervisionEventKind]
PROCESS_STATE_UNSPECIFIED: ProcessState
PROCESS_STATE_STARTING: ProcessState
PROCESS_STATE_RUNNING: ProcessState
PROCESS_STATE_BACKOFF: ProcessState
PROCESS_STATE_STOPPING: ProcessState
PROCESS_STATE_STOPPED: ProcessState
PROCESS_STATE_LEAKED: ProcessState
SUPERVISION_EVENT_KIND_UNSPECIFIED: SupervisionEventKind
SUPERVISION_EVENT_KIND_STARTING: SupervisionEventKind
SUPERVISION_EVENT_KIND_STOPPED: SupervisionEventKind
SUPERVISION_EVENT_KIND_ADDED: SupervisionEventKind
SUPERVISION_EVENT_KIND_REMOVED: SupervisionEventKind
SUPERVISION_EVENT_KIND_STARTED: SupervisionEventKind
SUPERVISION_EVENT_KIND_EXITED: SupervisionEventKind
SUPERVISION_EVENT_KIND_RESTART_SCHEDULED: SupervisionEventKind
SUPERVISION_EVENT_KIND_LEAKED: SupervisionEventKind
SUPERVISION_EVENT_KIND_AUTO_SHUTDOWN: SupervisionEventKind
SUPERVISION_EVENT_KIND_STATUS: SupervisionEventKind

class Process(_message.Message):
    __slots__ = ("id", "kind", "strategy", "restart", "state", "restarts", "last_exit", "started_ns", "next_restart_ns", "mailbox_depth", "children", "uptime_ns", "significant", "in_progress", "status")
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
    UPTIME_NS_FIELD_NUMBER: _ClassVar[int]
    SIGNIFICANT_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
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
    uptime_ns: int
    significant: bool
    in_progress: str
    status: str
    def __init__(self, id: _Optional[str] = ..., kind: _Optional[str] = ..., strategy: _Optional[str] = ..., restart: _Optional[str] = ..., state: _Optional[_Union[ProcessState, str]] = ..., restarts: _Optional[int] = ..., last_exit: _Optional[str] = ..., started_ns: _Optional[int] = ..., next_restart_ns: _Optional[int] = ..., mailbox_depth: _Optional[int] = ..., children: _Optional[_Iterable[_Union[Process, _Mapping]]] = ..., uptime_ns: _Optional[int] = ..., significant: _Optional[bool] = ..., in_progress: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class GetSupervisionTreeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetSupervisionTreeResponse(_message.Message):
    __slots__ = ("root",)
    ROOT_FIELD_NUMBER: _ClassVar[int]
    root: Process
    def __init__(self, root: _Optional[_Union[Process, _Mapping]] = ...) -> None: ...

class SupervisionEvent(_message.Message):
    __slots__ = ("seq", "timestamp_ns", "path", "child", "kind", "reason", "restarts", "next_restart_ns")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    CHILD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESTARTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_RESTART_NS_FIELD_NUMBER: _ClassVar[int]
    seq: int
    timestamp_ns: int
    path: str
    child: str
    kind: SupervisionEventKind
    reason: str
    restarts: int
    next_restart_ns: int
    def __init__(self, seq: _Optional[int] = ..., timestamp_ns: _Optional[int] = ..., path: _Optional[str] = ..., child: _Optional[str] = ..., kind: _Optional[_Union[SupervisionEventKind, str]] = ..., reason: _Optional[str] = ..., restarts: _Optional[int] = ..., next_restart_ns: _Optional[int] = ...) -> None: ...

class WatchSupervisionEventsRequest(_message.Message):
    __slots__ = ("include_snapshot", "processes", "kinds")
    INCLUDE_SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    PROCESSES_FIELD_NUMBER: _ClassVar[int]
    KINDS_FIELD_NUMBER: _ClassVar[int]
    include_snapshot: bool
    processes: _containers.RepeatedScalarFieldContainer[str]
    kinds: _containers.RepeatedScalarFieldContainer[SupervisionEventKind]
    def __init__(self, include_snapshot: _Optional[bool] = ..., processes: _Optional[_Iterable[str]] = ..., kinds: _Optional[_Iterable[_Union[SupervisionEventKind, str]]] = ...) -> None: ...

class WatchSupervisionEventsResponse(_message.Message):
    __slots__ = ("snapshot", "event", "dropped")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    snapshot: Process
    event: SupervisionEvent
    dropped: int
    def __init__(self, snapshot: _Optional[_Union[Process, _Mapping]] = ..., event: _Optional[_Union[SupervisionEvent, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...

class RestartProcessRequest(_message.Message):
    __slots__ = ("path",)
    PATH_FIELD_NUMBER: _ClassVar[int]
    path: str
    def __init__(self, path: _Optional[str] = ...) -> None: ...

class RestartProcessResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIdentityRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetIdentityResponse(_message.Message):
    __slots__ = ("name", "role", "authenticated", "method", "allowed_methods", "server_version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    AUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ALLOWED_METHODS_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    role: str
    authenticated: bool
    method: str
    allowed_methods: _containers.RepeatedScalarFieldContainer[str]
    server_version: str
    def __init__(self, name: _Optional[str] = ..., role: _Optional[str] = ..., authenticated: _Optional[bool] = ..., method: _Optional[str] = ..., allowed_methods: _Optional[_Iterable[str]] = ..., server_version: _Optional[str] = ...) -> None: ...

class WatchAuditRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class AuditRecord(_message.Message):
    __slots__ = ("timestamp_ns", "identity", "role", "method", "peer", "transport", "rpc", "device", "target", "args", "code", "reason", "error", "duration_ns", "user_agent", "client")
    TIMESTAMP_NS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    ARGS_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DURATION_NS_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    CLIENT_FIELD_NUMBER: _ClassVar[int]
    timestamp_ns: int
    identity: str
    role: str
    method: str
    peer: str
    transport: str
    rpc: str
    device: str
    target: str
    args: _containers.RepeatedScalarFieldContainer[str]
    code: str
    reason: str
    error: str
    duration_ns: int
    user_agent: str
    client: str
    def __init__(self, timestamp_ns: _Optional[int] = ..., identity: _Optional[str] = ..., role: _Optional[str] = ..., method: _Optional[str] = ..., peer: _Optional[str] = ..., transport: _Optional[str] = ..., rpc: _Optional[str] = ..., device: _Optional[str] = ..., target: _Optional[str] = ..., args: _Optional[_Iterable[str]] = ..., code: _Optional[str] = ..., reason: _Optional[str] = ..., error: _Optional[str] = ..., duration_ns: _Optional[int] = ..., user_agent: _Optional[str] = ..., client: _Optional[str] = ...) -> None: ...

class WatchAuditResponse(_message.Message):
    __slots__ = ("record", "dropped")
    RECORD_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    record: AuditRecord
    dropped: int
    def __init__(self, record: _Optional[_Union[AuditRecord, _Mapping]] = ..., dropped: _Optional[int] = ...) -> None: ...
