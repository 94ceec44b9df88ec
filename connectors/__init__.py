"""I/O only: sources that yield raw items, sinks, and the ledger."""
