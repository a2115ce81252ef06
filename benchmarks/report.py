"""What every benchmark script does with its results: print them as a rich table and write them to a CSV."""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table


def wide_console(width: int = 120) -> Console:
    """A console at least `width` columns wide: piped to a file, rich would squeeze tables into 80."""
    return Console(width=max(width, Console().width))


def print_table(console: Console, title: str, columns: Sequence[str],
                rows: Iterable[Sequence[object] | None]) -> None:
    """Print rows of cells under `columns`, the first column left-aligned, the others right-aligned.

    A None row starts a new section. Cells are shown as text, never as rich markup ("[idx]" stays).
    """
    table = Table(title=escape(title), title_justify="left")
    for index, column in enumerate(columns):
        table.add_column(escape(column), justify="left" if index == 0 else "right")
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*(escape(str(cell)) for cell in row))
    console.print(table)


def save_results(frame: pd.DataFrame, path: Path, append: bool = False, float_format: str | None = None) -> None:
    """Write frame to the CSV at path (None as an empty cell).

    append=True stamps the rows with the time of the run (run_utc) and keeps the earlier runs' rows
    above them (the README quotes earlier runs; columns new to this run stay empty in older rows).
    """
    if append:
        frame = frame.assign(run_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if path.exists():
            frame = pd.concat([pd.read_csv(path), frame], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False, float_format=float_format)
