"""The error kinds of DESIGN.md: fatal stops the run, transient is retried,
per-record problems are quarantined (they are values, not exceptions)."""


class FatalError(Exception):
    """Bad config, unreadable input, refused credentials: stop and say what to fix."""


class ConfigError(FatalError):
    """A config key or value is wrong; the message names the key."""


class TransientError(Exception):
    """Worth retrying with backoff (timeouts, 429, 5xx)."""
