"""The admin service: system information now; tenants, identity and operations as they arrive."""
