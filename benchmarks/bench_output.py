"""What the benchmark scripts share: printing lines and tables, reading counts."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table


class Report:
    """Lines and tables on stdout, 160 columns wide when piped to a file."""

    def __init__(self) -> None:
        self._console = Console(width=None if sys.stdout.isatty() else 160)

    def line(self, text: str) -> None:
        self._console.print(text, highlight=False, markup=False, soft_wrap=True)

    def table(
        self, title: str, columns: Sequence[str], rows: list[list[str]], left: Sequence[str] = ()
    ) -> None:
        table = Table(title=title)
        for name in columns:
            table.add_column(name, justify="left" if name in left else "right")
        for row in rows:
            table.add_row(*row)
        self._console.print(table)


def positive(text: str) -> int:
    """An argparse type: `10000`, `10_000` and `10,000` are all ten thousand."""
    value = int(text.replace("_", "").replace(",", ""))
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value
