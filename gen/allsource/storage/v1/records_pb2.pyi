from allsource.v1 import auth_pb2 as _auth_pb2
from allsource.v1 import options_pb2 as _options_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AuthChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUTH_CHANGE_KIND_UNSPECIFIED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_TOKEN_REVOKED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_FAMILY_REVOKED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_USER_CHANGED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_API_KEY_CHANGED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_SIGNING_KEY_ADDED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_TENANT_CHANGED: _ClassVar[AuthChangeKind]
    AUTH_CHANGE_KIND_LIMITS_CHANGED: _ClassVar[AuthChangeKind]
AUTH_CHANGE_KIND_UNSPECIFIED: AuthChangeKind
AUTH_CHANGE_KIND_TOKEN_REVOKED: AuthChangeKind
AUTH_CHANGE_KIND_FAMILY_REVOKED: AuthChangeKind
AUTH_CHANGE_KIND_USER_CHANGED: AuthChangeKind
AUTH_CHANGE_KIND_API_KEY_CHANGED: AuthChangeKind
AUTH_CHANGE_KIND_SIGNING_KEY_ADDED: AuthChangeKind
AUTH_CHANGE_KIND_TENANT_CHANGED: AuthChangeKind
AUTH_CHANGE_KIND_LIMITS_CHANGED: AuthChangeKind

class UserRecord(_message.Message):
    __slots__ = ("user_id", "username", "tenant_id", "role", "password_hash", "disabled", "created_at_ns", "password_changed_at_ns", "tokens_not_before_ns")
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    USERNAME_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_HASH_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_CHANGED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    TOKENS_NOT_BEFORE_NS_FIELD_NUMBER: _ClassVar[int]
    user_id: str
    username: str
    tenant_id: str
    role: _auth_pb2.Role
    password_hash: str
    disabled: bool
    created_at_ns: int
    password_changed_at_ns: int
    tokens_not_before_ns: int
    def __init__(self, user_id: _Optional[str] = ..., username: _Optional[str] = ..., tenant_id: _Optional[str] = ..., role: _Optional[_Union[_auth_pb2.Role, str]] = ..., password_hash: _Optional[str] = ..., disabled: _Optional[bool] = ..., created_at_ns: _Optional[int] = ..., password_changed_at_ns: _Optional[int] = ..., tokens_not_before_ns: _Optional[int] = ...) -> None: ...

class ApiKeyRecord(_message.Message):
    __slots__ = ("key_id", "tenant_id", "name", "role", "permissions", "stream_id_prefix", "event_types", "expires_at_ns", "created_at_ns", "created_by", "secret_hash", "previous_secret_hash", "previous_valid_until_ns", "revoked")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PERMISSIONS_FIELD_NUMBER: _ClassVar[int]
    STREAM_ID_PREFIX_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_NS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    CREATED_BY_FIELD_NUMBER: _ClassVar[int]
    SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SECRET_HASH_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_VALID_UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    REVOKED_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    tenant_id: str
    name: str
    role: _auth_pb2.Role
    permissions: _containers.RepeatedScalarFieldContainer[_options_pb2.Permission]
    stream_id_prefix: str
    event_types: _containers.RepeatedScalarFieldContainer[str]
    expires_at_ns: int
    created_at_ns: int
    created_by: str
    secret_hash: bytes
    previous_secret_hash: bytes
    previous_valid_until_ns: int
    revoked: bool
    def __init__(self, key_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., name: _Optional[str] = ..., role: _Optional[_Union[_auth_pb2.Role, str]] = ..., permissions: _Optional[_Iterable[_Union[_options_pb2.Permission, str]]] = ..., stream_id_prefix: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., expires_at_ns: _Optional[int] = ..., created_at_ns: _Optional[int] = ..., created_by: _Optional[str] = ..., secret_hash: _Optional[bytes] = ..., previous_secret_hash: _Optional[bytes] = ..., previous_valid_until_ns: _Optional[int] = ..., revoked: _Optional[bool] = ...) -> None: ...

class RefreshTokenRecord(_message.Message):
    __slots__ = ("jti", "family", "user_id", "tenant_id", "used", "expires_at_ns")
    JTI_FIELD_NUMBER: _ClassVar[int]
    FAMILY_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_NS_FIELD_NUMBER: _ClassVar[int]
    jti: str
    family: str
    user_id: str
    tenant_id: str
    used: bool
    expires_at_ns: int
    def __init__(self, jti: _Optional[str] = ..., family: _Optional[str] = ..., user_id: _Optional[str] = ..., tenant_id: _Optional[str] = ..., used: _Optional[bool] = ..., expires_at_ns: _Optional[int] = ...) -> None: ...

class SigningKeyRecord(_message.Message):
    __slots__ = ("kid", "algorithm", "private_pem", "public_pem", "created_at_ns")
    KID_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    PRIVATE_PEM_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_PEM_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_NS_FIELD_NUMBER: _ClassVar[int]
    kid: str
    algorithm: str
    private_pem: bytes
    public_pem: bytes
    created_at_ns: int
    def __init__(self, kid: _Optional[str] = ..., algorithm: _Optional[str] = ..., private_pem: _Optional[bytes] = ..., public_pem: _Optional[bytes] = ..., created_at_ns: _Optional[int] = ...) -> None: ...

class AuthChange(_message.Message):
    __slots__ = ("kind", "tenant_id", "subject", "until_ns", "at_ns")
    KIND_FIELD_NUMBER: _ClassVar[int]
    TENANT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    UNTIL_NS_FIELD_NUMBER: _ClassVar[int]
    AT_NS_FIELD_NUMBER: _ClassVar[int]
    kind: AuthChangeKind
    tenant_id: str
    subject: str
    until_ns: int
    at_ns: int
    def __init__(self, kind: _Optional[_Union[AuthChangeKind, str]] = ..., tenant_id: _Optional[str] = ..., subject: _Optional[str] = ..., until_ns: _Optional[int] = ..., at_ns: _Optional[int] = ...) -> None: ...
