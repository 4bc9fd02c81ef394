from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MethodMetrics(_message.Message):
    __slots__ = ("method", "calls", "errors", "p50_ms", "p99_ms")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    method: str
    calls: int
    errors: int
    p50_ms: float
    p99_ms: float
    def __init__(self, method: _Optional[str] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ...) -> None: ...

class ServiceMetrics(_message.Message):
    __slots__ = ("service", "address", "error", "calls", "errors", "in_flight", "p50_ms", "p99_ms", "methods", "cpu_seconds", "max_rss_bytes")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CALLS_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_RSS_BYTES_FIELD_NUMBER: _ClassVar[int]
    service: str
    address: str
    error: str
    calls: int
    errors: int
    in_flight: int
    p50_ms: float
    p99_ms: float
    methods: _containers.RepeatedCompositeFieldContainer[MethodMetrics]
    cpu_seconds: float
    max_rss_bytes: int
    def __init__(self, service: _Optional[str] = ..., address: _Optional[str] = ..., error: _Optional[str] = ..., calls: _Optional[int] = ..., errors: _Optional[int] = ..., in_flight: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., methods: _Optional[_Iterable[_Union[MethodMetrics, _Mapping]]] = ..., cpu_seconds: _Optional[float] = ..., max_rss_bytes: _Optional[int] = ...) -> None: ...
