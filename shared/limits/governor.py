"""The governor: what the admission stage asks of every call about rates and quotas.

For each call it resolves the tenant's plan (the tenant's TenantQuotas with the overrides in force,
cached until either changes or an override expires), then
1. applies emergency throttles (suite-wide and the tenant's: a ceiling on calls per second on each
   replica, cost 1 per call);
2. takes the call's cost (declared per RPC by the `rate_cost` option: 1 per call, the events of an
   append; a page read 1, then what it returned, after the fact: `settle`) from every rate limit that
   applies: the suite's global rate, the tenant's plan (max_request_units_per_second, bursts of
   max_request_units_burst), the tenant's rate for the RPC, the credential's rate;
3. answers with `x-ratelimit-limit`, `x-ratelimit-remaining` and `x-ratelimit-reset` (the IETF
   RateLimit fields: the bucket's size, whole units left, seconds until it is full again) of the most
   restrictive limit: streams in initial metadata, unary calls in trailing metadata (a unary client
   gets both together, and initial metadata on its own costs a batch operation per call: see
   docs/PERFORMANCE.md). Past the soft share of a limit the call also carries an
   `x-allsource-quota-warning` trailer and a log line (at most one a minute per tenant and limit);
4. refuses past a limit with RESOURCE_EXHAUSTED / RATE_LIMITED: ErrorInfo metadata names the limit,
   a QuotaFailure violation carries it, RetryInfo the real wait (the bucket's refill).
Streams pay 1 to start and then, message by message, what each carries (`charge`): they are paced
(the stream waits for tokens), not refused, unless the wait would outlast the call's deadline.

It also remembers a tenant storage has refused for a windowed quota used up to its limit (events per
minute, hour or day): further appends are refused here until the window resets, without a storage call.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from allsource.v1 import admin_pb2, options_pb2
from google.rpc import error_details_pb2

from shared.config.settings import LimitsSettings
from shared.core.errors import AllSourceError, ResourceExhausted, with_retry_after
from shared.core.reasons import Reason
from shared.core.wire import Prebuilt
from shared.limits.book import LimitBook
from shared.limits.limiter import Limit, MemoryLimiter, RateLimiter, Verdict
from shared.limits.plans import SUITE_THROTTLE, Override, limit_of, past_soft
from shared.limits.redis_limiter import RedisLimiter
from shared.rpc.chain import Call, call_deadline
from shared.telemetry.metrics import QUOTA_WARNINGS

log = logging.getLogger(__name__)

C = options_pb2
WARNING_KEY = "x-allsource-quota-warning"
_PLAN_CACHE = 100_000


@dataclass(slots=True)
class TenantPlan:
    """A tenant's limits in force for a call: its plan with overrides (see shared.limits.plans)."""

    tenant_id: str
    quotas: Any  # allsource.v1.TenantQuotas, or None when the tenant has no record
    overrides: dict[str, Override]
    rate: Limit | None  # the tenant's request-unit bucket
    source: Any = None  # the tenant record this plan was made from (its identity changes when it does)
    version: int = 0  # the book's version it was made at
    valid_until_ns: int = 0  # the next override expiry (0: none)
    method_limits: dict[str, tuple[Limit, ...]] = field(default_factory=dict)

    def limit(self, name: str, now_ns: int | None = None) -> int | None:
        """The limit in force for one quota (None: no limit)."""
        return limit_of(self.quotas, self.overrides, name, time.time_ns() if now_ns is None else now_ns)

    def overridden(self, name: str, now_ns: int) -> bool:
        """Whether an override sets this quota now."""
        found = self.overrides.get(name)
        return found is not None and found.expires_ns > now_ns


plan_var: contextvars.ContextVar[TenantPlan | None] = contextvars.ContextVar("tenant_plan", default=None)
# Set for streaming calls: what one message costs is paid through it (see `charge`).
_charge_var: contextvars.ContextVar[Callable[[int], Awaitable[None]] | None] = contextvars.ContextVar(
    "rate_charge", default=None
)


def current_plan() -> TenantPlan | None:
    """The plan of the tenant the current call acts on (set by the admission stage)."""
    return plan_var.get()


def current_limit(name: str) -> int | None:
    """A quota's limit for the current call's tenant (None: no limit, or no tenant)."""
    plan = plan_var.get()
    return plan.limit(name) if plan is not None else None


async def charge(units: int) -> None:
    """Pay for one message of a streaming call (waits for tokens; no-op without rate limits)."""
    pay = _charge_var.get()
    if pay is not None and units > 0:
        await pay(units)


