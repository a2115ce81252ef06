"""`sac compare A B`: two sets of runs side by side, as Agarwal et al. (2021) recommend reporting them.

A side is a folder of runs of one grid point: a run folder, a grid point's folder in a sweep folder
(sweep/<name>-<field>=<value>/), or a sweep folder with one grid point. Only finished runs (every epoch
of their spec) count. Each run is scored as in summary.csv (sweep_summary.run_scores): final = its last
evaluation, AUC = the mean of its evaluations. The report gives each side's IQM [95% CI] and P(A > B):
the probability that a run of A scores higher than a run of B (ties count half; 0.5 = no difference),
with its 95% interval; all from blocAndTools.statistics, seeded (seed 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.statistics import Interval, format_interval, iqm_interval, probability_of_improvement
from SoftActorCritic.plotting import plot_performance_profiles
from SoftActorCritic.sweep_summary import METRIC, find_runs, group_runs, point_label, read_run, run_scores


@dataclass(frozen=True, eq=False)
class Side:
    """One side's finished runs: their folder, final and AUC scores (one per run), env steps at their end."""

    folder: Path
    final: np.ndarray
    auc: np.ndarray
    env_steps: tuple[int, ...]  # the distinct last env steps of its runs
    unfinished: int  # runs left out: not every epoch yet

    def describe(self) -> str:
        """'3 finished runs (1 unfinished left out), 150,000 env steps'."""
        runs = f"{len(self.final)} finished run{'s' if len(self.final) > 1 else ''}"
        left_out = f" ({self.unfinished} unfinished left out)" if self.unfinished else ""
        steps = " to ".join(f"{steps:,}" for steps in sorted({self.env_steps[0], self.env_steps[-1]}))
        return f"{runs}{left_out}, {steps} env steps"


@dataclass(frozen=True)
class Comparison:
    """Per score ("final", "AUC"): (IQM of A, IQM of B, P(A > B)), each with its 95% bootstrap interval."""

    a: Side
    b: Side
    metric: str
    scores: dict[str, tuple[Interval, Interval, Interval]]

    def report(self) -> str:
        """The comparison as aligned text: the two sides, then one line per score."""
        lines = [f"A  {self.a.folder}: {self.a.describe()}", f"B  {self.b.folder}: {self.b.describe()}"]
        if self.a.env_steps != self.b.env_steps:
            lines.append("note: A and B end at different env steps: their final returns are at different budgets")
        header = (self.metric, "A: IQM [95% CI]", "B: IQM [95% CI]", "P(A > B) [95% CI]")
        rows = [(name, format_interval(a), format_interval(b), format_interval(p, digits=2))
                for name, (a, b, p) in self.scores.items()]
        widths = [max(len(row[column]) for row in [header, *rows]) for column in range(len(header))]
        lines += ["", *("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                        for row in [header, *rows])]
        lines.append("final = each run's last evaluation, AUC = the mean of its evaluations; P(A > B) = the "
                     "probability that a run of A scores higher than a run of B (0.5: no difference)")
        return "\n".join(lines)


def finished(spec: dict, progress) -> bool:
    """The run trained every epoch of its spec (progress.csv has its last epoch)."""
    return int(progress["epoch"].iloc[-1]) >= int(spec.get("max_epoch", ExperimentSpec().max_epoch))


def read_side(folder: Path, metric: str = METRIC) -> Side:
    """The finished runs at or under folder, scored on `metric`; one line of UserInputError when there is
    nothing to compare (no finished run, no such column or no evaluation) or the folder mixes grid points."""
    runs = find_runs(folder)
    varied, points = group_runs(runs)
    if len(points) > 1:
        raise UserInputError(f"{str(folder)!r} holds {len(points)} grid points "
                             f"({'; '.join(point_label(spec, varied) for spec, _ in points)}): give one point's "
                             f"folder, e.g. {str(points[0][1][0].parent)!r}")
    final, auc, steps, unfinished = [], [], set(), 0
    for run in runs:
        loaded = read_run(run)
        if loaded is None or not finished(*loaded):
            unfinished += 1
            continue
        progress = loaded[1]
        if metric not in progress.columns:
            raise UserInputError(f"--metric {metric!r}: not a column of {run / 'progress.csv'}: no common metric")
        score = run_scores(progress, metric)
        if score is None:
            raise UserInputError(f"{run / 'progress.csv'} has no evaluation of {metric!r} (max_eval_trj 0?)")
        final.append(score[0])
        auc.append(score[1])
        steps.add(int(progress["env_steps"].iloc[-1]))
    if not final:
        raise UserInputError(f"{str(folder)!r}: no finished run ({unfinished} unfinished): nothing to compare yet")
    return Side(Path(folder), np.array(final), np.array(auc), tuple(sorted(steps)), unfinished)


def compare_runs(a_folder: Path, b_folder: Path, metric: str = METRIC) -> Comparison:
    """Read both sides and compute, for the final and the AUC scores, each side's IQM and P(A > B) with CIs."""
    a, b = read_side(a_folder, metric), read_side(b_folder, metric)
    scores = {name: (iqm_interval(x), iqm_interval(y), probability_of_improvement(x, y))
              for name, x, y in (("final", a.final, b.final), ("AUC", a.auc, b.auc))}
    return Comparison(a, b, metric, scores)


def plot_profiles(comparison: Comparison, out: Path | None = None) -> Path:
    """Both sides' performance profiles of the final score on one axis; default file: in A's folder."""
    a, b = comparison.a, comparison.b
    out = out or a.folder / f"compare-{b.folder.resolve().name}.png"
    return plot_performance_profiles({f"A: {a.folder.resolve().name}": a.final,
                                      f"B: {b.folder.resolve().name}": b.final},
                                     out, f"final {comparison.metric.replace('_', ' ')} (threshold)")
