"""Write the BI tables as CSV files, streaming row by row, and the dashboard."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from leadhub.errors import FatalError
from transforms.exports import ExportPreset


def write_csv(path: Path, header: Iterable[str], rows: Iterable[list], preset: ExportPreset) -> int:
    """Write one table atomically (a temp file renamed into place); returns rows written."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    count = 0
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("w", encoding=preset.encoding, newline="") as handle:
            writer = csv.writer(handle, delimiter=preset.delimiter, lineterminator="\r\n")
            writer.writerow(header)
            for row in rows:
                writer.writerow(row)
                count += 1
        temporary.replace(path)
    except OSError as error:
        raise FatalError(f"cannot write {path}: {error.strerror}") from None
    return count


def write_text(path: Path, text: str) -> None:
    """Write a text file (the dashboard) atomically."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        temporary.replace(path)
    except OSError as error:
        raise FatalError(f"cannot write {path}: {error.strerror}") from None
