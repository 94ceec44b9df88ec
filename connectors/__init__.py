"""I/O only: sources that yield raw items, sinks, and the ledger.

A source is anything with a `name`, `scopes()` (what it checkpoints and
reports health for: a mailbox's folders), `batches(checkpoint_of)`, which
yields batches of raw items, each with the checkpoint to store in the same
transaction (`checkpoint_of(source, scope)` returns what was stored last),
`acknowledge(batch)`, called once a batch is committed, and `summary()`, what
the last pass found besides items (files it does not read, the newest message
of each folder).

A sink (Airtable, Google Sheets) keeps the CRM tables of transforms/crm.py:
flows/sync.py reads what changed, plans each row and hands the writes over in
chunks of `write_chunk`; the sink batches them in requests as its API allows.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from transforms.crm import CrmTable, RemoteRow, RowWrite
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

    def summary(self) -> dict[str, object]: ...


@dataclass
class WriteOutcome:
    """What became of one row's write: its id in the sink, or why it was refused."""

    key: str
    remote_id: str | None = None
    created: bool = False
    error: str = ""


class Sink(Protocol):
    name: str
    tables: dict[str, CrmTable]
    # requests by kind (read, write, rate_limited, ...), for summaries and benchmarks
    calls: Counter
    warnings: list[str]
    # True when every read returns the whole table (no "changed since")
    reads_everything: bool
    write_chunk: int

    def describe(self) -> str: ...

    def problems(self) -> list[str]: ...

    def manual_steps(self) -> list[str]: ...

    def init_schema(self) -> tuple[list[str], list[str]]: ...

    def read(self, table: CrmTable, modified_since: str | None = None,
             only_key: bool = False) -> Iterator[RemoteRow]: ...

    def set_links(self, table_name: str, ids_by_key: dict[str, str]) -> None: ...

    def upsert(self, table: CrmTable, writes: Sequence[RowWrite]) -> list[WriteOutcome]: ...
