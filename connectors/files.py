"""The files source: a user's mail export, form dumps and CRM lead lists.

Reads .eml files, folders of them, maildir folders, .mbox files, .csv lead
lists, and .json / .jsonl form submissions, and yields one raw item per
message, row or submission. Each file is checkpointed by its content hash, so
an unchanged file is not even read twice.

Each file is its own unit: one that cannot be read (empty, binary, not the
format its name says) becomes a single raw item that carries the reason in
`meta["unreadable"]`, so processing quarantines it, its checkpoint is stored
like any other, and the files after it are read as usual.
"""

from __future__ import annotations

import hashlib
import json
import mailbox
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

from connectors import CheckpointReader
from leadhub.errors import FatalError
from leadhub.i18n import _
from transforms.json_input import json_bytes, json_values
from transforms.mail import looks_like_mail
from transforms.records import RawItem, RawKind
from transforms.tables import Chunks, RowStream, Table, TableError, stream_lead_chunks
from transforms.text import looks_binary

MAIL_SUFFIXES = {".eml", ".msg.eml"}
TABLE_SUFFIXES = {".csv", ".tsv"}
FORM_SUFFIXES = {".json", ".jsonl", ".ndjson"}
MBOX_SUFFIXES = {".mbox", ".mbx"}
SUPPORTED = MAIL_SUFFIXES | TABLE_SUFFIXES | FORM_SUFFIXES | MBOX_SUFFIXES
_READABLE = ".eml, .mbox, .csv, .tsv, .json, .jsonl or a maildir/folder"
# The window a lead list is read in: the most of it held in memory at a time.
READ_BYTES = 1 << 20
# What tells a file's kind: its first bytes (text or binary, mail headers)
HEAD_BYTES = 64 * 1024


def refused_inputs(paths: Iterable[Path]) -> list[str]:
    """Why each path given to read (on the command line, in the config) cannot
    be: it does not exist, or it is a file of a kind LeadHub does not read.
    Looks only at names and whether each path exists, so a command can refuse
    before any work starts."""
    problems = []
    for path in paths:
        if not path.exists():
            problems.append(_("{path}: no such file or folder").format(path=path))
        elif path.is_file() and _suffix(path) not in SUPPORTED:
            problems.append(_("{path}: cannot read {kind} files; use {readable}").format(
                path=path, kind=path.suffix or _("this kind of"), readable=_READABLE))
    return problems


@dataclass
class FileBatch:
    """The raw items of one file (or maildir) and the checkpoint to store with them."""

    path: Path
    # a list, or a table's items made as they are stored (`len` and iteration)
    items: Collection[RawItem]
    checkpoint: tuple[str, str, str]


