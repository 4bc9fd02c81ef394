"""The typed settings model shared by every service (loaded and layered by shared.config.loader).

A field marked `reloadable` takes effect on a configuration reload (SIGHUP or AdminService.ReloadConfig)
without a restart; a change to any other field is reported as needing a restart and is not applied.
Fields of type SecretStr are secrets: they may hold a reference (env:, file:, vault:, aws-sm:) that is
resolved at start and on reload, and they are redacted wherever configuration is shown.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from shared.config.flag_registry import DEFINITIONS

MiB = 1024 * 1024


def Reloadable(default: Any, **kw: Any) -> Any:
    """A Field whose new value a reload applies without a restart."""
    return Field(default, json_schema_extra={"reloadable": True}, **kw)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class Endpoint(_Section):
    """Where a service listens, and the address other services use to reach it."""

    host: str = "127.0.0.1"
    port: int = Field(default=0, ge=0, le=65535)
    # Address other services dial; empty means host:port (with 0.0.0.0 / :: dialled as loopback).
    address: str = ""

    def bind(self) -> str:
        """The address to listen on."""
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        return f"{host}:{self.port}"

    def dial(self) -> str:
        """The address to connect to."""
        if self.address:
            return self.address
        host = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(self.host, self.host)
        host = f"[{host}]" if ":" in host and not host.startswith("[") else host
        return f"{host}:{self.port}"


class StorageSettings(Endpoint):
    """The storage service: the only process that opens the database."""

    port: int = Field(default=50054, ge=0, le=65535)
    # The engine behind the storage service (services.storage.factory): RocksDB, embedded.
    backend: Literal["rocksdb"] = "rocksdb"
    data_dir: str = "./data"
    # fsync the WAL on every group commit and every acknowledged record or tenant write. Off trades the
    # last moments of acknowledged writes on a machine crash (not a process crash) for throughput.
    sync_writes: bool = Reloadable(True)
    # A write batch closes once it holds this many key writes (events x 5 + heads); one append is never split.
    group_commit_max_entries: int = Reloadable(4000, ge=1)
    # Stream heads kept in memory by the writer.
    stream_cache_size: int = Reloadable(100_000, ge=0)
    # A retry with a request id gets the first append's result for this long; after it the id counts as
    # new, and the sweep (every request_id_sweep_interval_s; 0: never) removes the stored result and
    # takes its bytes off the tenant's stored bytes (services/storage/request_sweep.py).
    request_id_ttl_s: int = Reloadable(7 * 24 * 3600, ge=60)
    request_id_sweep_interval_s: float = Reloadable(3600.0, ge=0)
    # Writes are refused (STORAGE_FULL) while the data directory's volume has less than this free.
    min_free_bytes: int = Reloadable(64 * MiB, ge=0)
    # RocksDB memory (docs/PERFORMANCE.md, Tuning, has sizes for a small and a large machine): the
    # write buffer (memtable) of each column family; all memtables together (0: no shared bound, each
    # family up to two write buffers); one LRU block cache of decoded SST blocks shared by every family.
    # A backup's checkpoint first flushes every memtable, so the total bounds that flush: with 64 MiB a
    # full backup after 1M events took 0.23-0.25 s, with 256 MiB 0.53-0.56 s (0.33-0.38 s of it the
    # flush), at the same ingest rate (bench/backup.py, docs/PERFORMANCE.md).
    write_buffer_bytes: int = Field(default=64 * MiB, ge=64 * 1024)
    db_write_buffer_bytes: int = Field(default=64 * MiB, ge=0)
    block_cache_bytes: int = Field(default=128 * MiB, ge=MiB)
    # RocksDB's background threads (flushes and compactions; a quarter of them flush, at least one). With
    # 8, two memtables flush at once: a backup's checkpoint after 1M events took 0.32 s instead of 0.49 s.
    background_jobs: int = Field(default=8, ge=2, le=64)
    # Live subscriptions storage follows for all the query replicas together; past it, UNAVAILABLE.
    max_subscriptions: int = Reloadable(20_000, ge=1)
    # Largest read response, in bytes; reads return fewer events rather than exceed it.
    max_read_bytes: int = Reloadable(4 * MiB, ge=64 * 1024)
    # How often the lifecycle sweep removes events hidden by stream metadata (max_age, max_count,
    # truncate_before) and deletions from disk; a metadata change or deletion also starts one soon after.
    lifecycle_sweep_interval_s: float = Reloadable(60.0, gt=0)
    # The commit feed (FollowCommits) that keeps the query replicas' read caches exact: an append or a
    # deletion is answered once every follower acknowledged it, or after this long, when the follower
    # is cut off (it stops using its cache until it follows again). Heartbeats go out every
    # commit_feed_heartbeat_s.
    commit_feed_ack_timeout_s: float = Reloadable(2.0, gt=0, le=30)
    commit_feed_heartbeat_s: float = Reloadable(0.1, gt=0, le=5)
    # Followers storage serves at once (query replicas; each holds one feed).
    max_commit_followers: int = Reloadable(64, ge=1, le=1024)
    # The (stream category, event type) index: a stream's category is its id before the first
    # separator (KurrentDB's convention; ids without it have no category). Changing it rebuilds the
    # index in the background at the next start (ListEvents walks the event-type index meanwhile).
    category_separator: str = Field(default="-", min_length=1, max_length=8, pattern=r"^[!-~]+$")
    # The backfill of that index (events from before it existed, or before a separator change) writes
    # this many events' entries per batch (on the event loop: ~5 ms for 1,000), pausing
    # index_backfill_pause_ms between batches.
    index_backfill_batch: int = Reloadable(1000, ge=1, le=100_000)
    index_backfill_pause_ms: float = Reloadable(1.0, ge=0, le=1000)
    # GetIndexStats counts at most this many keys per index and tenant (then says the figures are partial);
    # counting takes about 0.8 s per million keys here.
    index_stats_max_keys: int = Reloadable(1_000_000, ge=1000, le=100_000_000)


class IngestSettings(Endpoint):
    """The ingest service."""

    port: int = Field(default=50051, ge=0, le=65535)
    # Concurrent appends are coalesced into one storage call; a second one (up to this many) starts only
    # when coalesce_parallel_bytes are waiting (bulk ingest).
    storage_calls_in_flight: int = Reloadable(2, ge=1, le=64)
    coalesce_parallel_bytes: int = Reloadable(1024 * 1024, ge=0)
    # Commit delay: under load (the previous storage call carried several appends), wait up to this long
    # for as many appends as that call carried plus those queued, at most coalesce_linger_until, before
    # the next call. 0 turns it off.
    coalesce_linger_ms: float = Reloadable(3.0, ge=0, le=50)
    coalesce_linger_until: int = Reloadable(20, ge=1)
    # One storage call carries at most this many appends and bytes.
    coalesce_max_appends: int = Reloadable(1024, ge=1)
    coalesce_max_bytes: int = Reloadable(8 * MiB, ge=64 * 1024)
    # Bytes of appends waiting for a storage call; past it appends are refused at once (UNAVAILABLE /
    # OVERLOADED with a retry delay), so the ingest process's memory stays bounded.
    max_queued_bytes: int = Reloadable(64 * MiB, ge=1024 * 1024)
    # Of those, what one tenant's appends may hold (one append larger than it is taken when the tenant has
    # none waiting); past it that tenant's appends are refused at once (RESOURCE_EXHAUSTED / RATE_LIMITED
    # with a retry delay) and the others' still queue. Waiting appends go into storage calls taking the
    # tenants in turn, so one tenant's backlog does not delay another's append either.
    max_queued_bytes_per_tenant: int = Reloadable(16 * MiB, ge=64 * 1024)
    # BatchAppend stops reading a client's stream while this many of its requests are unanswered.
    batch_append_window: int = Reloadable(8, ge=1, le=1024)


class QuerySettings(Endpoint):
    """The query service."""

    port: int = Field(default=50052, ge=0, le=65535)
    default_page_size: int = Reloadable(100, ge=1)
    max_page_size: int = Reloadable(1000, ge=1)
    # GetEntityState stores a snapshot when it had to fold at least this many events.
    snapshot_after_events: int = Reloadable(100, ge=1)
    # Largest entity state GetEntityState folds (its JSON, in bytes); past it ENTITY_STATE_TOO_LARGE.
    max_entity_state_bytes: int = Reloadable(4 * MiB, ge=1024, le=12 * MiB)
    # Live subscriptions this process serves, in all and per tenant; past them Subscribe is refused
    # (UNAVAILABLE / OVERLOADED, or RESOURCE_EXHAUSTED / QUOTA_EXCEEDED for the tenant's share).
    max_subscriptions: int = Reloadable(2000, ge=1)
    max_subscriptions_per_tenant: int = Reloadable(200, ge=1)
    # Consumer-group Consume streams this process carries, in all and per tenant (same refusals).
    max_consume_streams: int = Reloadable(1000, ge=1)
    max_consume_streams_per_tenant: int = Reloadable(200, ge=1)
    # Exports (StreamEvents) this process carries at once, in all and per tenant (same refusals): each
    # keeps storage scanning the tenant's log for as long as it is open.
    max_exports: int = Reloadable(64, ge=1)
    max_exports_per_tenant: int = Reloadable(8, ge=1)
    # Messages waiting for a slow subscriber (besides what HTTP/2 flow control holds); when it makes no
    # room for subscriber_stall_s the subscription ends with SUBSCRIBER_TOO_SLOW and where to resume.
    subscriber_buffer_bytes: int = Reloadable(64 * 1024, ge=16 * 1024)
    subscriber_stall_s: float = Reloadable(30.0, gt=0)
    # The read cache (services.query.cache): events by id, stream pages and folded entity states read
    # through this replica, in memory, bounded in all and per tenant (bytes of what is kept). It is kept
    # exact by storage's commit feed; GetEvent also answers from it while storage cannot be reached.
    # cache_enabled = false reads everything from storage (the cold figures of bench/run.py).
    cache_bytes: int = Field(default=64 * MiB, ge=0)
    cache_bytes_per_tenant: int = Field(default=16 * MiB, ge=0)
    cache_enabled: bool = Reloadable(True)
    # A cache whose commit feed has been silent this long (missed heartbeats) is not used until the feed
    # is heard again; below storage.commit_feed_ack_timeout_s, after which storage stops waiting for it.
    cache_feed_silence_s: float = Reloadable(0.5, gt=0, le=10)
    # BatchGetEvents takes at most this many ids, ReadStreams at most this many streams.
    max_batch_event_ids: int = Reloadable(100, ge=1, le=1000)
    max_batch_streams: int = Reloadable(20, ge=1, le=100)
    # A read with min_position waits at most this long for this replica to see the tenant's log reach it
    # (through the commit feed, or storage's head), then answers UNAVAILABLE (MIN_POSITION_NOT_REACHED).
    min_position_wait_ms: int = Reloadable(1000, ge=0, le=60_000)
    # Subscribe defaults.
    checkpoint_every_events: int = Reloadable(1000, ge=1, le=100_000)
    checkpoint_interval_s: float = Reloadable(5.0, gt=0)

    @model_validator(mode="after")
    def _page_sizes(self) -> QuerySettings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self


class AdminSettings(Endpoint):
    """The admin service."""

    port: int = Field(default=50053, ge=0, le=65535)


class GrpcSettings(_Section):
    """Transport settings applied to every server and channel."""

    max_message_bytes: int = Field(default=16 * MiB, ge=64 * 1024)
    keepalive_time_s: float = Field(default=30.0, gt=0)
    keepalive_timeout_s: float = Field(default=10.0, gt=0)
    # Pings from clients closer together than this (without data) are refused by servers.
    min_ping_interval_s: float = Field(default=10.0, gt=0)
    max_concurrent_streams: int = Field(default=1000, ge=1)
    # Calls a server lets wait for a handler before refusing more (see limits.max_in_flight_calls).
    max_pending_calls: int = Field(default=10_000, ge=100)
    # SIGTERM: stop accepting calls, let in-flight calls finish for this long, then cancel.
    shutdown_grace_s: float = Field(default=10.0, ge=0)
    # Connections from a public service to storage for long-lived streams (subscriptions), apart from
    # the one unary calls use; each carries up to max_concurrent_streams of them.
    storage_stream_channels: int = Field(default=4, ge=1, le=64)
    # Deadline for one internal call to storage (shorter when the caller's own deadline is nearer: the
    # remaining time, less deadline_margin_s, travels on).
    storage_timeout_s: float = Reloadable(30.0, gt=0)
    deadline_margin_s: float = Reloadable(0.05, ge=0, le=5)
    # Calls to storage that are safe to repeat (reads, appends carrying a request id) are retried this
    # many times when storage cannot be reached, after a jittered backoff from retry_backoff_s.
    storage_retries: int = Reloadable(2, ge=0, le=10)
    retry_backoff_s: float = Reloadable(0.05, gt=0, le=5)
    # Circuit breaker on calls to storage: this many consecutive failures to reach it open the breaker
    # for breaker_open_s (calls then fail at once; storage reporting SERVING closes it again).
    breaker_failures: int = Reloadable(5, ge=1)
    breaker_open_s: float = Reloadable(1.0, gt=0, le=60)
    # Keepalive pings between the suite's services, so a silently dead peer is noticed within seconds.
    internal_keepalive_s: float = Field(default=10.0, gt=0)
    # The asyncio event loop implementation. uvloop costs ~15% less CPU per call here.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"


class LimitsSettings(_Section):
    """Bounds on what one call may ask for and how much work a process takes on."""

    # Unary calls a public process works on at once; past it calls are refused at once with UNAVAILABLE
    # / OVERLOADED and a retry delay (operators' calls excepted). Streams have bounds of their own.
    max_in_flight_calls: int = Reloadable(512, ge=1)
    # Of those, what one tenant's calls may hold at once (so that one tenant's slow calls cannot fill the
    # process and have every other tenant shed): past it that tenant's calls are refused at once with
    # RESOURCE_EXHAUSTED / RATE_LIMITED and a retry delay, while the others' go on.
    max_in_flight_calls_per_tenant: int = Reloadable(128, ge=1)
    # The retry delay an OVERLOADED refusal suggests (a random share of it is added, so that refused
    # clients do not come back in step).
    overload_retry_after_s: float = Reloadable(0.2, gt=0, le=60)

    max_event_bytes: int = Reloadable(MiB, ge=1)
    max_batch_events: int = Reloadable(10_000, ge=1)
    max_batch_bytes: int = Reloadable(8 * MiB, ge=1)
    # Also the bounds of every read filter (stream id, stream-id prefix, each event type).
    max_stream_id_bytes: int = Reloadable(256, ge=1, le=4096)
    max_event_type_bytes: int = Reloadable(256, ge=1, le=4096)
    # Event types one read filter or subscription may name.
    max_filter_event_types: int = Reloadable(100, ge=1, le=10_000)
    max_metadata_entries: int = Reloadable(64, ge=0)
    max_metadata_bytes: int = Reloadable(16 * 1024, ge=0)
    max_request_id_bytes: int = Reloadable(128, ge=1)
    # Deepest nesting of arrays and objects in a JSON payload (entity state folds any accepted payload).
    max_json_depth: int = Reloadable(64, ge=1, le=255)

    # -- Rate limits and quotas (docs/OPERATIONS.md, "Rate limits and quotas") --
    # Whether rate limits and emergency throttles apply; quotas storage enforces (events per window,
    # storage bytes) and count quotas (API keys, users) apply regardless.
    rate_limits: bool = Reloadable(True)
    # Where the buckets live: "memory" (each process its own: one replica of each service) or "redis"
    # (shared by every replica: set redis_url).
    backend: Literal["memory", "redis"] = "memory"
    # redis://[user:password@]host:port/db (a secret: it may carry a password; env:, file:, vault: work).
    redis_url: SecretStr | None = None
    redis_prefix: str = "allsource:rl:"
    # The longest a call waits for Redis; past it the limiter stops asking Redis until it answers again.
    redis_timeout_s: float = Reloadable(0.1, gt=0, le=5)
    # Redis unavailable: true admits by per-replica buckets of the same limits (each replica up to the
    # whole limit), false refuses calls with UNAVAILABLE / LIMITER_UNAVAILABLE.
    fail_open: bool = Reloadable(True)
    # A replica takes tokens from a shared bucket this many seconds of its rate at a time (at least one):
    # larger leases mean fewer Redis round trips and a larger over-admission bound (one lease per replica).
    lease_s: float = Reloadable(0.1, gt=0, le=10)
    # Request units per second for the whole suite (every tenant together; 0: no global limit) and the
    # bucket's size (0: twice the rate).
    global_units_per_second: float = Reloadable(0.0, ge=0)
    global_burst: float = Reloadable(0.0, ge=0)
    # Request units per second per tenant for single RPCs, by method name ({"ListEvents": 50}); bursts
    # of twice the rate. Applies on top of the tenant's plan.
    method_units_per_second: dict[str, float] = Reloadable({})
    # Request units per second per credential (a user's token or an API key; 0: no such limit); bursts
    # of twice the rate.
    credential_units_per_second: float = Reloadable(0.0, ge=0)
    # The share of a limit from which calls carry an x-allsource-quota-warning trailer (and a log line).
    soft_limit_ratio: float = Reloadable(0.8, gt=0, le=1)

    @field_validator("method_units_per_second")
    @classmethod
    def _positive_rates(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = sorted(name for name, rate in rates.items() if rate <= 0)
        if bad:
            raise ValueError(f"rates must be positive: {', '.join(bad)}")
        return rates

    @model_validator(mode="after")
    def _redis_needs_url(self) -> LimitsSettings:
        if self.backend == "redis" and self.redis_url is None:
            raise ValueError("limits.backend = 'redis' needs limits.redis_url")
        return self


class LogSettings(_Section):
    """Logging: JSON lines on stderr."""

    level: str = Reloadable("INFO")
    # One line per RPC with method, status code, duration, peer and request id.
    access_log: bool = Reloadable(True)

    @field_validator("level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return value.upper()


class TracingSettings(_Section):
    """OpenTelemetry tracing: a span for every RPC of every service and for every call between them.

    W3C trace context (traceparent / tracestate) passes through every call whether or not a span is
    recorded, and trace and span ids appear in every log line. New traces are sampled at sample_ratio;
    a call whose caller sampled its trace is sampled too (parent-based); and whatever the ratio, a call
    that fails with a server error or is slower than keep_slower_than_ms is kept.
    """

    enabled: bool = True
    # Fraction of new traces sampled (calls continue their caller's decision).
    sample_ratio: float = Reloadable(1.0, ge=0.0, le=1.0)
    # Unary calls slower than this are kept even when their trace was not sampled (0 turns it off).
    keep_slower_than_ms: float = Reloadable(1000.0, ge=0)
    # Calls ending with a server error (INTERNAL, UNAVAILABLE, DEADLINE_EXCEEDED, ...) are kept likewise.
    keep_errors: bool = Reloadable(True)
    # Where spans go: none (only context is propagated), console (stdout), otlp (gRPC), otlp_http, zipkin.
    exporter: Literal["none", "console", "otlp", "otlp_http", "zipkin"] = "otlp"
    # OTLP/gRPC collector (host:port), OTLP/HTTP traces URL, Zipkin v2 spans URL.
    otlp_endpoint: str = "127.0.0.1:4317"
    otlp_http_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    zipkin_endpoint: str = "http://127.0.0.1:9411/api/v2/spans"
    # Spans waiting for export, at most; past it new spans are dropped (and counted), so a dead or slow
    # collector costs at most this much memory and never blocks a call.
    # Queued spans are kept encoded (about 100-200 bytes each, leaves included).
    max_queued_spans: int = Field(default=8192, ge=64)
    # Spans per export call: each call has a fixed cost on both sides, so fewer, larger calls cost less.
    export_batch_spans: int = Field(default=1024, ge=1)
    export_timeout_s: float = Field(default=5.0, gt=0)
    # service.instance.id of this process's spans (default: a new UUID per process).
    instance_id: str = ""

    @model_validator(mode="after")
    def _batch_fits(self) -> TracingSettings:
        if self.export_batch_spans > self.max_queued_spans:
            raise ValueError("tracing.export_batch_spans must not exceed tracing.max_queued_spans")
        return self


class MetricsSettings(_Section):
    """Prometheus metrics: every process serves /metrics over HTTP on a port of its own."""

    enabled: bool = True
    host: str = "127.0.0.1"
    # One port per service (0 picks a free one, reported in the "metrics" log line).
    ingest_port: int = Field(default=9651, ge=0, le=65535)
    query_port: int = Field(default=9652, ge=0, le=65535)
    admin_port: int = Field(default=9653, ge=0, le=65535)
    storage_port: int = Field(default=9654, ge=0, le=65535)
    # Per-tenant series (events, streams, bytes, quota use) for this many tenants with the most events;
    # 0 turns them off. Bounded so that the number of series does not grow with the number of tenants.
    tenant_series: int = Field(default=20, ge=0, le=1000)

    def port(self, service: str) -> int:
        """The metrics port of a service."""
        return int(getattr(self, f"{service}_port"))


class TlsSettings(_Section):
    """Transport security for every service and for the calls between them."""

    # Serve TLS (and use it when calling other services of the suite).
    enabled: bool = False
    # PEM certificate chain of this service.
    cert_file: str = ""
    # PEM private key: a reference (file:/path/key.pem, vault:..., aws-sm:..., env:NAME) or the PEM itself.
    key: SecretStr | None = None
    # PEM CA bundle that signs the suite's certificates: verifies servers, and clients under mTLS.
    ca_file: str = ""
    # mTLS: services accept only clients presenting a certificate signed by ca_file.
    require_client_cert: bool = False
    # Name to verify in the certificates of the suite's services when calling them (default: the host
    # of the address dialled).
    server_name: str = ""
    # Plaintext h2c on purpose: a service-mesh sidecar terminates TLS (and mTLS) in front of each
    # service. Required to run the production preset without TLS.
    mesh_sidecar: bool = False

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if self.enabled and (not self.cert_file or self.key is None):
            raise ValueError("tls.enabled needs tls.cert_file and tls.key")
        if self.require_client_cert and not (self.enabled and self.ca_file):
            raise ValueError("tls.require_client_cert needs tls.enabled and tls.ca_file")
        if self.enabled and self.mesh_sidecar:
            raise ValueError("tls.mesh_sidecar means plaintext behind a sidecar; it contradicts tls.enabled")
        return self


class AuthSettings(_Section):
    """Authentication and authorization of every public call."""

    # Off only by this explicit setting; every start then logs a warning (and production refuses it).
    enabled: bool = True
    issuer: str = "allsource"
    audience: str = "allsource"
    access_token_ttl_s: int = Reloadable(900, ge=30, le=24 * 3600)
    refresh_token_ttl_s: int = Reloadable(7 * 24 * 3600, ge=300)
    # Tolerated clock difference when checking iat / nbf / exp.
    clock_skew_s: int = Reloadable(30, ge=0, le=600)
    password_min_length: int = Reloadable(12, ge=8, le=1024)
    # argon2id cost.
    argon2_time_cost: int = Reloadable(3, ge=1)
    argon2_memory_kib: int = Reloadable(65536, ge=8192)
    argon2_parallelism: int = Reloadable(1, ge=1)
    # Login throttling: this many failures within the window lock the username, or the source address
    # (at twice the count), until the window has passed.
    login_max_failures: int = Reloadable(5, ge=1)
    login_window_s: int = Reloadable(300, ge=1)
    # Invalid API keys per minute from one source address, or against one key id, after which further
    # invalid ones are answered RESOURCE_EXHAUSTED / TOO_MANY_FAILED_ATTEMPTS; valid keys always pass.
    api_key_max_failures: int = Reloadable(20, ge=1)
    # Keyed hash of API-key secrets: required when auth is on (a reference in production).
    api_key_pepper: SecretStr | None = None
    api_key_rotation_grace_s: int = Reloadable(3600, ge=0)
    # The bootstrap administrator created on first start when no user exists. In production its password
    # must come from configuration (start-up fails without it); in development an API key is generated
    # and written to <storage.data_dir>/bootstrap-admin.key as well.
    bootstrap_admin_username: str = "admin"
    bootstrap_admin_password: SecretStr | None = None
    # Also make an operator API key for the bootstrap administrator and write it to
    # <storage.data_dir>/bootstrap-admin.key (mode 0600). The development preset turns it on; production
    # refuses it.
    bootstrap_api_key: bool = False
    # Server reflection: open to anyone, or only to authenticated callers.
    reflection: Literal["open", "authenticated"] = "open"
    # Each service follows the auth change feed (revocations, changed users, keys and tenants) through a
    # watch stream from storage, which delivers a change within milliseconds; it also re-reads the feed
    # in full this often, as a safety net.
    change_resync_s: float = Reloadable(30.0, gt=0, le=3600)
    # How often each service writes the API keys' last-used times (never a write per request).
    key_usage_flush_s: float = Reloadable(60.0, gt=0)


class InternalSettings(_Section):
    """How the suite's services prove to each other (to storage above all) that they belong to the suite."""

    # Shared secret that signs the scope every internal call carries (service, tenant, end user).
    service_secret: SecretStr | None = None
    # Lifetime of a signed scope.
    scope_ttl_s: int = Field(default=60, ge=5, le=3600)


