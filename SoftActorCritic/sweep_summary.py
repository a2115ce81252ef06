"""The summary of a sweep or search folder: summary.csv (one row per grid point) and its table.

Reads the run folders (spec.yaml, progress.csv) only, whichever backend trained them: a grid point
is the runs whose specs differ in nothing but name, description and seed. Each run is scored by its
final eval return (its last evaluation) and its AUC (the mean of all its evaluations); a point's row
gives their IQM over its runs with a 95% stratified bootstrap interval (blocAndTools.statistics, seed 0:
the same runs give the same interval; none with one run). Also used by `plot` (one curve per grid
point), `compare` (two sets of runs) and `tune` (its best trial).
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import with_current_names

if TYPE_CHECKING:
    import pandas as pd

    from blocAndTools.experiment_spec import ExperimentSpec
    from blocAndTools.statistics import Interval

SUMMARY = "summary.csv"
MANIFEST = "sweep.yaml"  # a sweep folder's planned runs (written by sweeps.py)
METRIC = "eval_return_mean"  # the progress.csv column that scores a run
# Spec fields that never make two runs different grid points.
NOT_A_GRID_FIELD = ("name", "description", "seed")


def find_runs(folder: Path) -> list[Path]:
    """The run folders (holding progress.csv) at or under folder; hidden folders (a sweep's .ray_tune) are not runs.

    In a sweep folder they come in the order its sweep.yaml planned them (the grid's order: reward scale 1, 5, 20,
    40, not the folder names' 1, 20, 40, 5), elsewhere sorted by path."""
    runs = sorted(path.parent for path in Path(folder).rglob("progress.csv")
                  if not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not runs:
        raise UserInputError(f"no progress.csv at or under {str(folder)!r}")
    try:
        manifest = yaml.safe_load((Path(folder) / MANIFEST).read_text())
        planned = [Path(folder) / entry["folder"] for entry in manifest["runs"]]
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return runs  # not a sweep folder (or an unreadable manifest): by path
    order = {run: index for index, run in enumerate(planned)}
    return sorted(runs, key=lambda run: order.get(run, len(order)))  # stable: unplanned ones last, by path


def read_spec_fields(run_dir: Path) -> dict[str, Any]:
    """A run folder's spec.yaml as a dict, fields under their current names (old run folders too); no validation."""
    path = Path(run_dir) / "spec.yaml"
    return with_current_names(yaml.safe_load(path.read_text()) or {}, str(path))


def read_run(run_dir: Path) -> tuple[dict[str, Any], pd.DataFrame] | None:
    """(spec dict, progress) of a run folder, or None when it has no epoch yet."""
    import pandas as pd

    try:
        spec = read_spec_fields(run_dir)
        progress = pd.read_csv(run_dir / "progress.csv")
    except (OSError, yaml.YAMLError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return None
    return (spec, progress) if len(progress) else None


def run_scores(progress: pd.DataFrame, metric: str = METRIC) -> tuple[float, float] | None:
    """(final, AUC) of one run: its last evaluation of `metric` and the mean of all its evaluations; None if none.

    The mean over evaluations is the area under the learning curve divided by its length (evaluations are evenly
    spaced: one per epoch), so a run that learns early scores higher than one that ends at the same return.
    """
    values = progress[metric].dropna()
    return (float(values.iloc[-1]), float(values.mean())) if len(values) else None


def interval_columns(prefix: str, interval: Interval | None) -> dict[str, float]:
    """An interval as the table columns prefix, prefix_ci_low, prefix_ci_high: NaN bounds (an empty CSV cell) for one
    run, all NaN for None (no run)."""
    if interval is None:
        return {prefix: math.nan, f"{prefix}_ci_low": math.nan, f"{prefix}_ci_high": math.nan}
    return {prefix: interval.point, f"{prefix}_ci_low": math.nan if interval.low is None else interval.low,
            f"{prefix}_ci_high": math.nan if interval.high is None else interval.high}


def interval_cell(row: Mapping[str, Any], prefix: str, digits: int = 1) -> str:
    """'point [low, high]' from a row's interval_columns (a DataFrame row, or one read back from a CSV); 'point [–]'
    with one run, '-' with none."""
    from blocAndTools.statistics import Interval, format_interval  # scipy: only when a summary is made

    point, low, high = (float(row[f"{prefix}{suffix}"]) for suffix in ("", "_ci_low", "_ci_high"))
    if math.isnan(point):
        return "-"
    bounds = (None, None) if math.isnan(low) or math.isnan(high) else (low, high)
    return format_interval(Interval(point, *bounds, runs=0), digits)  # runs: not shown


def _point_key(spec: dict[str, Any]) -> str:
    return json.dumps({key: value for key, value in spec.items() if key not in NOT_A_GRID_FIELD},
                      sort_keys=True, default=str)


def group_runs(run_dirs: Sequence[Path]) -> tuple[list[str], list[tuple[dict[str, Any], list[Path]]]]:
    """Group run folders by grid point (their spec.yaml without name and seed).

    Returns (varied fields, [(the point's spec, its run folders)]) in the order first seen; the
    varied fields are those whose values differ between the points.
    """
    points: dict[str, tuple[dict[str, Any], list[Path]]] = {}
    for run_dir in run_dirs:
        try:
            spec = read_spec_fields(run_dir)
        except (OSError, yaml.YAMLError):
            continue
        points.setdefault(_point_key(spec), (spec, []))[1].append(Path(run_dir))
    specs = [spec for spec, _ in points.values()]
    varied = [key for key in specs[0] if key not in NOT_A_GRID_FIELD
              and len({json.dumps(spec.get(key), default=str) for spec in specs}) > 1] if specs else []
    return varied, list(points.values())


def point_label(spec: dict[str, Any], varied: Sequence[str]) -> str:
    """Short name of a grid point: its varied fields, or its experiment name when nothing varies."""
    if not varied:
        return str(spec.get("name", "runs")).split("-")[0]
    return ", ".join(f"{key}={short_value(spec.get(key))}" for key in varied)


def short_value(value: Any) -> str:
    """A spec value for a label or a table cell: a list as 256x256, a float to 12 significant digits (no noise)."""
    if isinstance(value, float):
        return f"{value:.12g}"
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def summarize(run_dirs: Sequence[Path]) -> pd.DataFrame:
    """One row per grid point: varied fields, seeds, runs, env steps, IQM [95% CI] of the final eval return and of
    its AUC, final and best eval return (mean, min, max), and how many runs reached the spec's goal.

    seeds: the point's run folders with at least one epoch (others are left out); runs: those with an evaluation,
    the n of every statistic (the same unless max_eval_trj is 0). Final: each run's last evaluation; AUC: each
    run's mean over its evaluations (run_scores); best: each run's highest eval return; goal_reached: the runs
    whose best reached expected_reward_goal (empty without a goal): "learned k times out of n".
    """
    import pandas as pd

    from blocAndTools.statistics import iqm_interval  # scipy: only when a summary is made, off `sac --help`

    runs = [path for path in run_dirs if read_run(Path(path)) is not None]
    varied, points = group_runs(runs)
    rows = []
    for spec, folders in points:
        frames = [read_run(folder)[1] for folder in folders]
        scores = [score for score in map(run_scores, frames) if score is not None]
        final, auc = [final for final, _ in scores], [auc for _, auc in scores]
        best = [float(frame[METRIC].max()) for frame in frames if frame[METRIC].notna().any()]
        row = {key: short_value(spec.get(key)) for key in varied}
        row.update({"point": spec.get("name", ""), "seeds": len(frames), "runs": len(scores),
                    "env_steps": int(min(frame["env_steps"].iloc[-1] for frame in frames)),
                    "epochs": int(min(len(frame) for frame in frames))})
        for name, values in (("final", final), ("auc", auc)):  # seed 0: the same runs give the same interval
            row.update(interval_columns(f"{name}_iqm", iqm_interval(values) if values else None))
        for name, values in (("final", final), ("best", best)):
            row[f"{name}_eval_return_mean"] = float(sum(values) / len(values)) if values else math.nan
            row[f"{name}_eval_return_min"] = float(min(values)) if values else math.nan
            row[f"{name}_eval_return_max"] = float(max(values)) if values else math.nan
        goal = spec.get("expected_reward_goal")  # reached: at some evaluation, as the runner announces it
        row["goal_reached"] = math.nan if goal is None else sum(value >= goal for value in best)
        row["wall_time_s"] = float(sum(frame["wall_time_s"].iloc[-1] for frame in frames) / len(frames))
        rows.append(row)
    return pd.DataFrame(rows)


def write_summary(sweep_dir: Path, run_dirs: Sequence[Path]) -> pd.DataFrame:
    """summary.csv in the sweep folder (returns the table)."""
    table = summarize(run_dirs)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    table.to_csv(sweep_dir / SUMMARY, index=False, float_format="%.12g")  # no float noise (3.0300000000000002)
    return table


def print_summary(table: pd.DataFrame, title: str) -> None:
    """The summary as a rich table (plain aligned text off a terminal)."""
    from rich.console import Console
    from rich.table import Table

    from blocAndTools.statistics import DASH

    console = Console()
    if not console.is_terminal:  # a pipe or a log file: never cut a cell (rich would squeeze into 80 columns)
        console = Console(width=10_000)
    view = Table(title=title, title_justify="left", caption_justify="left",
                 caption=f"eval return of each run: final = its last evaluation, AUC = the mean of its evaluations, "
                         f"best = its highest; IQM over the n runs [95% bootstrap CI] ({DASH}: one run, no interval)")
    fixed = {"point", "seeds", "runs", "env_steps", "epochs", "wall_time_s", "goal_reached"}
    varied = [column for column in table.columns
              if column not in fixed and "eval_return" not in column and "_iqm" not in column]
    goals = bool("goal_reached" in table and table["goal_reached"].notna().any())  # older summaries have no such column
    for column in varied + ["n", "env steps", "final: IQM [95% CI]", "AUC: IQM [95% CI]", "final: min to max",
                            "best: mean"] + ["reached the goal"] * goals + ["wall time"]:
        view.add_column(column, justify="left" if column in varied else "right", no_wrap=column not in varied)
    for _, row in table.iterrows():
        reached = ([DASH if math.isnan(row["goal_reached"]) else f"{row['goal_reached']:.0f} of {row['runs']}"]
                   if goals else [])
        view.add_row(*[str(row[column]) for column in varied], str(row["runs"]), str(row["env_steps"]),
                     interval_cell(row, "final_iqm"), interval_cell(row, "auc_iqm"),
                     f"{row['final_eval_return_min']:.1f} to {row['final_eval_return_max']:.1f}",
                     f"{row['best_eval_return_mean']:.1f}", *reached, f"{row['wall_time_s'] / 60:.1f} min")
    console.print(view)


def report_summary(runs: Sequence[tuple[ExperimentSpec, Path]], sweep_dir: Path | None) -> None:
    """End of `train`: for one run, its folder, final and best eval return and wall time; for a sweep,
    summary.csv in the sweep folder and the table."""
    run_dirs = [Path(run_dir) for _, run_dir in runs]
    if len(run_dirs) == 1 and sweep_dir is None:
        run = read_run(run_dirs[0])
        if run is None:
            return
        evals = run[1]["eval_return_mean"].dropna()
        final = f"{evals.iloc[-1]:.1f}" if len(evals) else "-"
        best = f"{evals.max():.1f} (epoch {int(run[1].loc[evals.idxmax(), 'epoch'])})" if len(evals) else "-"
        print(f"run folder {run_dirs[0]}: final eval return {final}, best {best}, "
              f"wall time {run[1]['wall_time_s'].iloc[-1] / 60:.1f} min", flush=True)
        return
    table = write_summary(sweep_dir, run_dirs) if sweep_dir is not None else summarize(run_dirs)
    if len(table):
        where = f"{sweep_dir / SUMMARY}" if sweep_dir is not None else "not written: no --run-dir"
        print_summary(table, f"sweep summary ({where})")