@dataclass
class FilesSource:
    name: str
    paths: list[Path]
    default_form: str = ""
    csv_delimiter: str | None = None
    csv_encoding: str | None = None
    ignored: list[Path] = field(default_factory=list)
    # When items are seen: the time of a row, post or message with no date of its
    # own (the store keeps the first sighting's, so a re-read changes nothing).
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC), repr=False)
    # One moment for everything a pass reads, so that the order items are
    # processed in (by time, then id) does not depend on how fast files are read.
    _seen_at: datetime | None = field(default=None, init=False, repr=False)

    def scopes(self) -> list[str]:
        return ["files"]

    def acknowledge(self, batch: FileBatch) -> None:
        """Files are left as they are."""

    def discover(self) -> list[Path]:
        """Every readable input below the configured paths, in a stable order;
        the other files in the folders are listed in `ignored`."""
        problems = refused_inputs(self.paths)
        if problems:
            raise FatalError("\n".join(problems))
        self.ignored = []
        found: list[Path] = []
        for path in self.paths:
            if path.is_file() or _is_maildir(path):
                found.append(path)
            else:
                found += self._walk(path)
        return found

    def summary(self) -> dict[str, object]:
        """What a run's summary says about the last `batches()`: the files that
        were not read because LeadHub does not read their kind."""
        return {"ignored_files": len(self.ignored), "ignored": [str(p) for p in self.ignored]}

    def batches(self, checkpoint_of: CheckpointReader) -> Iterator[FileBatch]:
        """One batch per input whose content changed since its checkpoint."""
        self._seen_at = self.clock()
        for path in self.discover():
            scope = str(path.resolve())
            try:
                fingerprint = _fingerprint(path)
            except OSError as error:
                fingerprint = f"unreadable:{error.errno}"
            if checkpoint_of(self.name, scope) == fingerprint:
                continue
            yield FileBatch(path, self._read(path), (self.name, scope, fingerprint))

    def _walk(self, folder: Path) -> list[Path]:
        found: list[Path] = []
        for child in sorted(folder.iterdir()):
            if child.name.startswith("."):
                continue
            if child.is_dir():
                found += [child] if _is_maildir(child) else self._walk(child)
            elif _suffix(child) in SUPPORTED:
                found.append(child)
            else:
                self.ignored.append(child)
        return found

    def _read(self, path: Path) -> Collection[RawItem]:
        """The file's items, or one item saying why it cannot be read."""
        try:
            return self._maildir(path) if path.is_dir() else self._file(path)
        except OSError as error:
            return [self._unreadable(path, f"cannot read the file ({error.strerror or error})")]

    def _file(self, path: Path) -> Collection[RawItem]:
        suffix = _suffix(path)
        if suffix in TABLE_SUFFIXES:
            return self._table(path)
        if _blank(path):
            return [self._unreadable(path, "the file is empty", path.read_bytes())]
        if suffix in MBOX_SUFFIXES:
            return self._mbox(path)
        if suffix in MAIL_SUFFIXES:
            return [self._item(path, 0, "email", path.read_bytes())]
        if looks_binary(_head(path, strip=False)):
            return [self._unreadable(path, "not JSON: the file holds binary data, not text",
                                     path.read_bytes())]
        if suffix == ".json":
            return self._json(path)
        return _LineItems(self, path, _Place.of(path))

    def _maildir(self, path: Path) -> list[RawItem]:
        box = mailbox.Maildir(path, factory=None, create=False)
        return [self._item(path, key, "email", box.get_bytes(key)) for key in sorted(box.keys())]

    def _mbox(self, path: Path) -> Collection[RawItem]:
        """An mail archive's messages, read one at a time as they are stored
        (an archive of years is gigabytes)."""
        head = _head(path)
        if not head.startswith(b"From "):
            # Without the `From ` line mbox starts each message with, Python's
            # reader finds nothing: a single mail saved as .mbox is read as one.
            if looks_like_mail(head):
                return [self._item(path, 0, "email", path.read_bytes())]
            return [self._unreadable(path, "not an mbox file: it does not start with a "
                                     "`From ` line, nor with a mail's headers",
                                     path.read_bytes())]
        return _MboxItems(self, path, _Place.of(path))

    def _table(self, path: Path) -> Collection[RawItem]:
        """A lead list, read a window at a time each time its rows are used (a
        refused one is kept whole in its one item, for review)."""
        if _blank(path):
            return [self._unreadable(path, "the file is empty", path.read_bytes())]
        delimiter = "\t" if _suffix(path) == ".tsv" else self.csv_delimiter
        try:
            table = stream_lead_chunks(_chunks_of(path), delimiter, self.csv_encoding)
        except TableError as error:
            return [self._unreadable(path, str(error), path.read_bytes())]
        except UnicodeDecodeError as error:
            return [self._unreadable(path, f"not {error.encoding} text (byte {error.start}: "
                                     f"{error.reason}); set csv.encoding to the file's",
                                     path.read_bytes())]
        except LookupError:
            raise FatalError(f"csv.encoding {self.csv_encoding!r} in the config is not an "
                             "encoding LeadHub knows (try utf-8 or cp1251)") from None
        if isinstance(table, RowStream):
            return _TableItems(self, path, table, _Place.of(path))
        return list(_TableItems(self, path, table, _Place.of(path)))

    def _json(self, path: Path) -> Collection[RawItem]:
        """A JSON export of form posts: an array's elements (or the one
        object), read an element at a time as they are stored. A file that is
        no JSON is kept whole as one item: processing quarantines it."""
        items = _JsonItems(self, path, _Place.of(path))
        try:
            len(items)  # reads it through once: the count, or the refusal
        except (UnicodeDecodeError, ValueError, RecursionError):
            return [self._item(path, 0, "form", path.read_bytes())]
        return items

    def _unreadable(self, path: Path, reason: str, data: bytes = b"") -> RawItem:
        """The whole file as one item that processing quarantines with `reason`."""
        item = self._item(path, "file", _kind_of(path), data)
        return replace(item, meta={**item.meta, "row": "", "unreadable": f"{path.name}: {reason}"})

    def _item(
        self, path: Path, row: object, kind: RawKind, payload: bytes, extra: dict | None = None,
        place: _Place | None = None,
    ) -> RawItem:
        place = place or _Place.of(path)
        meta = {"path": str(path), "row": str(row), **(extra or {})}
        if kind == "form" and self.default_form:
            meta["form"] = self.default_form
        elif kind == "form":
            meta["form"] = path.stem
        return RawItem(
            item_id=f"file:{place.path_hash}:{row}",
            source=self.name,
            kind=kind,
            payload=payload,
            received_at=self._seen_at or self.clock(),
            meta=meta,
        )