class SecretsSettings(_Section):
    """Where `vault:` and `aws-sm:` secret references are resolved."""

    # HashiCorp Vault or OpenBao (KV version 2).
    vault_address: str = "http://127.0.0.1:8200"
    # Token for Vault; itself a secret (env:VAULT_TOKEN by default, or file:/path).
    vault_token: SecretStr = SecretStr("env:VAULT_TOKEN")
    vault_namespace: str = ""
    # Verify Vault's TLS certificate (a CA bundle path, or true/false).
    vault_verify: str = "true"
    # AWS Secrets Manager; credentials come from the usual AWS environment / profile.
    aws_region: str = "us-east-1"
    # A different Secrets Manager endpoint (for example a local emulator).
    aws_endpoint_url: str = ""


class MemorySettings(_Section):
    """The memory-pressure monitor of the query and storage processes (shared.limits.memory): each checks
    its resident size every check_interval_s against limit_bytes (unset: its cgroup's memory limit when
    there is one, else off; 0: off). At high_water of it, it sheds caches (query: the read cache;
    storage: the RocksDB block cache) and refuses new Subscribe and Consume calls (UNAVAILABLE /
    OVERLOADED) until it is below low_water."""

    limit_bytes: int | None = Reloadable(None, ge=0)
    high_water: float = Reloadable(0.9, gt=0, le=1)
    low_water: float = Reloadable(0.8, gt=0, le=1)
    check_interval_s: float = Reloadable(1.0, ge=0.05, le=60)

    @model_validator(mode="after")
    def _marks(self) -> MemorySettings:
        if self.low_water >= self.high_water:
            raise ValueError("low_water must be below high_water")
        return self


