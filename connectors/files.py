"""The files source: a user's mail export, form dumps and CRM lead lists.

Reads .eml files, folders of them, maildir folders, .mbox files, .csv lead
lists, and .json / .jsonl form submissions, and yields one raw item per
message, row or submission. Each file is checkpointed by its content hash, so
an unchanged file is not even read twice.
"""

from __future__ import annotations

import hashlib
import json
import mailbox
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from connectors import CheckpointReader
from leadhub.errors import FatalError
from transforms.records import RawItem
from transforms.tables import TableError, read_table

MAIL_SUFFIXES = {".eml", ".msg.eml"}
TABLE_SUFFIXES = {".csv", ".tsv"}
FORM_SUFFIXES = {".json", ".jsonl", ".ndjson"}
MBOX_SUFFIXES = {".mbox", ".mbx"}
SUPPORTED = MAIL_SUFFIXES | TABLE_SUFFIXES | FORM_SUFFIXES | MBOX_SUFFIXES


@dataclass
class FileBatch:
    """The raw items of one file (or maildir) and the checkpoint to store with them."""

    path: Path
    items: list[RawItem]
    checkpoint: tuple[str, str, str]


@dataclass
class FilesSource:
    name: str
    paths: list[Path]
    default_form: str = ""
    csv_delimiter: str | None = None
    csv_encoding: str | None = None
    ignored: list[Path] = field(default_factory=list)

    def scopes(self) -> list[str]:
        return ["files"]

    def acknowledge(self, batch: FileBatch) -> None:
        """Files are left as they are."""

    def discover(self) -> list[Path]:
        """Every readable input below the configured paths, in a stable order."""
        found: list[Path] = []
        for path in self.paths:
            if not path.exists():
                raise FatalError(f"{path}: no such file or folder")
            if path.is_file():
                if _suffix(path) not in SUPPORTED:
                    raise FatalError(
                        f"{path}: cannot read {path.suffix or 'this'} files; use .eml, .mbox, "
                        ".csv, .json, .jsonl or a maildir/folder"
                    )
                found.append(path)
            elif _is_maildir(path):
                found.append(path)
            else:
                found += self._walk(path)
        return found

    def batches(self, checkpoint_of: CheckpointReader) -> Iterator[FileBatch]:
        """One batch per input whose content changed since its checkpoint."""
        for path in self.discover():
            fingerprint = _fingerprint(path)
            scope = str(path.resolve())
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

    def _read(self, path: Path) -> list[RawItem]:
        try:
            if path.is_dir():
                return self._maildir(path)
            suffix = _suffix(path)
            if suffix in MAIL_SUFFIXES:
                return [self._item(path, 0, "email", path.read_bytes())]
            if suffix in MBOX_SUFFIXES:
                return self._mbox(path)
            if suffix in TABLE_SUFFIXES:
                return self._table(path)
            return self._forms(path)
        except OSError as error:
            raise FatalError(f"{path}: cannot read ({error.strerror})") from None

    def _maildir(self, path: Path) -> list[RawItem]:
        box = mailbox.Maildir(path, factory=None, create=False)
        return [self._item(path, key, "email", box.get_bytes(key)) for key in sorted(box.keys())]

    def _mbox(self, path: Path) -> list[RawItem]:
        box = mailbox.mbox(path, factory=None, create=False)
        try:
            return [
                self._item(path, index, "email", box.get_bytes(key))
                for index, key in enumerate(box.keys())
            ]
        finally:
            box.close()

    def _table(self, path: Path) -> list[RawItem]:
        delimiter = "\t" if _suffix(path) == ".tsv" else self.csv_delimiter
        try:
            rows, encoding, used = read_table(path.read_bytes(), delimiter, self.csv_encoding)
        except (TableError, UnicodeDecodeError, LookupError) as error:
            raise FatalError(f"{path}: {error}") from None
        return [
            self._item(
                path,
                number,
                "row",
                json.dumps(row, ensure_ascii=False).encode(),
                {"encoding": encoding, "delimiter": used},
            )
            for number, row in enumerate(rows, start=2)  # row 1 is the header
        ]

    def _forms(self, path: Path) -> list[RawItem]:
        data = path.read_bytes()
        if _suffix(path) == ".json":
            try:
                parsed = json.loads(data.decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                # Kept whole as one item: processing quarantines it with the reason.
                return [self._item(path, 0, "form", data)]
            records = parsed if isinstance(parsed, list) else [parsed]
            payloads = [json.dumps(r, ensure_ascii=False).encode() for r in records]
        else:
            payloads = [line for line in data.splitlines() if line.strip()]
        return [self._item(path, n, "form", p) for n, p in enumerate(payloads, start=1)]

    def _item(
        self, path: Path, row: object, kind: str, payload: bytes, extra: dict | None = None
    ) -> RawItem:
        path_hash = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:16]
        meta = {"path": str(path), "row": str(row), **(extra or {})}
        if kind == "form" and self.default_form:
            meta["form"] = self.default_form
        elif kind == "form":
            meta["form"] = path.stem
        return RawItem(
            item_id=f"file:{path_hash}:{row}",
            source=self.name,
            kind=kind,
            payload=payload,
            received_at=datetime.fromtimestamp(path.stat().st_mtime, UTC),
            meta=meta,
        )


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _is_maildir(path: Path) -> bool:
    return (path / "cur").is_dir() and (path / "new").is_dir()


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
