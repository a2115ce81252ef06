"""Figures from progress.csv files: learning curves (IQM over reruns with its bootstrap band, or mean and min-max)
and performance profiles (`compare`)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from blocAndTools.errors import UserInputError  # noqa: E402
from blocAndTools.statistics import iqm_interval, performance_profile  # noqa: E402
from SoftActorCritic.sweep_summary import find_runs, group_runs, point_label  # noqa: E402

BANDS = {"iqm": "IQM over runs, 95% bootstrap CI band", "minmax": "mean over runs, min-max band"}


def read_progress(run_dir: Path) -> pd.DataFrame:
    """One run's progress.csv as a DataFrame."""
    try:
        return pd.read_csv(run_dir / "progress.csv")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserInputError(f"{run_dir / 'progress.csv'} cannot be read: {error}") from None


def curve_groups(folders: list[Path]) -> list[tuple[str, list[Path]]]:
    """(legend label, run folders) per curve: one per folder, or one per grid point of a sweep folder."""
    groups = []
    for folder in folders:
        varied, points = group_runs(find_runs(folder))
        if len(points) <= 1:
            groups.append((folder.name, find_runs(folder)))
            continue
        prefix = f"{folder.name}: " if len(folders) > 1 else ""
        groups.extend((prefix + point_label(spec, varied), runs) for spec, runs in points)
    return groups


def band_curve(rows: pd.DataFrame, metric: str, band: str = "iqm") -> pd.DataFrame:
    """The curve of `metric` over runs at each env step (rows: env_steps, metric, one row per run and step).

    Columns line, low, high, runs, indexed by env_steps. band "iqm": the IQM with its 95% bootstrap interval
    (blocAndTools.statistics, seed 0; NaN where one run was evaluated); "minmax": the mean, min and max.
    """
    values = rows[["env_steps", metric]].dropna().groupby("env_steps")[metric]
    if band == "minmax":
        curve = values.agg(["mean", "min", "max", "count"])
        curve.columns = ["line", "low", "high", "runs"]
        return curve
    intervals = {steps: iqm_interval(group.to_numpy()) for steps, group in values}
    return pd.DataFrame([(i.point, np.nan if i.low is None else i.low, np.nan if i.high is None else i.high, i.runs)
                         for i in intervals.values()], columns=["line", "low", "high", "runs"],
                        index=pd.Index(list(intervals), name="env_steps"))


def draw_curve(axis, curve: pd.DataFrame, color: str, label: str) -> None:
    """The curve's line, and its band unless a single run made it."""
    axis.plot(curve.index, curve["line"], color=color, marker="o", markersize=3, label=label)
    if curve["runs"].max() > 1:
        axis.fill_between(curve.index, curve["low"], curve["high"], color=color, alpha=0.2)


def plot_learning_curves(folders: list[Path], out: Path, metrics: list[str] | str = "eval_return_mean",
                         band: str = "iqm") -> Path:
    """One panel per metric, one curve per folder (or per grid point of a sweep folder): band_curve's line
    (IQM or mean over the runs at each env step) and band (its 95% CI, or min to max); no band for one run."""
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    groups = curve_groups(folders)
    figure, axes = plt.subplots(len(metrics), 1, figsize=(8, 3.6 * len(metrics) + 1.0), sharex=True, squeeze=False)
    for index, (label, runs) in enumerate(groups):
        frames = [read_progress(run) for run in runs]
        for axis, metric in zip(axes[:, 0], metrics, strict=True):
            missing = [run for run, frame in zip(runs, frames, strict=True) if metric not in frame.columns]
            if missing:
                raise UserInputError(f"--metric {metric!r}: not a column of {missing[0] / 'progress.csv'} "
                                     f"(columns: {', '.join(frames[0].columns)})")
            curve = band_curve(pd.concat([frame[["env_steps", metric]] for frame in frames]), metric, band)
            draw_curve(axis, curve, f"C{index}", f"{label} ({len(frames)} run{'s' if len(frames) > 1 else ''})")
    for axis, metric in zip(axes[:, 0], metrics, strict=True):
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[-1, 0].set_xlabel("environment steps")
    axes[0, 0].set_title(BANDS[band], fontsize=10)
    return save(figure, out)


def plot_performance_profiles(sides: dict[str, np.ndarray], out: Path, xlabel: str, thresholds: int = 101) -> Path:
    """Both sides' performance profiles on one axis: the fraction of runs scoring above each threshold (evenly
    spaced from the lowest to the highest score of either side), with its 95% bootstrap band (none for one run)."""
    pooled = np.concatenate([np.asarray(scores, dtype=float) for scores in sides.values()])
    taus = np.linspace(pooled.min(), pooled.max(), thresholds)
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for index, (label, scores) in enumerate(sides.items()):
        profile = performance_profile(scores, taus)
        axis.plot(taus, profile.point, color=f"C{index}", drawstyle="steps-post",
                  label=f"{label} ({profile.runs} run{'s' if profile.runs > 1 else ''})")
        if profile.low is not None:
            axis.fill_between(taus, profile.low, profile.high, color=f"C{index}", alpha=0.2, step="post")
    axis.set_xlabel(xlabel)
    axis.set_ylabel("fraction of runs with score > threshold")
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    axis.set_title("performance profiles, 95% bootstrap CI bands", fontsize=10)
    return save(figure, out)


def save(figure, out: Path) -> Path:
    """Write the figure to out (its folder created) and close it."""
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
