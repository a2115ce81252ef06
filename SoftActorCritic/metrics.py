"""SAC's epoch metrics: every value of an epoch row, the one definition of their names.

Each is a progress.csv column, and may be a TensorBoard tag and a console column
(blocAndTools.run_logging shows them: pass COLUMNS to ConsoleView and ProgressFiles).
"""
from __future__ import annotations

from blocAndTools.run_logging import Column

# In progress.csv order. A metric a variant does not have (v_loss in v2) is left empty. The update's metrics
# (SoftActorCriticBrain.compute_losses' keys, averaged over the epoch) are the rows from v_loss to q2_mean.
COLUMNS = (
    Column("epoch", None, "epoch", "{:.0f}"),
    Column("env_steps", None, "steps", "{:.0f}"),
    Column("updates", None, former_names=("gradient_steps",)),  # the brain's update counter, all epochs so far
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
