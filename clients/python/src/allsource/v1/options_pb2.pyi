from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from typing import ClassVar as _ClassVar

DESCRIPTOR: _descriptor.FileDescriptor

class Permission(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERMISSION_UNSPECIFIED: _ClassVar[Permission]
    PERMISSION_AUTHENTICATED: _ClassVar[Permission]
    PERMISSION_READ: _ClassVar[Permission]
    PERMISSION_WRITE: _ClassVar[Permission]
    PERMISSION_METRICS: _ClassVar[Permission]
    PERMISSION_SCHEMAS: _ClassVar[Permission]
    PERMISSION_ADMIN: _ClassVar[Permission]
    PERMISSION_OPERATE: _ClassVar[Permission]

class RateCost(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RATE_COST_UNSPECIFIED: _ClassVar[RateCost]
    RATE_COST_CALL: _ClassVar[RateCost]
    RATE_COST_EVENTS: _ClassVar[RateCost]
    RATE_COST_PAGE: _ClassVar[RateCost]
    RATE_COST_STREAM: _ClassVar[RateCost]
PERMISSION_UNSPECIFIED: Permission
PERMISSION_AUTHENTICATED: Permission
PERMISSION_READ: Permission
PERMISSION_WRITE: Permission
PERMISSION_METRICS: Permission
PERMISSION_SCHEMAS: Permission
PERMISSION_ADMIN: Permission
PERMISSION_OPERATE: Permission
RATE_COST_UNSPECIFIED: RateCost
RATE_COST_CALL: RateCost
RATE_COST_EVENTS: RateCost
RATE_COST_PAGE: RateCost
RATE_COST_STREAM: RateCost
REQUIRED_PERMISSION_FIELD_NUMBER: _ClassVar[int]
required_permission: _descriptor.FieldDescriptor
ALLOW_UNAUTHENTICATED_FIELD_NUMBER: _ClassVar[int]
allow_unauthenticated: _descriptor.FieldDescriptor
AUDITED_FIELD_NUMBER: _ClassVar[int]
audited: _descriptor.FieldDescriptor
RATE_COST_FIELD_NUMBER: _ClassVar[int]
rate_cost: _descriptor.FieldDescriptor