def rate_limited(limit: Limit, wait: float, tenant_id: str) -> ResourceExhausted:
    """The refusal of a call past a rate limit."""
    violation = error_details_pb2.QuotaFailure.Violation(
        subject=f"tenant:{tenant_id}" if tenant_id else "suite",
        description=f"{limit.name}: {limit.rate:g} request units per second, bursts of {limit.burst:g}",
        quota_id=limit.name,
        quota_metric="request_units",
        quota_value=int(limit.rate),
    )
    return ResourceExhausted(
        f"rate limit {limit.name} reached ({limit.rate:g} request units per second); retry in {wait:.3f} s",
        reason=Reason.RATE_LIMITED,
        metadata={"limit": limit.name, "value": f"{limit.rate:g}", "burst": f"{limit.burst:g}"},
        quota_violations=[violation],
        retry_after=wait,
    )


def share_exceeded(
    tenant_id: str, limit: str, value: int, held: str, metric: str, retry_after: float
) -> ResourceExhausted:
    """The refusal of a call past its tenant's share of something a process shares among tenants (the
    calls it works on, the appends waiting for storage): `held` says what the tenant already holds."""
    return ResourceExhausted(
        f"this tenant has {held} on this service, as much as one tenant may; retry shortly",
        reason=Reason.RATE_LIMITED,
        metadata={"limit": limit, "value": str(value)},
        quota_violations=[
            error_details_pb2.QuotaFailure.Violation(
                subject=f"tenant:{tenant_id}" if tenant_id else "suite",
                description=f"{limit}: {value} {metric} at most",
                quota_id=limit,
                quota_metric=metric,
                quota_value=value,
            )
        ],
        retry_after=retry_after,
    )


def headers(limit: Limit, remaining: int, reset_s: float) -> tuple[tuple[str, str], ...]:
    """The x-ratelimit-* metadata of a limit."""
    return (
        ("x-ratelimit-limit", str(int(limit.burst))),
        ("x-ratelimit-remaining", str(remaining)),
        ("x-ratelimit-reset", str(math.ceil(reset_s))),
    )