class BackupSettings(_Section):
    """Backups (the storage service makes them; the admin service runs their schedules)."""

    # The local destination: a directory on the storage host. Empty: `backups` under storage.data_dir.
    dir: str = ""
    # Where a request that names no destination goes: "local" or "s3".
    default_destination: Literal["local", "s3"] = "local"
    # The S3-compatible destination (AWS S3, MinIO, SeaweedFS...): unused while s3_bucket is empty.
    s3_endpoint_url: str = ""
    s3_bucket: str = ""
    s3_prefix: str = "allsource-backups/"
    s3_region: str = "us-east-1"
    # Credentials: secrets (env:, file:, vault:, aws-sm: references); unset: the usual AWS chain.
    s3_access_key_id: SecretStr | None = None
    s3_secret_access_key: SecretStr | None = None
    # Objects larger than this are uploaded in parts of this size.
    s3_multipart_bytes: int = Field(default=8 * MiB, ge=5 * MiB)
    # zstandard level of the chunks (1 fastest, 19 smallest).
    compression_level: int = Field(default=3, ge=1, le=19)
    # Include the token-signing keys. They stay sealed as storage keeps them (with a key derived from
    # internal.service_secret), so only a deployment with the same secret can use them; tokens issued
    # before the backup then stay valid after a restore. Off: they are left out, a restore makes a new
    # key, and users log in again (API keys are unaffected).
    include_signing_keys: bool = True
    # A backup or restore of at most this many events runs on a thread of the storage process rather than
    # in a worker process of its own (starting one costs about 0.2 s; a small job's work costs less).
    inline_max_events: int = Reloadable(20_000, ge=0)
    # A full backup of the whole suite (larger than inline_max_events) copies the checkpoint's files as
    # they are, several times faster than reading its records; restores read them back. Off: records.
    full_backup_files: bool = Reloadable(True)
    # Worker processes sharing a larger backup (each copies a slice of every tenant's positions).
    dump_workers: int = Reloadable(2, ge=1, le=16)
    # How often the admin service looks for due schedules.
    schedule_check_s: float = Reloadable(30.0, gt=0)


