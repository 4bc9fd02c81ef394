from allsource.v1 import config_pb2 as _config_pb2
from allsource.v1 import metrics_pb2 as _metrics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReloadConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("result",)
    RESULT_FIELD_NUMBER: _ClassVar[int]
    result: _config_pb2.ReloadResult
    def __init__(self, result: _Optional[_Union[_config_pb2.ReloadResult, _Mapping]] = ...) -> None: ...

class GetConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetConfigResponse(_message.Message):
    __slots__ = ("config",)
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    config: _config_pb2.ServiceConfig
    def __init__(self, config: _Optional[_Union[_config_pb2.ServiceConfig, _Mapping]] = ...) -> None: ...

class RefreshFeatureFlagsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RefreshFeatureFlagsResponse(_message.Message):
    __slots__ = ("flags",)
    FLAGS_FIELD_NUMBER: _ClassVar[int]
    flags: _containers.RepeatedCompositeFieldContainer[_config_pb2.FeatureFlag]
    def __init__(self, flags: _Optional[_Iterable[_Union[_config_pb2.FeatureFlag, _Mapping]]] = ...) -> None: ...

class GetMetricsRequest(_message.Message):
    __slots__ = ("max_methods",)
    MAX_METHODS_FIELD_NUMBER: _ClassVar[int]
    max_methods: int
    def __init__(self, max_methods: _Optional[int] = ...) -> None: ...

class GetMetricsResponse(_message.Message):
    __slots__ = ("metrics",)
    METRICS_FIELD_NUMBER: _ClassVar[int]
    metrics: _metrics_pb2.ServiceMetrics
    def __init__(self, metrics: _Optional[_Union[_metrics_pb2.ServiceMetrics, _Mapping]] = ...) -> None: ...