class Governor:
    """Rate limits, emergency throttles and quota pre-checks for one public process."""

    def __init__(
        self,
        settings: LimitsSettings,
        book: LimitBook,
        limiter: RateLimiter,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.settings = settings
        self.book = book
        self.limiter = limiter
        self.clock = clock
        self.wall_ns = wall_ns
        self.throttles = MemoryLimiter(soft_ratio=1.0, clock=clock)  # per replica by definition
        self._plans: dict[str, TenantPlan] = {}
        self._credentials: dict[str, Limit] = {}
        self._warned: dict[tuple[str, str], float] = {}
        # tenant -> (the refusal, until (clock), the plan it was made under): quotas used up until a window
        # resets, an override ends or the plan changes
        self._used_up: dict[str, tuple[AllSourceError, float, TenantPlan | None]] = {}
        self.refused = 0
        self.service = ""  # the metrics' service label

    def configure(self, settings: LimitsSettings) -> None:
        """Take reloaded settings (cached limits are rebuilt)."""
        self.settings = settings
        self._plans.clear()
        self._credentials.clear()
        limiter = self.limiter
        if isinstance(limiter, MemoryLimiter):
            limiter.soft_ratio = settings.soft_limit_ratio
        elif isinstance(limiter, RedisLimiter):
            limiter.soft_ratio = limiter.fallback.soft_ratio = settings.soft_limit_ratio
            limiter.fail_open = settings.fail_open
            limiter.timeout_s = settings.redis_timeout_s
            limiter.lease_s = settings.lease_s

    # -- plans ----------------------------------------------------------------------------------------

    def plan(self, tenant_id: str, tenant: Any) -> TenantPlan:
        """The tenant's plan in force (cached until its record, the book or an override changes)."""
        cached = self._plans.get(tenant_id)
        if (
            cached is not None
            and cached.source is tenant
            and cached.version == self.book.version
            and (not cached.valid_until_ns or self.wall_ns() < cached.valid_until_ns)
        ):
            return cached
        now_ns = self.wall_ns()
        quotas = tenant.quotas if tenant is not None else None
        overrides = dict(self.book.overrides.of(tenant_id))
        rate = limit_of(quotas, overrides, "max_request_units_per_second", now_ns)
        limit = None
        if rate:
            burst = limit_of(quotas, overrides, "max_request_units_burst", now_ns) or 2 * rate
            limit = Limit(f"t:{tenant_id}", float(rate), float(max(burst, 1)), "max_request_units_per_second")
        plan = TenantPlan(
            tenant_id,
            quotas,
            overrides,
            limit,
            source=tenant,
            version=self.book.version,
            valid_until_ns=self.book.overrides.next_expiry_ns(tenant_id, now_ns) or 0,
        )
        if len(self._plans) >= _PLAN_CACHE:
            self._plans.clear()
        self._plans[tenant_id] = plan
        return plan

    def _limits(self, call: Call, plan: TenantPlan | None) -> tuple[Limit, ...]:
        """Every rate limit that applies to the call (cached per tenant plan and method)."""
        path = call.method.path
        if plan is not None:
            found = plan.method_limits.get(path)
            if found is None:
                found = plan.method_limits[path] = self._build(path, plan)
        else:
            found = self._build(path, None)
        credential = self.settings.credential_units_per_second
        if credential and call.principal is not None:
            ref = call.principal.ref
            limit = self._credentials.get(ref)
            if limit is None:
                if len(self._credentials) > _PLAN_CACHE:
                    self._credentials.clear()
                limit = self._credentials[ref] = Limit(
                    f"c:{ref}", credential, 2 * credential, "limits.credential_units_per_second"
                )
            found = (*found, limit)
        return found

    def _build(self, path: str, plan: TenantPlan | None) -> tuple[Limit, ...]:
        s = self.settings
        out = []
        if s.global_units_per_second:
            total = s.global_units_per_second
            out.append(Limit("g", total, s.global_burst or 2 * total, "limits.global_units_per_second"))
        if plan is not None:
            if plan.rate is not None:
                out.append(plan.rate)
            method = path.rsplit("/", 1)[-1]
            rate = s.method_units_per_second.get(method)
            if rate:
                out.append(
                    Limit(f"m:{plan.tenant_id}:{method}", rate, 2 * rate, f"limits.method_units_per_second.{method}")
                )
        return tuple(out)

    # -- admission ------------------------------------------------------------------------------------

    def admit(self, call: Call, plan: TenantPlan | None) -> Awaitable[None] | None:
        """Throttles, then rate limits; raises a refusal, or returns what remains to await (headers)."""
        tenant_id = plan.tenant_id if plan is not None else ""
        requirement = call.method.requirement
        kind = requirement.cost if requirement is not None else C.RATE_COST_CALL
        if kind == C.RATE_COST_EVENTS and self._used_up:
            self._check_used_up(tenant_id, plan)
        if not self.settings.rate_limits:
            return None
        if self.book.throttles:
            self._throttle(call, tenant_id)
        limits = self._limits(call, plan)
        if not limits:
            return None
        if kind == C.RATE_COST_EVENTS:
            # Charged before the handler validates the request: one past the batch bound (which validation
            # refuses, nothing written) pays one unit, not its count, which put the tenant's bucket and
            # the global one every tenant shares into debt for hours.
            events = len(call.request.events) if call.request is not None else 1
            cost = max(1, events) if events <= self.settings.max_batch_events else 1
        else:
            cost = 1  # a page read pays one unit to start and the rest for what it returns (`settle`)
        if kind == C.RATE_COST_PAGE:
            call.rate = limits
        if kind == C.RATE_COST_STREAM:
            _charge_var.set(lambda units: self._pace(limits, units, tenant_id))
        verdict = self.limiter.take(limits, cost)
        if type(verdict) is not Verdict:  # a round trip to a shared backend (cheaper than isawaitable)
            return self._answer_later(call, verdict, tenant_id)  # type: ignore[arg-type]
        return self._answer(call, verdict, tenant_id)

    async def _answer_later(self, call: Call, verdict: Awaitable[Verdict], tenant_id: str) -> None:
        pending = self._answer(call, await verdict, tenant_id)
        if pending is not None:
            await pending

    def _answer(self, call: Call, verdict: Verdict, tenant_id: str) -> Awaitable[None] | None:
        limit = verdict.limit
        assert limit is not None
        if verdict.wait > 0:
            self.refused += 1
            call.trailing.extend(headers(limit, verdict.remaining, verdict.reset_s))
            raise rate_limited(limit, verdict.wait, tenant_id)
        fields = headers(limit, verdict.remaining, verdict.reset_s)
        if verdict.soft is not None:
            soft = verdict.soft
            ratio = self.settings.soft_limit_ratio
            call.trailing.append((WARNING_KEY, f"{soft.name}: past {ratio:.0%} of the burst of {soft.burst:g} units"))
            self.warn(tenant_id, soft.name)
        if call.method.streaming:
            # A stream's initial metadata arrives before its messages: the client can pace itself.
            if verdict.soft is not None:
                call.context.set_trailing_metadata(tuple(call.trailing))
            result: Awaitable[None] = call.context.send_initial_metadata(fields)
            return result
        # A unary call's client sees initial and trailing metadata together, with the response; sending
        # initial metadata on its own costs a separate batch operation on both sides, which measured 20%
        # of single-append throughput here (docs/PERFORMANCE.md), so unary calls carry them as trailers.
        call.trailing.extend(fields)
        call.context.set_trailing_metadata(tuple(call.trailing))
        return None

    def settle(self, call: Call, response: Any) -> None:
        """A page read pays for each result beyond the first, after the fact (the bucket may go into
        debt, which later calls wait off): a read costs what it returned, not the page size it asked."""
        limits = call.rate
        if not limits:
            return
        if type(response) is Prebuilt:
            returned = response.results
        else:
            field = _RESULTS.get(type(response))
            if field is None:
                field = _RESULTS[type(response)] = _results_field(response)
            returned = len(getattr(response, field)) if field else 0
        if returned > 1:
            self.limiter.charge(limits, returned - 1)

    def warn(self, tenant_id: str, name: str) -> None:
        """Log that a tenant is past the soft share of a limit (at most once a minute per tenant and limit)."""
        QUOTA_WARNINGS.labels(self.service, name).inc()
        now = self.clock()
        key = (tenant_id, name)
        if now - self._warned.get(key, -math.inf) < 60:
            return
        if len(self._warned) > 10_000:
            self._warned.clear()
        self._warned[key] = now
        log.warning("tenant past the soft share of a limit", extra={"tenant_id": tenant_id, "limit": name})

    def _throttle(self, call: Call, tenant_id: str) -> None:
        now_ns = self.wall_ns()
        for key in (SUITE_THROTTLE, tenant_id):
            throttle = self.book.throttle(key, now_ns) if key else None
            if throttle is None:
                continue
            cps = throttle.calls_per_second
            limit = Limit(f"e:{key}", cps, max(1.0, cps), "emergency_throttle")
            verdict = self.throttles.take((limit,), 1)
            if verdict.wait > 0:
                self.refused += 1
                call.trailing.extend(headers(limit, verdict.remaining, verdict.reset_s))
                raise rate_limited(limit, verdict.wait, tenant_id if key != SUITE_THROTTLE else "")

    async def _pace(self, limits: Sequence[Limit], units: int, tenant_id: str) -> None:
        """A stream's message waits for its tokens; refused only if the wait outlasts the call's deadline."""
        while True:
            verdict = self.limiter.take(limits, units)
            if type(verdict) is not Verdict:
                verdict = await verdict  # type: ignore[misc]
            if verdict.wait <= 0:
                return
            assert verdict.limit is not None
            deadline = call_deadline.get()
            if deadline is not None and time.monotonic() + verdict.wait > deadline:
                raise rate_limited(verdict.limit, verdict.wait, tenant_id)
            await asyncio.sleep(verdict.wait)

    # -- quotas used up -------------------------------------------------------------------------------

    def remember(self, tenant_id: str, error: AllSourceError) -> None:
        """Note a storage refusal of a windowed quota used up to its limit: appends are refused here
        until the window resets (or the limits change)."""
        meta = error.metadata
        if error.reason != Reason.QUOTA_EXCEEDED or meta.get("window") is None or error.retry_after is None:
            return
        if int(meta.get("used", "0")) < int(meta.get("value", "1")):
            return  # something smaller may still fit
        if len(self._used_up) > 10_000:
            self._used_up.clear()
        now = self.clock()
        until = now + error.retry_after
        plan = self._plans.get(tenant_id)
        if plan is not None and plan.valid_until_ns:
            until = min(until, now + (plan.valid_until_ns - self.wall_ns()) / 1e9)  # an override ends
        self._used_up[tenant_id] = (error, until, plan)

    def _check_used_up(self, tenant_id: str, plan: TenantPlan | None) -> None:
        found = self._used_up.get(tenant_id)
        if found is None:
            return
        error, until, made_under = found
        now = self.clock()
        if now >= until or made_under is not plan:  # the window reset, or the plan or an override changed
            del self._used_up[tenant_id]
            return
        raise with_retry_after(error, until - now)


_RESULTS: dict[type, str] = {}


def _results_field(response: Any) -> str:
    """The repeated field that carries a page's results (the first repeated field; "" if none)."""
    for fd in response.DESCRIPTOR.fields:
        if fd.is_repeated and fd.message_type is not None and not fd.message_type.GetOptions().map_entry:
            return str(fd.name)
    return ""


def quota_state(used: int, limit: int | None, ratio: float) -> admin_pb2.QuotaState:
    """Where a quota stands (allsource.v1.QuotaState)."""
    if limit is None:
        return admin_pb2.QUOTA_STATE_UNLIMITED
    if used >= limit:
        return admin_pb2.QUOTA_STATE_HARD
    if past_soft(used, limit, ratio):
        return admin_pb2.QUOTA_STATE_SOFT
    return admin_pb2.QUOTA_STATE_OK