class FlagSettings(_Section):
    """A feature flag's configured value (AdminService.SetFeatureFlag overrides it at run time)."""

    enabled: bool = True
    percentage: float = Field(default=100.0, ge=0.0, le=100.0)
    bucket_by: Literal["tenant", "stream"] | None = None


class Settings(_Section):
    """Every setting of the suite. Each service reads the sections it needs."""

    storage: StorageSettings = StorageSettings()
    ingest: IngestSettings = IngestSettings()
    query: QuerySettings = QuerySettings()
    admin: AdminSettings = AdminSettings()
    grpc: GrpcSettings = GrpcSettings()
    limits: LimitsSettings = LimitsSettings()
    log: LogSettings = LogSettings()
    tracing: TracingSettings = TracingSettings()
    metrics: MetricsSettings = MetricsSettings()
    tls: TlsSettings = TlsSettings()
    auth: AuthSettings = AuthSettings()
    internal: InternalSettings = InternalSettings()
    secrets: SecretsSettings = SecretsSettings()
    backup: BackupSettings = BackupSettings()
    memory: MemorySettings = MemorySettings()
    # Feature flags by name (see shared.config.flags for the known flags).
    flags: dict[str, FlagSettings] = Reloadable({})
    # How often every service re-reads flag overrides from storage (besides being told at once).
    flags_refresh_s: float = Reloadable(30.0, gt=0)

    @field_validator("flags")
    @classmethod
    def _known_flags(cls, flags: dict[str, FlagSettings]) -> dict[str, FlagSettings]:
        unknown = sorted(set(flags) - set(DEFINITIONS))
        if unknown:
            raise ValueError(f"unknown feature flag(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFINITIONS))}")
        return flags

    @model_validator(mode="after")
    def _limits_fit_transport(self) -> Settings:
        if self.limits.max_batch_bytes > self.grpc.max_message_bytes:
            raise ValueError("limits.max_batch_bytes must not exceed grpc.max_message_bytes")
        if self.limits.max_event_bytes > self.limits.max_batch_bytes:
            raise ValueError("limits.max_event_bytes must not exceed limits.max_batch_bytes")
        # Subscriptions and Consume streams ride the storage stream connections (with one commit-feed and one
        # record watch stream each): past a connection's stream bound, new streams would wait unanswered.
        long_lived = self.query.max_subscriptions + self.query.max_consume_streams
        per_connection = -(-long_lived // self.grpc.storage_stream_channels) + 2
        if per_connection >= self.grpc.max_concurrent_streams:
            raise ValueError(
                "(query.max_subscriptions + query.max_consume_streams) / grpc.storage_stream_channels must stay "
                "below grpc.max_concurrent_streams"
            )
        return self
