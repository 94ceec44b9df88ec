"""CSV files as people export them from Excel or another CRM, as row dicts."""

from __future__ import annotations

import csv
import io

from transforms.text import decode_text

_DELIMITERS = (",", ";", "\t")


class TableError(ValueError):
    """The file is not a table LeadHub can read (says what to fix)."""


def read_table(
    data: bytes, delimiter: str | None = None, encoding: str | None = None
) -> tuple[list[dict[str, str]], str, str]:
    """Rows keyed by header, plus the encoding and delimiter that were used.

    UTF-8 with or without BOM and cp1251 are told apart by decoding; the
    delimiter is the one of `,` `;` tab that splits the header into the most
    columns consistently over the first lines.
    """
    text, used_encoding = (data.decode(encoding), encoding) if encoding else decode_text(data)
    used_delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=used_delimiter)
    rows = [row for row in reader if any(cell.strip() for cell in row)]
    if not rows:
        raise TableError("the file is empty: expected a header row and data rows")
    header = [cell.strip() for cell in rows[0]]
    if len(header) < 2:
        raise TableError(
            "only one column found: save the file as CSV with `,`, `;` or tab between columns"
        )
    records = [
        {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header) if name}
        for row in rows[1:]
    ]
    return records, used_encoding, used_delimiter


def sniff_delimiter(text: str) -> str:
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","

    def score(candidate: str) -> tuple[int, int]:
        counts = [line.count(candidate) for line in lines]
        consistent = sum(1 for count in counts if count == counts[0])
        return (counts[0] > 0 and consistent, counts[0])

    return max(_DELIMITERS, key=score)
