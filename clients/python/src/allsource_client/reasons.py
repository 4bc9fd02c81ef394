"""Generated from protos/ by tools/gen_protos.py; do not edit."""

from enum import StrEnum


class Reason(StrEnum):
    """The reason of the ErrorInfo every AllSource error carries (allsource.v1.ErrorReason)."""

    # INVALID_ARGUMENT: a request field is malformed; BadRequest violations name it.
    INVALID_ARGUMENT = "INVALID_ARGUMENT"

    # NOT_FOUND: the named resource does not exist in the caller's tenant.
    NOT_FOUND = "NOT_FOUND"

    # ALREADY_EXISTS: the resource to create exists already.
    ALREADY_EXISTS = "ALREADY_EXISTS"

    # FAILED_PRECONDITION: the system is not in a state the request needs.
    FAILED_PRECONDITION = "FAILED_PRECONDITION"

    # ABORTED: a concurrency conflict; re-read and retry.
    ABORTED = "ABORTED"

    # RESOURCE_EXHAUSTED: a limit was exceeded.
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"

    # UNAVAILABLE: a dependency is down; retry later.
    UNAVAILABLE = "UNAVAILABLE"

    # DEADLINE_EXCEEDED: the call ran out of time.
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"

    # INTERNAL: a bug or an unexpected failure; the server log has details under the request id (metadata request_id).
    INTERNAL = "INTERNAL"

    # UNAUTHENTICATED: no valid credential.
    UNAUTHENTICATED = "UNAUTHENTICATED"

    # PERMISSION_DENIED: the credential does not hold the permission the RPC declares (metadata permission).
    PERMISSION_DENIED = "PERMISSION_DENIED"

    # UNAVAILABLE: the service is draining; reconnect (to another replica) and resume.
    SHUTTING_DOWN = "SHUTTING_DOWN"

    # INVALID_ARGUMENT: the request message could not be decoded (corrupt protobuf, invalid UTF-8 in a
    # string field); metadata method names the RPC.
    MALFORMED_REQUEST = "MALFORMED_REQUEST"

    # UNAVAILABLE: the process is at its bound of concurrent work (calls in flight, subscriptions, queued
    # appends); RetryInfo says when to retry, here or on another replica. Nothing was done.
    OVERLOADED = "OVERLOADED"

    # RESOURCE_EXHAUSTED: a tenant quota would be exceeded; QuotaFailure names it, metadata limit and value
    # give the figure, and RetryInfo the wait (a window's reset, or a moment for a concurrent bound).
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"

    # RESOURCE_EXHAUSTED: a rate limit applies; RetryInfo gives the real wait.
    RATE_LIMITED = "RATE_LIMITED"

    # RESOURCE_EXHAUSTED: a subscriber read nothing for query.subscriber_stall_s while its buffer was full;
    # the subscription ended, metadata after_position says where to resume.
    SUBSCRIBER_TOO_SLOW = "SUBSCRIBER_TOO_SLOW"

    # RESOURCE_EXHAUSTED: the storage volume is (nearly) full; nothing was written. Reads go on, and writes
    # resume by themselves once space is freed; RetryInfo gives a delay.
    STORAGE_FULL = "STORAGE_FULL"

    # INVALID_ARGUMENT: a quota override names an unknown quota, or has no reason or no duration.
    INVALID_QUOTA_OVERRIDE = "INVALID_QUOTA_OVERRIDE"

    # UNAVAILABLE: rate limits are shared through Redis (limits.backend = "redis"), Redis does not answer
    # and limits.fail_open is false; RetryInfo gives a delay. Nothing was done.
    LIMITER_UNAVAILABLE = "LIMITER_UNAVAILABLE"

    # INVALID_ARGUMENT: an append is malformed; violations name each field (events[3].payload).
    INVALID_APPEND = "INVALID_APPEND"

    # INVALID_ARGUMENT: an event filter is malformed or contradictory.
    INVALID_FILTER = "INVALID_FILTER"

    # INVALID_ARGUMENT: a page token is damaged, or was issued for other parameters or another tenant.
    INVALID_PAGE_TOKEN = "INVALID_PAGE_TOKEN"

    # INVALID_ARGUMENT: an event id is not a UUID.
    INVALID_EVENT_ID = "INVALID_EVENT_ID"

    # INVALID_ARGUMENT: a snapshot is not at an existing version of an existing stream (internal).
    INVALID_SNAPSHOT = "INVALID_SNAPSHOT"

    # ABORTED: the stream is not at the expected version; metadata actual_version says where it is.
    WRONG_EXPECTED_VERSION = "WRONG_EXPECTED_VERSION"

    # ALREADY_EXISTS: an event id was appended before with different content or to another stream.
    DUPLICATE_EVENT_ID = "DUPLICATE_EVENT_ID"

    # INVALID_ARGUMENT: an event id appears twice in one append.
    DUPLICATE_EVENT_ID_IN_REQUEST = "DUPLICATE_EVENT_ID_IN_REQUEST"

    # INVALID_ARGUMENT: a request id was used before for a different request.
    REQUEST_ID_REUSED = "REQUEST_ID_REUSED"

    # NOT_FOUND: the stream has no events.
    STREAM_NOT_FOUND = "STREAM_NOT_FOUND"

    # NOT_FOUND: the tenant has no event with that id.
    EVENT_NOT_FOUND = "EVENT_NOT_FOUND"

    # FAILED_PRECONDITION: a JSON payload of the stream is not an object and cannot be folded.
    PAYLOAD_NOT_OBJECT = "PAYLOAD_NOT_OBJECT"

    # UNAVAILABLE: the storage service cannot be reached; nothing was written.
    STORAGE_UNAVAILABLE = "STORAGE_UNAVAILABLE"

    # UNKNOWN: the storage service failed without details.
    STORAGE_ERROR = "STORAGE_ERROR"

    # UNAVAILABLE: the storage engine failed to write; nothing of the append was stored.
    STORAGE_WRITE_FAILED = "STORAGE_WRITE_FAILED"

    # UNAVAILABLE: the storage engine failed while reading or writing.
    STORAGE_ENGINE_ERROR = "STORAGE_ENGINE_ERROR"

    # UNAVAILABLE: the storage engine is not open (starting or stopping).
    STORAGE_CLOSED = "STORAGE_CLOSED"

    # NOT_FOUND: a control-plane record does not exist (internal).
    RECORD_NOT_FOUND = "RECORD_NOT_FOUND"

    # ABORTED: a control-plane record changed since it was read (internal compare-and-set).
    RECORD_REVISION_MISMATCH = "RECORD_REVISION_MISMATCH"

    # PERMISSION_DENIED: a service may not read or write these control-plane records (internal).
    RECORD_ACCESS_DENIED = "RECORD_ACCESS_DENIED"

    # NOT_FOUND: the tenant does not exist (UNAUTHENTICATED when it is the credential's own).
    TENANT_NOT_FOUND = "TENANT_NOT_FOUND"

    # FAILED_PRECONDITION: the tenant is deactivated; its calls are refused until it is activated.
    TENANT_INACTIVE = "TENANT_INACTIVE"

    # ALREADY_EXISTS: a tenant with that id exists.
    TENANT_ALREADY_EXISTS = "TENANT_ALREADY_EXISTS"

    # FAILED_PRECONDITION: the id belongs to a tenant whose deletion has not finished.
    TENANT_BEING_DELETED = "TENANT_BEING_DELETED"

    # FAILED_PRECONDITION: the tenant kept changing while it was being updated; retry.
    TENANT_CONTENDED = "TENANT_CONTENDED"

    # FAILED_PRECONDITION: no internal tenant numbers are left.
    TENANT_NUMBERS_EXHAUSTED = "TENANT_NUMBERS_EXHAUSTED"

    # PERMISSION_DENIED: an internal call acts for another tenant than its scope (internal).
    TENANT_SCOPE_MISMATCH = "TENANT_SCOPE_MISMATCH"

    # INVALID_ARGUMENT: a tenant's fields are malformed.
    INVALID_TENANT = "INVALID_TENANT"

    # INVALID_ARGUMENT: x-allsource-tenant is given twice or empty.
    INVALID_TENANT_HEADER = "INVALID_TENANT_HEADER"

    # PERMISSION_DENIED: acting on another tenant needs PERMISSION_OPERATE.
    CROSS_TENANT_DENIED = "CROSS_TENANT_DENIED"

    # FAILED_PRECONDITION: the default tenant cannot be deactivated or deleted.
    DEFAULT_TENANT_PROTECTED = "DEFAULT_TENANT_PROTECTED"

    # INVALID_ARGUMENT: confirm_tenant_id must repeat the tenant id.
    DELETE_NOT_CONFIRMED = "DELETE_NOT_CONFIRMED"

    # PERMISSION_DENIED: PERMISSION_OPERATE exists only in the default tenant.
    OPERATOR_TENANT_ONLY = "OPERATOR_TENANT_ONLY"

    # UNAVAILABLE: the audit log cannot be written, so the act is refused.
    AUDIT_UNAVAILABLE = "AUDIT_UNAVAILABLE"

    # INVALID_ARGUMENT: no feature flag has that name.
    UNKNOWN_FEATURE_FLAG = "UNKNOWN_FEATURE_FLAG"

    # UNAUTHENTICATED: the call needs authorization: Bearer <access token or API key>.
    MISSING_CREDENTIALS = "MISSING_CREDENTIALS"

    # UNAUTHENTICATED: the authorization header is not a well-formed bearer credential.
    MALFORMED_CREDENTIALS = "MALFORMED_CREDENTIALS"

    # UNAUTHENTICATED: the token is not one this suite issued.
    INVALID_TOKEN = "INVALID_TOKEN"

    # UNAUTHENTICATED: the token is signed with an algorithm the suite does not accept.
    INVALID_ALGORITHM = "INVALID_ALGORITHM"

    # UNAUTHENTICATED: the token is for another audience.
    INVALID_AUDIENCE = "INVALID_AUDIENCE"

    # UNAUTHENTICATED: the token comes from another issuer.
    INVALID_ISSUER = "INVALID_ISSUER"

    # UNAUTHENTICATED: the token names a signing key the suite does not have.
    UNKNOWN_SIGNING_KEY = "UNKNOWN_SIGNING_KEY"

    # UNAUTHENTICATED: a refresh token where an access token is needed, or the other way round.
    WRONG_TOKEN_TYPE = "WRONG_TOKEN_TYPE"

    # UNAUTHENTICATED: the token has expired; refresh it or log in again.
    TOKEN_EXPIRED = "TOKEN_EXPIRED"

    # UNAUTHENTICATED: the token is not valid yet.
    TOKEN_NOT_YET_VALID = "TOKEN_NOT_YET_VALID"

    # UNAUTHENTICATED: the token, or its session, has been revoked.
    TOKEN_REVOKED = "TOKEN_REVOKED"

    # UNAUTHENTICATED: a refresh token was used twice; the whole session is revoked.
    REFRESH_TOKEN_REUSED = "REFRESH_TOKEN_REUSED"

    # UNAUTHENTICATED: no API key matches.
    INVALID_API_KEY = "INVALID_API_KEY"

    # UNAUTHENTICATED: the API key has been revoked.
    API_KEY_REVOKED = "API_KEY_REVOKED"

    # UNAUTHENTICATED: the API key has expired.
    API_KEY_EXPIRED = "API_KEY_EXPIRED"

    # NOT_FOUND: the tenant has no API key with that id.
    API_KEY_NOT_FOUND = "API_KEY_NOT_FOUND"

    # INVALID_ARGUMENT: an API key's fields are malformed.
    INVALID_API_KEY_REQUEST = "INVALID_API_KEY_REQUEST"

    # RESOURCE_EXHAUSTED: too many invalid API keys were tried; RetryInfo says when to try again.
    TOO_MANY_FAILED_ATTEMPTS = "TOO_MANY_FAILED_ATTEMPTS"

    # UNAUTHENTICATED: wrong username or password.
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"

    # RESOURCE_EXHAUSTED: too many failed logins; RetryInfo says when to try again.
    LOGIN_THROTTLED = "LOGIN_THROTTLED"

    # UNAUTHENTICATED: the user is disabled.
    USER_DISABLED = "USER_DISABLED"

    # NOT_FOUND: the tenant has no such user (UNAUTHENTICATED when it is the token's own).
    USER_NOT_FOUND = "USER_NOT_FOUND"

    # INVALID_ARGUMENT: a user's fields are malformed.
    INVALID_USER = "INVALID_USER"

    # ALREADY_EXISTS: the username is in use in the tenant.
    USERNAME_TAKEN = "USERNAME_TAKEN"

    # INVALID_ARGUMENT: the password does not meet the policy.
    WEAK_PASSWORD = "WEAK_PASSWORD"

    # FAILED_PRECONDITION: only token sessions log out; API keys are revoked instead.
    NOT_A_SESSION = "NOT_A_SESSION"

    # FAILED_PRECONDITION: only users have passwords.
    NOT_A_USER = "NOT_A_USER"

    # PERMISSION_DENIED: only the token's user or an administrator may revoke it.
    NOT_TOKEN_OWNER = "NOT_TOKEN_OWNER"

    # FAILED_PRECONDITION: users cannot delete themselves.
    CANNOT_DELETE_SELF = "CANNOT_DELETE_SELF"

    # FAILED_PRECONDITION: users cannot disable themselves.
    CANNOT_DISABLE_SELF = "CANNOT_DISABLE_SELF"

    # PERMISSION_DENIED: the RPC declares no permission, so nobody may call it.
    PERMISSION_NOT_DECLARED = "PERMISSION_NOT_DECLARED"

    # PERMISSION_DENIED: the credential to make or change could do more than its maker.
    PERMISSION_ESCALATION = "PERMISSION_ESCALATION"

    # PERMISSION_DENIED: the credential is limited to other streams or event types.
    SCOPE_RESTRICTED = "SCOPE_RESTRICTED"

    # RESOURCE_EXHAUSTED: the auth change feed is contended; retry.
    FEED_CONTENDED = "FEED_CONTENDED"

    # FAILED_PRECONDITION: the current signing key is missing from storage.
    SIGNING_KEY_MISSING = "SIGNING_KEY_MISSING"

    # FAILED_PRECONDITION: the signing key cannot be unsealed with this internal.service_secret.
    SIGNING_KEY_SEALED = "SIGNING_KEY_SEALED"

    # UNAUTHENTICATED: an internal call carries no service scope (internal).
    SERVICE_CREDENTIALS_MISSING = "SERVICE_CREDENTIALS_MISSING"

    # UNAUTHENTICATED: an internal call carries a forged or malformed scope (internal).
    SERVICE_CREDENTIALS_INVALID = "SERVICE_CREDENTIALS_INVALID"

    # UNAUTHENTICATED: an internal call's scope has expired (internal).
    SERVICE_CREDENTIALS_EXPIRED = "SERVICE_CREDENTIALS_EXPIRED"

    # PERMISSION_DENIED: this service may not make this internal call (internal).
    SERVICE_NOT_ALLOWED = "SERVICE_NOT_ALLOWED"

    # FAILED_PRECONDITION: the stream was hard-deleted (tombstoned) and can never be written again.
    STREAM_DELETED = "STREAM_DELETED"

    # ABORTED: the stream's metadata is not at the expected metadata version; metadata actual_version.
    WRONG_METADATA_VERSION = "WRONG_METADATA_VERSION"

    # INVALID_ARGUMENT: stream metadata is malformed or too large (BadRequest says which field).
    INVALID_STREAM_METADATA = "INVALID_STREAM_METADATA"

    # INVALID_ARGUMENT: DeleteEvents criteria are missing, malformed or too large.
    INVALID_DELETE_CRITERIA = "INVALID_DELETE_CRITERIA"

    # NOT_FOUND: the tenant has no consumer group of this name.
    CONSUMER_GROUP_NOT_FOUND = "CONSUMER_GROUP_NOT_FOUND"

    # ALREADY_EXISTS: the tenant has a consumer group of this name already.
    CONSUMER_GROUP_EXISTS = "CONSUMER_GROUP_EXISTS"

    # INVALID_ARGUMENT: a consumer group's definition or settings are invalid; BadRequest violations name them.
    INVALID_CONSUMER_GROUP = "INVALID_CONSUMER_GROUP"

    # RESOURCE_EXHAUSTED: the consumer group has as many consumers as it may hold.
    TOO_MANY_CONSUMERS = "TOO_MANY_CONSUMERS"

    # INVALID_ARGUMENT: a Consume message is out of order (no join first, or a second join).
    INVALID_CONSUME_MESSAGE = "INVALID_CONSUME_MESSAGE"

    # NOT_FOUND: the destination holds no complete backup of this id.
    BACKUP_NOT_FOUND = "BACKUP_NOT_FOUND"

    # DATA_LOSS: a chunk of the backup (or of its chain) is missing or does not match its checksum;
    # metadata chunk names it. Nothing was restored.
    BACKUP_CORRUPT = "BACKUP_CORRUPT"

    # FAILED_PRECONDITION: the backup's format is newer than this server reads, or its manifest is damaged.
    BACKUP_FORMAT_UNSUPPORTED = "BACKUP_FORMAT_UNSUPPORTED"

    # FAILED_PRECONDITION: an incremental backup's chain is incomplete (an ancestor is missing).
    BACKUP_CHAIN_BROKEN = "BACKUP_CHAIN_BROKEN"

    # UNAVAILABLE: a backup or restore of the same tenants is already running or waiting on this storage
    # service (others wait their turn), or too many are waiting; retry after it.
    BACKUP_BUSY = "BACKUP_BUSY"

    # UNAVAILABLE: the backup destination (directory or S3) could not be read or written.
    BACKUP_DESTINATION_FAILED = "BACKUP_DESTINATION_FAILED"

    # FAILED_PRECONDITION: the restore's target tenant has data; restore only into an absent, deleted or
    # empty tenant.
    RESTORE_TARGET_NOT_EMPTY = "RESTORE_TARGET_NOT_EMPTY"

    # INVALID_ARGUMENT: a backup, restore or schedule request is malformed; BadRequest names the fields.
    INVALID_BACKUP_REQUEST = "INVALID_BACKUP_REQUEST"

    # FAILED_PRECONDITION: the backup has incremental backups depending on it; delete them first.
    BACKUP_HAS_DEPENDENTS = "BACKUP_HAS_DEPENDENTS"

    # NOT_FOUND: there is no backup schedule of this name.
    BACKUP_SCHEDULE_NOT_FOUND = "BACKUP_SCHEDULE_NOT_FOUND"

    # UNAVAILABLE: a follower of storage's commit feed (a query replica's read cache) did not acknowledge
    # a message within storage.commit_feed_ack_timeout_s and was cut off; it follows again from scratch.
    COMMIT_FOLLOWER_CUT_OFF = "COMMIT_FOLLOWER_CUT_OFF"

    # RESOURCE_EXHAUSTED (one result of a batch read): the results before it took the call's byte bound
    # (the tenant's max_result_bytes, at most 4 MiB); ask for this one again.
    BATCH_RESULT_TOO_LARGE = "BATCH_RESULT_TOO_LARGE"

    # FAILED_PRECONDITION: the stream's folded entity state would be larger than
    # query.max_entity_state_bytes (metadata limit); fold it in the application from ReadStream.
    ENTITY_STATE_TOO_LARGE = "ENTITY_STATE_TOO_LARGE"

    # OUT_OF_RANGE: a subscription resumes after a position beyond the tenant's last committed one
    # (metadata head_position): that position is from another history of the tenant (deleted and made
    # again, or restored to an earlier point); resume from head_position or earlier.
    POSITION_BEYOND_HEAD = "POSITION_BEYOND_HEAD"

    # UNAVAILABLE: a read's min_position was not reached within query.min_position_wait_ms (the position
    # is beyond the tenant's log, or this replica is behind); metadata min_position and head_position.
    # Retry after RetryInfo's delay, or through another replica.
    MIN_POSITION_NOT_REACHED = "MIN_POSITION_NOT_REACHED"
