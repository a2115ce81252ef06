"""Epoch metrics: the live console view (rich), progress.csv and TensorBoard events of a run."""
from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterator, Mapping
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
    """One value of an epoch row: its progress.csv column, its TensorBoard section and its console column."""

    name: str                 # the key in the row (and in the brain's metrics), the progress.csv column
    section: str | None       # TensorBoard tag section/name (losses, values, charts); None: not in TensorBoard
    header: str | None = None  # console header; None: not on the console
    fmt: str = "{:.3g}"       # console format


# Every value of an epoch row, in progress.csv order: the one definition of the metric names. A metric a
# variant does not have (v_loss in v2) is left empty. The update's metrics are the rows from v_loss to q2_mean.
COLUMNS = (
    Column("epoch", None, "epoch", "{:.0f}"),
    Column("env_steps", None, "steps", "{:.0f}"),
    Column("gradient_steps", None),
    Column("wall_time_s", None),
    Column("eval_return_mean", "charts", "eval ret", "{:.1f}"),
    Column("eval_return_std", "charts", "± std", "{:.1f}"),
    Column("train_return_mean", "charts", "train ret", "{:.1f}"),
    Column("train_episodes", "charts"),
    Column("v_loss", "losses", "V loss"),
    Column("q1_loss", "losses", "Q1 loss"),
    Column("q2_loss", "losses"),
    Column("pi_loss", "losses", "pi loss"),
    Column("alpha_loss", "losses"),
    Column("alpha", "charts", "alpha"),
    Column("log_pi_mean", "charts", "log pi", "{:.2f}"),
    Column("v_mean", "values", "V mean", "{:.1f}"),
    Column("frozen_v_mean", "values"),
    Column("q1_mean", "values", "Q1 mean", "{:.1f}"),
    Column("q2_mean", "values"),
    Column("steps_per_s", "charts", "steps/s", "{:.0f}"),
)
PROGRESS_COLUMNS = tuple(column.name for column in COLUMNS)
UPDATE_METRICS = PROGRESS_COLUMNS[PROGRESS_COLUMNS.index("v_loss"):PROGRESS_COLUMNS.index("q2_mean") + 1]
CONSOLE_COLUMNS = tuple((column.name, column.header, column.fmt) for column in COLUMNS if column.header)
TENSORBOARD_TAGS = {column.name: f"{column.section}/{column.name}" for column in COLUMNS if column.section}


def tensorboard_tag(key: str) -> str:
    """Metric names grouped in sections, as CleanRL does: losses/..., values/..., charts/..."""
    return TENSORBOARD_TAGS[key]


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

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console()
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
            print(" | ".join(f"{header.strip()} {_format(row.get(key), fmt)}" for key, header, fmt in CONSOLE_COLUMNS),
                  flush=True)
            return
        table = Table(show_header=not self._header_printed, box=None, pad_edge=False)
        for _, header, _ in CONSOLE_COLUMNS:
            table.add_column(header, justify="right", min_width=9)
        table.add_row(*(_format(row.get(key), fmt) for key, _, fmt in CONSOLE_COLUMNS))
        self.console.print(table)
        self._header_printed = True

    def print(self, message: str) -> None:
        self.console.print(message, highlight=False, soft_wrap=True)


class ProgressFiles:
    """progress.csv (one row per epoch, header first) and TensorBoard events under run_dir/tb."""

    def __init__(self, run_dir: Path, keep_epochs: int = 0) -> None:
        """Open for appending; on resume, rows after `keep_epochs` (written after the checkpoint) are dropped."""
        self.csv_path = Path(run_dir) / "progress.csv"
        rows = []
        if keep_epochs > 0 and self.csv_path.exists():
            with self.csv_path.open(newline="") as file:
                rows = [row for row in csv.DictReader(file) if int(row["epoch"]) <= keep_epochs]
        with self.csv_path.open("w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=PROGRESS_COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.tensorboard = tf.summary.create_file_writer(str(Path(run_dir) / "tb"))

    def write(self, row: Mapping[str, object]) -> None:
        """Append one epoch row to progress.csv and its scalars to TensorBoard (x axis: env steps)."""
        with self.csv_path.open("a", newline="") as file:
            csv.DictWriter(file, fieldnames=PROGRESS_COLUMNS).writerow(
                {key: "" if row.get(key) is None else row[key] for key in PROGRESS_COLUMNS})
        with self.tensorboard.as_default(step=int(row["env_steps"])):
            for key, tag in TENSORBOARD_TAGS.items():
                value = row.get(key)
                if value is not None:
                    tf.summary.scalar(tag, float(value))
        self.tensorboard.flush()

    def close(self) -> None:
        self.tensorboard.close()
