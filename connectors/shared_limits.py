"""Request budgets shared by every worker of a Prefect server: Airtable's 5
requests per second per base and Google's 60 writes per minute per user hold
for the whole cluster, not for each process.

A sink asks `limits.budget(name, window)` for the limiter it sends through.
`LOCAL` (no Prefect server) gives back the process's own sliding window
(connectors/throttle.py). `PrefectLimits` wraps that window: a request first
takes its slot in the window (so one process keeps the margin it always had),
then one slot of the Prefect rate limit of that name, shared by every worker,
and only then goes out.

A Prefect rate limit is a token bucket: `limit` slots that decay at
`slot_decay_per_second`. A bucket of `limit` 5 decaying at 5/s lets 5 requests
through at once and 5 more within the same second, which Airtable answers
with 429 and 30 seconds of silence. So a budget of `requests` per `window` is
a bucket of `burst` slots decaying at `(requests - burst) / window`: however
requests bunch up, no window sees more than `requests` starts (`bucket`).

Prefect is imported only when a server is configured (PREFECT_API_URL), so
the connectors and the CLI do not pay its import time otherwise.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from connectors.throttle import SlidingWindow
from leadhub.errors import FatalError, TransientError

# How long a request waits for a slot of the shared limit before the run gives
# up for now (the next run goes on): far longer than any fair wait.
SLOT_TIMEOUT_SECONDS = 600.0


class Limiter(Protocol):
    def slot(self): ...

    def pause(self, seconds: float) -> None: ...


@dataclass(frozen=True)
class LimitSpec:
    """A named Prefect rate limit, as `prefect gcl create` takes it."""

    name: str
    limit: int
    slot_decay_per_second: float

    def command(self) -> str:
        return (f"prefect gcl create {self.name} --limit {self.limit}"
                f" --slot-decay-per-second {self.slot_decay_per_second:g}")


def bucket(name: str, requests: int, window: float) -> LimitSpec:
    """The token bucket that lets at most `requests` start in any `window`
    seconds: a burst of a sixth of them (at least one), the rest decaying."""
    burst = max(1, requests // 6)
    return LimitSpec(name, burst, round((requests - burst) / window, 4))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")


def airtable_limit(base: str, requests_per_second: int, window: float) -> LimitSpec:
    return bucket(f"airtable-{_safe(base)}", requests_per_second, window)


def sheets_limit(account: str, writes_per_minute: int, window: float) -> LimitSpec:
    return bucket(f"sheets-writes-{_safe(account)}", writes_per_minute, window)


class LocalLimits:
    """One process: its own sliding windows are the whole budget."""

    shared = False

    def budget(self, spec: LimitSpec, window: SlidingWindow) -> Limiter:
        return window


class SharedBudget:
    """The process's window, then one slot of the cluster's rate limit."""

    def __init__(self, spec: LimitSpec, window: SlidingWindow, limits: PrefectLimits):
        self.spec = spec
        self.window = window
        self._limits = limits

    @contextmanager
    def slot(self) -> Iterator[None]:
        with self.window.slot():
            self._limits.take(self.spec)
            yield

    def pause(self, seconds: float) -> None:
        self.window.pause(seconds)


class PrefectLimits:
    """Budgets shared through the Prefect server's global concurrency limits;
    a limit that does not exist yet is created on first use."""

    shared = True

    def __init__(self) -> None:
        self._ready: set[str] = set()
        self._lock = threading.Lock()

    def budget(self, spec: LimitSpec, window: SlidingWindow) -> Limiter:
        return SharedBudget(spec, window, self)

    def take(self, spec: LimitSpec) -> None:
        import httpx
        from prefect.concurrency.sync import rate_limit

        self.ensure(spec)
        try:
            rate_limit(spec.name, occupy=1, timeout_seconds=SLOT_TIMEOUT_SECONDS, strict=True)
        except TimeoutError:
            raise TransientError(f"no slot of the rate limit {spec.name} in"
                                 f" {SLOT_TIMEOUT_SECONDS:g} s; the next run goes on") from None
        except httpx.HTTPError as error:
            raise TransientError(f"the Prefect server did not give a slot of {spec.name}"
                                 f" ({type(error).__name__}); the next run goes on") from None

    def ensure(self, spec: LimitSpec) -> bool:
        """Create the limit unless it exists; True when this call created it."""
        with self._lock:
            if spec.name in self._ready:
                return False
            created = ensure_limit(spec)
            self._ready.add(spec.name)
            return created


def ensure_limit(spec: LimitSpec) -> bool:
    """The limit on the Prefect server, created with `spec` if missing (an
    existing one is left as a person set it); True when it was created."""
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    try:
        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(spec.name)
                return False
            except ObjectNotFound:
                pass
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=spec.name, limit=spec.limit,
                    slot_decay_per_second=spec.slot_decay_per_second))
            except ObjectAlreadyExists:  # another worker made it a moment ago
                return False
            return True
    except (OSError, RuntimeError, httpx.HTTPError) as error:
        raise FatalError(f"the Prefect server cannot give the rate limit {spec.name}"
                         f" ({type(error).__name__}: {error}); check PREFECT_API_URL, or"
                         f" create it with `{spec.command()}`") from None


LOCAL = LocalLimits()
_SHARED: PrefectLimits | None = None


def for_this_run() -> LocalLimits | PrefectLimits:
    """Shared limits when a Prefect server is configured (a worker's runs
    always have PREFECT_API_URL), the process's own otherwise."""
    global _SHARED
    if not os.environ.get("PREFECT_API_URL"):
        return LOCAL
    if _SHARED is None:
        _SHARED = PrefectLimits()
    return _SHARED