@dataclass(frozen=True)
class _TableItems:
    """A table's raw items, made as they are stored: a file of a million rows
    is never a million items in memory at once."""

    source: FilesSource
    path: Path
    table: RowStream | Table
    place: _Place

    def __len__(self) -> int:
        return len(self.table) if isinstance(self.table, RowStream) else len(self.table.rows)

    def __iter__(self) -> Iterator[RawItem]:
        rows = self.table if isinstance(self.table, RowStream) else self.table.rows
        extra = {"encoding": self.table.encoding, "delimiter": self.table.delimiter}
        for number, row in enumerate(rows, start=self.table.first_row):
            yield self.source._item(self.path, number, "row",
                                    json.dumps(row, ensure_ascii=False).encode(), extra,
                                    self.place)


@dataclass(frozen=True)
class _StreamedItems:
    """A file's items, each read from the file as it is stored: `len` reads
    it through once (and remembers), iterating reads it again."""

    source: FilesSource
    path: Path
    place: _Place
    kind: RawKind = "form"
    first: int = 1  # the first item's number in its id

    def _payloads(self) -> Iterator[bytes]:
        raise NotImplementedError

    @cached_property
    def _count(self) -> int:
        return sum(1 for _ in self._payloads())

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[RawItem]:
        for number, payload in enumerate(self._payloads(), start=self.first):
            yield self.source._item(self.path, number, self.kind, payload, place=self.place)


@dataclass(frozen=True)
class _MboxItems(_StreamedItems):
    """An mbox file's messages, numbered from 0: the reader keeps only where
    each message starts."""

    kind: RawKind = "email"
    first: int = 0

    def _payloads(self) -> Iterator[bytes]:
        box = mailbox.mbox(self.path, factory=None, create=False)
        try:
            for key in box.keys():
                yield box.get_bytes(key)
        finally:
            box.close()

    @cached_property
    def _count(self) -> int:
        # the messages' places only, not the messages
        box = mailbox.mbox(self.path, factory=None, create=False)
        try:
            return len(box.keys())
        finally:
            box.close()


@dataclass(frozen=True)
class _JsonItems(_StreamedItems):
    """A JSON file's values (`json_values`), numbered from 1."""

    def _payloads(self) -> Iterator[bytes]:
        return (json_bytes(value) for value in json_values(_chunks_of(self.path)()))


@dataclass(frozen=True)
class _LineItems(_StreamedItems):
    """A JSON Lines file's non-blank lines, numbered from 1. A file's `\n`
    pieces hold all of its `\r`, `\n` and `\r\n` breaks, so splitting each
    piece gives the lines the whole file's `splitlines` does."""

    def _payloads(self) -> Iterator[bytes]:
        with self.path.open("rb") as handle:
            for piece in handle:
                yield from (line for line in piece.splitlines() if line.strip())


@dataclass(frozen=True)
class _Place:
    """What every item of one file shares: the hash of its path."""

    path_hash: str

    @classmethod
    def of(cls, path: Path) -> _Place:
        return cls(hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16])


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _kind_of(path: Path) -> RawKind:
    if path.is_dir() or _suffix(path) in MAIL_SUFFIXES | MBOX_SUFFIXES:
        return "email"
    return "row" if _suffix(path) in TABLE_SUFFIXES else "form"


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


def _chunks_of(path: Path) -> Chunks:
    """The file's bytes from its start, READ_BYTES at a time, at each call."""
    def chunks() -> Iterator[bytes]:
        with path.open("rb") as handle:
            yield from iter(lambda: handle.read(READ_BYTES), b"")

    return chunks


def _head(path: Path, size: int = HEAD_BYTES, strip: bool = True) -> bytes:
    """The file's first `size` bytes, after the white space it starts with
    when `strip` (read a window at a time, not whole)."""
    head = b""
    for chunk in _chunks_of(path)():
        head = (head + chunk).lstrip() if strip else head + chunk
        if len(head) >= size:
            break
    return head[:size]


def _blank(path: Path) -> bool:
    """Whether the file holds nothing but white space (read until it does not)."""
    return all(not chunk.strip() for chunk in _chunks_of(path)())


def _fingerprint(path: Path) -> str:
    """Content hash of a file, or of a maildir's message names and sizes."""
    digest = hashlib.sha256()
    if path.is_dir():
        for sub in ("new", "cur"):
            for entry in sorted((path / sub).iterdir()):
                digest.update(f"{entry.name}:{entry.stat().st_size}\n".encode())
    else:
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
