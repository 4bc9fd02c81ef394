"""The query service: reads, filtered listing, streaming export, entity state and subscriptions."""
