"""Statistics for results summaries: IQM, stratified bootstrap intervals, performance profiles, improvement probability.

Definitions and names follow rliable (Agarwal et al., "Deep Reinforcement Learning at the Edge of the Statistical
Precipice", NeurIPS 2021). Scores are arrays of shape (runs,) for one task or (runs, tasks); an aggregate over tasks
takes ``normalise``-d scores. Every interval is a percentile interval from a stratified bootstrap: the runs of each
task (and of each method) are resampled independently, with replacement, by ``scipy.stats.bootstrap`` (one sample per
task column), seeded, so the same scores and seed give the same interval. With one run there is no interval: low and
high are None and ``format_interval`` shows a dash.

Built on scipy.stats (``bootstrap``, ``trim_mean``, ``rankdata``) and numpy, not on rliable: rliable 1.2.0 requires
arch<8, and the arch 7.2.0 that pip resolves fails to import beside our pandas 3 (pandas changed the signature of
``pandas.util._decorators.deprecate_kwarg``) while arch 8 rejects the ``random_state`` keyword rliable passes; rliable
also draws its bootstrap indices from the global ``np.random``, ignoring ``random_state``, and pulls in statsmodels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

TRIM = 0.25  # IQM = scipy.stats.trim_mean(scores, 0.25, axis=None), rliable's metrics.aggregate_iqm
DASH = "–"  # en dash: format_interval's mark for "no interval" (runs == 1)


@dataclass(frozen=True)
class Interval:
    """A point estimate and its bootstrap interval [low, high]; low and high are None when runs == 1."""

    point: float
    low: float | None
    high: float | None
    runs: int


@dataclass(frozen=True, eq=False)
class Profile:
    """A performance profile: point[i] = fraction of scores > thresholds[i], band [low, high] (None if runs == 1)."""

    thresholds: np.ndarray
    point: np.ndarray
    low: np.ndarray | None
    high: np.ndarray | None
    runs: int


def _matrix(scores) -> np.ndarray:
    """Scores as a float (runs, tasks) matrix; (runs,) is one task."""
    x = np.asarray(scores, dtype=float)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.size == 0:
        raise ValueError(f"scores must have shape (runs,) or (runs, tasks) with runs, tasks >= 1, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("scores must be finite")
    return x


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, seed: int, reps: int, confidence: float):
    """Percentile interval of statistic(*resampled samples) over reps resamples, each sample resampled on its own."""
    result = stats.bootstrap(
        samples, lambda *s, axis: statistic(*s), n_resamples=reps, confidence_level=confidence,
        method="percentile", vectorized=True, rng=np.random.default_rng(seed),
    )  # fmt: skip
    return result.confidence_interval.low, result.confidence_interval.high


def _pooled(*columns: np.ndarray) -> np.ndarray:
    """Task columns of shape (..., runs) pooled into (..., runs * tasks)."""
    return np.concatenate(columns, axis=-1)


def iqm(values) -> float:
    """Interquartile mean: the mean of the scores left after cutting int(0.25 * n) of the n pooled scores from each end.

    So 8 scores keep the middle 4 and 10 keep the middle 6 (scipy.stats.trim_mean's rule, rliable's aggregate_iqm);
    a (runs, tasks) matrix pools all runs × tasks scores.
    """
    return float(stats.trim_mean(_matrix(values), TRIM, axis=None))


def normalise(scores, low, high) -> np.ndarray:
    """Min-max normalisation per task: (score - low) / (high - low), low and high of shape (tasks,) or scalars."""
    low, high = np.asarray(low, dtype=float), np.asarray(high, dtype=float)
    if np.any(high == low):
        raise ValueError("normalise needs high != low for every task")
    return (np.asarray(scores, dtype=float) - low) / (high - low)


def iqm_interval(scores, seed: int = 0, reps: int = 2000, confidence: float = 0.95) -> Interval:
    """IQM of the scores, shape (runs,) or (runs, tasks), with a stratified bootstrap percentile interval."""
    x = _matrix(scores)
    point, runs = iqm(x), x.shape[0]
    if runs == 1:
        return Interval(point, None, None, 1)
    low, high = _bootstrap(tuple(x.T), lambda *c: stats.trim_mean(_pooled(*c), TRIM, axis=-1), seed, reps, confidence)
    return Interval(point, float(low), float(high), runs)


def performance_profile(scores, thresholds, seed: int = 0, reps: int = 2000, confidence: float = 0.95) -> Profile:
    """Run-score distribution: for each threshold tau, the fraction of the runs × tasks scores > tau, with its band."""
    x, taus = _matrix(scores), np.asarray(thresholds, dtype=float).ravel()

    def fractions(*columns):  # (len(taus), ...) from columns (..., runs): a loop over thresholds, not resamples
        pooled = _pooled(*columns)
        return np.stack([(pooled > tau).mean(axis=-1) for tau in taus])

    point, runs = fractions(*x.T), x.shape[0]
    if runs == 1:
        return Profile(taus, point, None, None, 1)
    low, high = _bootstrap(tuple(x.T), fractions, seed, reps, confidence)
    return Profile(taus, point, low, high, runs)


def _improvement(a_columns, b_columns) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 per task, averaged over tasks: the Mann-Whitney U of X over Y divided by n * m.

    U = (sum of X's average ranks in the pooled X, Y sample) - n (n + 1) / 2 counts the pairs with x > y and half
    of those with x == y.
    """
    per_task = []
    for a, b in zip(a_columns, b_columns, strict=True):
        n, m = a.shape[-1], b.shape[-1]
        ranks = stats.rankdata(np.concatenate([a, b], axis=-1), axis=-1)
        per_task.append((ranks[..., :n].sum(axis=-1) - n * (n + 1) / 2) / (n * m))
    return np.mean(per_task, axis=0)


def probability_of_improvement(a, b, seed: int = 0, reps: int = 2000, confidence: float = 0.95) -> Interval:
    """Probability that method a beats method b (scores of shape (runs,) or (runs, tasks), same tasks), with its CI.

    The runs of each method and task are resampled independently; runs = min(runs of a, runs of b).
    """
    x, y = _matrix(a), _matrix(b)
    tasks = x.shape[1]
    if y.shape[1] != tasks:
        raise ValueError(f"a and b must have the same tasks, got {x.shape[1]} and {y.shape[1]}")
    point, runs = float(_improvement(x.T, y.T)), min(x.shape[0], y.shape[0])
    if runs == 1:
        return Interval(point, None, None, 1)
    low, high = _bootstrap((*x.T, *y.T), lambda *c: _improvement(c[:tasks], c[tasks:]), seed, reps, confidence)
    return Interval(point, float(low), float(high), runs)


def format_interval(interval: Interval, digits: int = 1) -> str:
    """'point [low, high]', e.g. '167.2 [131.0, 197.4]'; with one run 'point [–]' (an en dash, no interval)."""
    point = f"{interval.point:.{digits}f}"
    if interval.low is None or interval.high is None:
        return f"{point} [{DASH}]"
    return f"{point} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"
