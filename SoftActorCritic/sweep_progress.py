"""The console table of a sweep or search on Ray: one row per trial (status, epoch, last eval return, steps/s),
redrawn in place on a terminal, one plain line per event otherwise (a log file, CI)."""
from __future__ import annotations

import math
import time
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from SoftActorCritic.search_space import sampled_values
from SoftActorCritic.sweep_summary import short_value


def make_progress_callback(tune, max_failures: int, labels: dict[str, str] | None = None):
    """A Tune callback showing a table of trials (status, epoch, last eval return, steps/s): refreshed in
    place on a terminal, one plain line per event otherwise. A factory: the class derives from Ray Tune's
    Callback, and Ray is imported only by the commands that use it."""

    class SweepProgress(tune.Callback):
        def __init__(self) -> None:
            self.console = Console()
            self.rows: dict[str, dict[str, Any]] = {}
            self.live: Live | None = None
            self.started = time.monotonic()

        def __getstate__(self) -> dict:  # Tune saves its callbacks with the experiment: not the live console
            return {"rows": self.rows, "started": self.started, "console": None, "live": None}

        def __setstate__(self, state: dict) -> None:
            self.__dict__.update(state, console=Console())

        def _label(self, trial) -> str:
            if "run" in trial.config:
                return (labels or {}).get(trial.config["run"]["run_dir"], trial.trial_id)
            values = sampled_values(trial.config).items()
            return f"{trial.trial_id} " + ", ".join(
                f"{key}={_fmt(value, '{:.3g}') if isinstance(value, float) else short_value(value)}"
                for key, value in values)

        def _table(self) -> Table:
            total = sum(row.get("steps_per_s") or 0 for row in list(self.rows.values()) if row["status"] == "RUNNING")
            table = Table(title=f"trials ({time.monotonic() - self.started:.0f} s, running: {total:.0f} env "
                                f"steps/s in total)", title_justify="left")
            for column in ("trial", "status", "epoch", "eval return", "steps/s"):
                table.add_column(column, justify="left" if column in ("trial", "status") else "right")
            for row in list(self.rows.values()):
                table.add_row(row["label"], row["status"], str(row.get("epoch", "-")),
                              _fmt(row.get("eval_return_mean")), _fmt(row.get("steps_per_s"), "{:.0f}"))
            return table

        def __rich__(self) -> Table:
            return self._table()

        def _update(self, trial, status: str, result: dict | None = None) -> None:
            row = self.rows.setdefault(trial.trial_id, {"label": self._label(trial)})
            row["status"] = status
            if result:
                row.update({key: result.get(key) for key in ("epoch", "eval_return_mean", "steps_per_s")})
            if self.console.is_terminal:
                if self.live is None:  # redrawn twice a second from __rich__ (the elapsed time moves)
                    self.live = Live(self, console=self.console, refresh_per_second=2)
                    self.live.start()
                self.live.refresh()
            else:
                detail = "" if not result else (f" epoch {row.get('epoch')} eval return "
                                                f"{_fmt(row.get('eval_return_mean'))} steps/s "
                                                f"{_fmt(row.get('steps_per_s'), '{:.0f}')}")
                print(f"trial {row['label']}: {status.lower()}{detail}", flush=True)

        def on_trial_start(self, iteration, trials, trial, **info):
            self._update(trial, "RUNNING")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self._update(trial, "RUNNING", result)

        def on_trial_recover(self, iteration, trials, trial, **info):
            self._update(trial, f"RETRYING ({trial.num_failures} of {max_failures}, from its checkpoint: its process "
                                f"died or raised)")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._update(trial, "ENDED")  # every epoch, or stopped early (ASHA, Ctrl-C): see the epoch

        def on_trial_error(self, iteration, trials, trial, **info):
            self._update(trial, "ERROR")

        def on_experiment_end(self, trials, **info):
            if self.live is not None:
                self.live.stop()
                self.live = None

    return SweepProgress()


def _fmt(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)

