"""Pure functions on plain records: parse, normalize, validate, deduplicate.

Nothing in this package does I/O or imports connectors/, flows/ or prefect
(transforms/ruff.toml enforces it).
"""
