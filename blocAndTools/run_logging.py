"""Epoch metrics: the live console view (rich), progress.csv and TensorBoard events of a run.

Generic: the columns (which metrics, in which order, where each one shows) are the algorithm's, given as
a sequence of Column.
"""
from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import tensorflow as tf
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text


class Column(NamedTuple):
    """One value of an epoch row: its progress.csv column, its TensorBoard section and its console column.

    The algorithm defines its columns (SoftActorCritic/metrics.py) and passes them to ConsoleView and ProgressFiles.
    """

    name: str                 # the key in the row (and in the algorithm's metrics), the progress.csv column
    section: str | None       # TensorBoard tag section/name (losses, values, charts); None: not in TensorBoard
    header: str | None = None  # console header; None: not on the console
    fmt: str = "{:.3g}"       # console format
    former_names: tuple[str, ...] = ()  # its names in progress.csv files written before a rename (read on resume)


def _format(value: object, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(value)


class StepsPerSecondColumn(ProgressColumn):
    """Environment steps per second of the running epoch (blank until rich has measured a speed)."""

    def render(self, task: Task) -> Text:
        return Text(f"{task.speed:6.0f} steps/s" if task.speed is not None else " " * 13)


class ConsoleView:
    """A progress bar per epoch (steps/s, ETA) and one row of metrics per epoch.

    On a terminal the bar is live; otherwise (CI, a log file) each epoch prints plain lines.
    """

    def __init__(self, columns: Sequence[Column], console: Console | None = None) -> None:
        self.console = console or Console()
        self._columns = [(column.name, column.header, column.fmt) for column in columns if column.header]
        self._header_printed = False

    @property
    def live(self) -> bool:
        return self.console.is_terminal

    @contextmanager
    def epoch_progress(self, epoch: int, total_steps: int) -> Iterator[Callable[[int], None]]:
        """Context giving `advance(n_steps)`; shows a live bar on a terminal, nothing otherwise."""
        if not self.live:
            yield lambda n=1: None
            return
        columns = (TextColumn(f"epoch {epoch}"), BarColumn(), MofNCompleteColumn(),
                   StepsPerSecondColumn(), TimeElapsedColumn(),
                   TextColumn("ETA"), TimeRemainingColumn())
        with Progress(*columns, console=self.console, transient=True) as progress:
            task = progress.add_task("steps", total=total_steps)
            yield lambda n=1: progress.advance(task, n)

    def print_epoch(self, row: Mapping[str, object]) -> None:
        """One aligned row of the epoch's metrics (a header before the first); plain `key value` pairs off a
        terminal."""
        if not self.live:
            print(" | ".join(f"{header.strip()} {_format(row.get(key), fmt)}" for key, header, fmt in self._columns),
                  flush=True)
            return
        table = Table(show_header=not self._header_printed, box=None, pad_edge=False)
        for _, header, _ in self._columns:
            table.add_column(header, justify="right", min_width=9)
        table.add_row(*(_format(row.get(key), fmt) for key, _, fmt in self._columns))
        self.console.print(table)
        self._header_printed = True

    def print(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)


class ProgressFiles:
    """progress.csv (one row per epoch, header first) and TensorBoard events under run_dir/tb."""

    def __init__(self, run_dir: Path, columns: Sequence[Column], keep_epochs: int = 0) -> None:
        """Open for appending; on resume, rows after `keep_epochs` (written after the checkpoint) are dropped, and
        the rows kept get each column's current name."""
        self.csv_path = Path(run_dir) / "progress.csv"
        self.names = tuple(column.name for column in columns)
        # TensorBoard tags grouped in sections, as CleanRL does: losses/..., values/..., charts/...
        self.tensorboard_tags = {column.name: f"{column.section}/{column.name}" for column in columns if column.section}
        current_name = {former: column.name for column in columns for former in column.former_names}
        rows = []
        if keep_epochs > 0 and self.csv_path.exists():
            with self.csv_path.open(newline="") as file:
                rows = [{current_name.get(key, key): value for key, value in row.items()}
                        for row in csv.DictReader(file) if int(row["epoch"]) <= keep_epochs]
        with self.csv_path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=self.names)
            writer.writeheader()
            writer.writerows(rows)
        self.tensorboard = tf.summary.create_file_writer(str(Path(run_dir) / "tb"))

    def write(self, row: Mapping[str, object]) -> None:
        """Append one epoch row to progress.csv and its scalars to TensorBoard (x axis: env steps)."""
        with self.csv_path.open("a", newline="") as file:
            csv.DictWriter(file, fieldnames=self.names).writerow(
                {key: "" if row.get(key) is None else row[key] for key in self.names})
        with self.tensorboard.as_default(step=int(row["env_steps"])):
            for key, tag in self.tensorboard_tags.items():
                value = row.get(key)
                if value is not None:
                    tf.summary.scalar(tag, float(value))
        self.tensorboard.flush()

    def close(self) -> None:
        self.tensorboard.close()
