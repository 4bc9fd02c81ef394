"""Rate limits and quotas: token buckets, UTC windows, effective limits (plan and overrides), the
in-memory and Redis limiters, and the governor the admission stage asks on every call."""
