"""The stages of the call chain (shared.rpc.chain), one job per module; shared.harness.chains orders them."""
