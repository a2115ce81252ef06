"""Learning curves from progress.csv files: eval return against env steps, mean and spread over reruns."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from blocAndTools.errors import UserInputError  # noqa: E402


def find_runs(folder: Path) -> list[Path]:
    """The run folders (holding progress.csv) at or under folder; hidden folders (a sweep's .ray_tune) are not runs."""
    runs = sorted(path.parent for path in Path(folder).rglob("progress.csv")
                  if not any(part.startswith(".") for part in path.relative_to(folder).parts))
    if not runs:
        raise UserInputError(f"no progress.csv at or under {str(folder)!r}")
    return runs


def read_progress(run_dir: Path) -> pd.DataFrame:
    """One run's progress.csv as a DataFrame."""
    try:
        return pd.read_csv(run_dir / "progress.csv")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserInputError(f"{run_dir / 'progress.csv'} cannot be read: {error}") from None


def curve_groups(folders: list[Path]) -> list[tuple[str, list[Path]]]:
    """(legend label, run folders) per curve: one per folder, or one per grid point of a sweep folder."""
    from SoftActorCritic.sweep_summary import group_runs, point_label

    groups = []
    for folder in folders:
        varied, points = group_runs(find_runs(folder))
        if len(points) <= 1:
            groups.append((folder.name, find_runs(folder)))
            continue
        prefix = f"{folder.name}: " if len(folders) > 1 else ""
        groups.extend((prefix + point_label(spec, varied), runs) for spec, runs in points)
    return groups


def plot_learning_curves(folders: list[Path], out: Path, metrics: list[str] | str = "eval_return_mean") -> Path:
    """One panel per metric, one curve per folder (or per grid point of a sweep folder): the mean of the
    metric over the runs (seeds) at each env step, shaded between their min and max."""
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
            rows = pd.concat([frame[["env_steps", metric]] for frame in frames]).dropna()
            curve = rows.groupby("env_steps")[metric].agg(["mean", "min", "max"])
            line, = axis.plot(curve.index, curve["mean"], color=f"C{index}", marker="o", markersize=3,
                              label=f"{label} ({len(frames)} run{'s' if len(frames) > 1 else ''})")
            if len(frames) > 1:
                axis.fill_between(curve.index, curve["min"], curve["max"], color=line.get_color(), alpha=0.2)
    for axis, metric in zip(axes[:, 0], metrics, strict=True):
        axis.set_ylabel(metric.replace("_", " "))
        axis.grid(alpha=0.3)
        axis.legend(fontsize=8)
    axes[-1, 0].set_xlabel("environment steps")
    axes[0, 0].set_title("mean over runs, min-max band", fontsize=10)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
