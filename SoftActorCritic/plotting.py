"""Learning curves from progress.csv files: eval return against env steps, mean and spread over reruns."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from blocAndTools.errors import UserInputError  # noqa: E402


def find_runs(folder: Path) -> list[Path]:
    """The run folders (holding progress.csv) at or under folder."""
    runs = sorted(path.parent for path in Path(folder).rglob("progress.csv"))
    if not runs:
        raise UserInputError(f"no progress.csv at or under {str(folder)!r}")
    return runs


def read_progress(run_dir: Path) -> pd.DataFrame:
    """One run's progress.csv as a DataFrame."""
    try:
        return pd.read_csv(run_dir / "progress.csv")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise UserInputError(f"{run_dir / 'progress.csv'} cannot be read: {error}") from None


def plot_learning_curves(folders: list[Path], out: Path, metric: str = "eval_return_mean") -> Path:
    """One curve per folder: the mean of `metric` over the runs under it, shaded between their min and max."""
    figure, axes = plt.subplots(figsize=(8, 5))
    for folder in folders:
        frames = [read_progress(run)[["env_steps", metric]] for run in find_runs(folder)]
        curve = pd.concat(frames).groupby("env_steps")[metric].agg(["mean", "min", "max", "count"])
        label = f"{folder.name} ({len(frames)} run{'s' if len(frames) > 1 else ''})"
        line, = axes.plot(curve.index, curve["mean"], label=label)
        if len(frames) > 1:
            axes.fill_between(curve.index, curve["min"], curve["max"], color=line.get_color(), alpha=0.2)
    axes.set_xlabel("environment steps")
    axes.set_ylabel(metric.replace("_", " "))
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out
