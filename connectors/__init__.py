"""I/O only: sources that yield raw items, sinks, and the ledger.

A source is anything with a `name`, `scopes()` (what it checkpoints and
reports health for: a mailbox's folders), `batches(checkpoint_of)`, which
yields batches of raw items, each with the checkpoint to store in the same
transaction (`checkpoint_of(source, scope)` returns what was stored last),
and `acknowledge(batch)`, called once a batch is committed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Protocol

from transforms.records import RawItem

CheckpointReader = Callable[[str, str], str | None]


class Batch(Protocol):
    items: list[RawItem]
    checkpoint: tuple[str, str, str]


class Source(Protocol):
    name: str

    def scopes(self) -> list[str]: ...

    def batches(self, checkpoint_of: CheckpointReader) -> Iterator[Batch]: ...

    def acknowledge(self, batch: Batch) -> None: ...
