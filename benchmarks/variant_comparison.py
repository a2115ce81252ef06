"""The homework's variant comparisons: several seeds of a set of experiments/sac/ files, run through
the real CLI, then plotted on shared axes with a results table.

Groups:
  estimators  HalfCheetah-v5: REINFORCE-1 vs REINFORCE-10 vs reparametrized actor gradient;
              one panel, eval return against env steps.
  qbackup     Hopper-v5: single vs double vs clipped double-Q backup; two panels, eval return and
              q1_mean (the mean Q value of the minibatches: overestimation shows as higher Q).

    nice -n 15 python benchmarks/variant_comparison.py --group estimators --seeds 3 --steps 200000 \\
        --runs-dir /tmp/variant_runs --set max_eval_trj=3
    python benchmarks/variant_comparison.py --group all --quick     # whole pipeline, about 3 minutes

Each run is `python -m SoftActorCritic train --spec experiments/sac/<experiment>.yaml
--run-dir RUNS/<group>/<experiment>/seed<k> --set seed=<k> --set max_epoch=S//E
--set timestep_per_epoch=E [--set min_pool_size=...] [--set ...]`, one at a time, as a child
process. Prefix the whole command with `nice -n 15` on a shared machine: the children inherit it.

Resumable: a run folder whose progress.csv already has the requested epochs is skipped, an
interrupted one (Ctrl-C, SIGTERM, --max-minutes) is continued with `train --resume`, so running
the same command again picks up where it stopped. A run folder holding a different spec (other
--steps or --set) is refused: choose another --runs-dir.

Outputs (small files, in --out-dir, default benchmarks/results/variant_comparison/):
  <group>.png           the comparison figure (mean over seeds, min-max band)
  <group>.csv           per experiment: seeds, env steps reached, final and best mean eval return,
                        final q1_mean, training wall time
  <group>_command.txt   the command line, and the train command and status of every run
Runs (checkpoints, replay buffers, TensorBoard: heavy) go to --runs-dir, default
runs/variant_comparison/ (ignored by git). --quick writes <group>_quick.* and runs under
<runs-dir>/quick/, so it never mixes with real results.
Exit status: 0 done (or stopped by --max-minutes: partial results written), 1 a run failed,
2 bad input, 130 interrupted.
"""
from __future__ import annotations

import argparse
import datetime
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from blocAndTools.errors import UserInputError  # noqa: E402
from blocAndTools.experiment_spec import ExperimentSpec, expand_grid, load_raw_spec  # noqa: E402
from SoftActorCritic.plotting import find_runs, read_progress  # noqa: E402

SPEC_DIR = REPO / "experiments" / "sac"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "variant_comparison"
DEFAULT_RUNS = REPO / "runs" / "variant_comparison"

# group -> (figure title, metrics = one panel each, [(experiment file stem, legend label)])
GROUPS = {
    "estimators": ("HalfCheetah-v5: actor gradient estimators", ["eval_return_mean"],
                   [("halfcheetah_reinforce1", "REINFORCE-1"),
                    ("halfcheetah_reinforce10", "REINFORCE-10"),
                    ("halfcheetah_reparametrize", "reparametrize")]),
    "qbackup": ("Hopper-v5: Q backups", ["eval_return_mean", "q1_mean"],
                [("hopper", "single Q"),
                 ("hopper_doubleq", "double Q"),
                 ("hopper_clipq", "clipped double Q")]),
}
AXIS_LABELS = {"eval_return_mean": "eval return (deterministic, mean of episodes)",
               "q1_mean": "Q1 mean over minibatches (q1_mean)"}

# --quick: the whole pipeline on a tiny budget (each value can still be overridden by --set).
QUICK = {"steps": 600, "epoch_steps": 300, "seeds": 1,
         "set": ["min_pool_size=200", "batch_size_in_ts=64", "max_eval_trj=1",
                 "phi_nn_h_layer_topo=[64,64]", "psi_nn_h_layer_topo=[64,64]",
                 "theta_nn_h_layer_topo=[64,64]"]}


# ---------------------------------------------------------------------------------------------
# plotting and table (no training: tested on fake progress.csv files)
# ---------------------------------------------------------------------------------------------

def _curve(frames: list[pd.DataFrame], metric: str) -> pd.DataFrame:
    """mean/min/max/count of `metric` over runs at each env step (NaN rows, e.g. warm-up Q, dropped)."""
    rows = pd.concat([frame[["env_steps", metric]] for frame in frames]).dropna()
    return rows.groupby("env_steps")[metric].agg(["mean", "min", "max", "count"])


def summarize(frames: list[pd.DataFrame]) -> dict:
    """One table row from the progress.csv frames of one experiment's seeds.

    Steps reached: the last env step every seed got to (a partial seed holds the others back).
    Final: mean over seeds at that step; best: the highest mean-over-seeds eval return up to it.
    """
    reached = int(min(frame["env_steps"].max() for frame in frames))
    common = [frame[frame["env_steps"] <= reached] for frame in frames]
    eval_curve = _curve(common, "eval_return_mean")
    final = eval_curve.loc[reached] if reached in eval_curve.index else None
    q_final = [frame.loc[frame["env_steps"] == reached, "q1_mean"] for frame in common]
    q_final = [value.iloc[0] for value in q_final if len(value) and pd.notna(value.iloc[0])]
    wall = [frame.loc[frame["env_steps"] == reached, "wall_time_s"].iloc[0] for frame in common]
    return {
        "seeds": len(frames),
        "env_steps": reached,
        "final_eval_return_mean": float(final["mean"]) if final is not None else math.nan,
        "final_eval_return_min": float(final["min"]) if final is not None else math.nan,
        "final_eval_return_max": float(final["max"]) if final is not None else math.nan,
        "best_eval_return_mean": float(eval_curve["mean"].max()),
        "best_at_env_steps": int(eval_curve["mean"].idxmax()),
        "final_q1_mean": float(sum(q_final) / len(q_final)) if q_final else math.nan,
        "wall_time_min": round(float(sum(wall) / len(wall)) / 60, 1),
    }


def plot_and_tabulate(experiments: list[tuple[str, str, Path]], metrics: list[str], title: str,
                      png: Path, csv: Path, warmup_steps: int | None = None) -> pd.DataFrame:
    """experiments: (name, legend label, folder holding the seeds' run folders).

    Draws one panel per metric (shared x axis: env steps), one curve per experiment: the mean
    over its seeds, shaded between their min and max. Writes png and the results table csv;
    returns the table. Experiments with no progress.csv yet are left out (noted in the title).
    warmup_steps: draw a dotted line where the random warm-up ends (the first gradient step).
    """
    figure, axes = plt.subplots(len(metrics), 1, figsize=(8, 3.6 * len(metrics) + 0.6), sharex=True,
                                squeeze=False)
    axes = axes[:, 0]
    rows, missing = [], []
    for color_index, (name, label, folder) in enumerate(experiments):
        try:
            frames = [read_progress(run) for run in find_runs(folder)]
        except UserInputError:
            frames = []
        frames = [frame for frame in frames if len(frame)]
        if not frames:
            missing.append(label)
            continue
        color = f"C{color_index}"
        seeds = len(frames)
        for axis, metric in zip(axes, metrics):
            curve = _curve(frames, metric)
            if curve.empty:
                continue
            axis.plot(curve.index, curve["mean"], color=color, marker="o", markersize=3,
                      label=f"{label} ({seeds} seed{'s' if seeds > 1 else ''})")
            if seeds > 1:
                axis.fill_between(curve.index, curve["min"], curve["max"], color=color, alpha=0.2)
        rows.append({"experiment": name, "label": label, **summarize(frames)})
    for axis, metric in zip(axes, metrics):
        if warmup_steps:
            axis.axvline(warmup_steps, color="grey", linestyle=":", linewidth=1,
                         label="end of random warm-up" if axis is axes[0] else None)
        axis.set_ylabel(AXIS_LABELS.get(metric, metric.replace("_", " ")))
        axis.grid(alpha=0.3)
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=9)
    axes[-1].set_xlabel("environment steps")
    axes[-1].ticklabel_format(axis="x", style="plain")
    suffix = f"\n(no data yet: {', '.join(missing)})" if missing else ""
    figure.suptitle(f"{title}: mean over seeds, min-max band{suffix}", fontsize=11)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=110)
    plt.close(figure)
    table = pd.DataFrame(rows, columns=["experiment", "label", "seeds", "env_steps", "final_eval_return_mean",
                                        "final_eval_return_min", "final_eval_return_max",
                                        "best_eval_return_mean", "best_at_env_steps", "final_q1_mean",
                                        "wall_time_min"])
    table.to_csv(csv, index=False, float_format="%.1f")
    return table


# ---------------------------------------------------------------------------------------------
# running the experiments
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    group: str
    experiment: str
    seed: int
    run_dir: Path
    spec: ExperimentSpec
    command: list[str]
    status: str = "pending"


def train_overrides(spec_file: Path, seed: int, steps: int, epoch_steps: int, extra: list[str]) -> list[str]:
    """The --set values of one run; min_pool_size (and the batch) shrunk only when the budget needs it."""
    base = load_raw_spec(spec_file, extra)
    overrides = [f"seed={seed}", f"max_epoch={steps // epoch_steps}", f"timestep_per_epoch={epoch_steps}"]
    min_pool = base.get("min_pool_size", ExperimentSpec.min_pool_size)
    batch = base.get("batch_size_in_ts", ExperimentSpec.batch_size_in_ts)
    if min_pool > steps:
        min_pool = max(1, min(steps // 2, max(batch, steps // 5)))
        overrides.append(f"min_pool_size={min_pool}")
    if batch > min_pool:
        overrides.append(f"batch_size_in_ts={min_pool}")
    return overrides + list(extra)


def plan(group: str, seeds: int, steps: int, epoch_steps: int, extra: list[str], runs_dir: Path) -> list[Run]:
    runs = []
    for experiment, _ in GROUPS[group][2]:
        spec_file = SPEC_DIR / f"{experiment}.yaml"
        for seed in range(seeds):
            run_dir = runs_dir / group / experiment / f"seed{seed}"
            overrides = train_overrides(spec_file, seed, steps, epoch_steps, extra)
            specs = expand_grid(load_raw_spec(spec_file, overrides))
            if len(specs) != 1:
                raise UserInputError(f"--set makes a grid of {len(specs)} specs; this script runs single points")
            command = [sys.executable, "-m", "SoftActorCritic", "train", "--spec", str(spec_file.relative_to(REPO)),
                       "--run-dir", str(run_dir)]
            for override in overrides:
                command += ["--set", override]
            runs.append(Run(group, experiment, seed, run_dir, specs[0], command))
    return runs


def epochs_done(run_dir: Path) -> int:
    path = run_dir / "progress.csv"
    if not path.is_file():
        return 0
    try:
        return len(read_progress(run_dir))
    except UserInputError:
        return 0


def check_run_folder(run: Run) -> None:
    """Refuse a run folder that holds another spec (other --steps or --set), before anything starts."""
    spec_file = run.run_dir / "spec.yaml"
    if spec_file.is_file():
        held = ExperimentSpec.from_yaml(spec_file).to_dict()
        wanted = run.spec.to_dict()
        differ = [f"{key}={held[key]!r} (wanted {wanted[key]!r})" for key in wanted if held.get(key) != wanted[key]]
        if differ:
            raise UserInputError(f"{run.run_dir} holds a run with another spec: {', '.join(differ[:3])}; "
                                 f"use another --runs-dir or delete that folder")


def decide(run: Run) -> str:
    """'skip' (finished), 'resume' (same spec, checkpoint), 'train' (empty folder), or raise on a foreign run."""
    if not run.run_dir.exists() or not any(run.run_dir.iterdir()):
        return "train"
    check_run_folder(run)
    spec_file = run.run_dir / "spec.yaml"
    if epochs_done(run.run_dir) >= run.spec.max_epoch:
        return "skip"
    if spec_file.is_file() and any((run.run_dir / "checkpoints").glob("run_state-*.json")):
        return "resume"
    # stopped before its first checkpoint: nothing worth keeping
    shutil.rmtree(run.run_dir)
    return "train"


class Budget:
    """--max-minutes: stop starting runs once spent; SIGTERM the running one (it checkpoints) when exceeded."""

    def __init__(self, minutes: float | None) -> None:
        self.deadline = None if minutes is None else time.monotonic() + 60 * minutes

    def left(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def spent(self) -> bool:
        return self.deadline is not None and self.left() <= 0


def execute(runs: list[Run], budget: Budget) -> tuple[bool, bool]:
    """Run what is not finished, one at a time. Returns (failed, stopped)."""
    failed = stopped = False
    child: list[subprocess.Popen] = []

    def forward_sigterm(signum, frame):
        nonlocal stopped
        stopped = True
        for process in child:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)

    previous = signal.signal(signal.SIGTERM, forward_sigterm)
    try:
        for index, run in enumerate(runs, 1):
            action = decide(run)
            if action == "skip":
                run.status = f"finished earlier ({run.spec.max_epoch} epochs)"
                print(f"[{index}/{len(runs)}] {run.experiment} seed {run.seed}: already finished, skipped", flush=True)
                continue
            if stopped or budget.spent():
                stopped = True
                run.status = f"not run (time budget), {epochs_done(run.run_dir)} epochs so far"
                continue
            command = run.command if action == "train" else [sys.executable, "-m", "SoftActorCritic", "train",
                                                             "--resume", "--run-dir", str(run.run_dir)]
            print(f"[{index}/{len(runs)}] {run.experiment} seed {run.seed}: {action}: {shlex.join(command)}",
                  flush=True)
            started = time.monotonic()
            process = subprocess.Popen(command, cwd=REPO)
            child[:] = [process]
            while True:
                try:
                    left = budget.left()
                    process.wait(timeout=None if left is None else max(left, 0.1))
                    break
                except subprocess.TimeoutExpired:
                    print("time budget spent: stopping the run (it writes a checkpoint)", flush=True)
                    stopped = True
                    process.send_signal(signal.SIGTERM)
                    budget.deadline = None
            minutes = (time.monotonic() - started) / 60
            done = epochs_done(run.run_dir)
            if process.returncode == 0:
                run.status = f"{'resumed and ' if action == 'resume' else ''}finished in {minutes:.1f} min"
            elif process.returncode == 130 or stopped:
                stopped = True
                run.status = f"stopped after {done} epochs ({minutes:.1f} min this time), resumable"
            else:
                failed = True
                run.status = f"FAILED with exit status {process.returncode} after {done} epochs"
            print(f"    {run.status}", flush=True)
    except KeyboardInterrupt:
        for process in child:
            process.wait()  # Ctrl-C reached it too: let it write its checkpoint
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    return failed, stopped


def invocation() -> str:
    niceness = os.nice(0)
    prefix = f"nice -n {niceness} " if niceness else ""
    return prefix + shlex.join(["python", *sys.argv])


def write_command_file(path: Path, group: str, runs: list[Run], stopped: bool) -> None:
    lines = [f"# {datetime.datetime.now():%Y-%m-%d %H:%M}{' (stopped early: partial results)' if stopped else ''}",
             invocation(), "", "# the runs (train command; status in this invocation):"]
    for run in runs:
        lines += [shlex.join(["python", *run.command[1:]]), f"#   -> {run.status}"]
    path.write_text("\n".join(lines) + "\n")


def print_table(table: pd.DataFrame, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    view = Table(title=title)
    columns = [("label", "experiment", "{}"), ("seeds", "seeds", "{}"), ("env_steps", "env steps", "{:.0f}"),
               ("final_eval_return_mean", "final eval ret", "{:.1f}"),
               ("best_eval_return_mean", "best eval ret", "{:.1f}"), ("best_at_env_steps", "best at", "{:.0f}"),
               ("final_q1_mean", "final Q1 mean", "{:.1f}"), ("wall_time_min", "train min", "{:.1f}")]
    for _, header, _ in columns:
        view.add_column(header, justify="right")
    for _, row in table.iterrows():
        view.add_row(*("-" if pd.isna(row[key]) else fmt.format(row[key]) for key, _, fmt in columns))
    Console(width=max(Console().width, 130)).print(view)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Run it under `nice -n 15` on a shared machine.")
    parser.add_argument("--group", choices=[*GROUPS, "all"], required=True)
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 per experiment (default 3; --quick 1)")
    parser.add_argument("--steps", type=int, default=None, help="env steps per run (default 100000; --quick 600)")
    parser.add_argument("--epoch-steps", type=int, default=None,
                        help="env steps per epoch, one evaluation each (default 5000; --quick 300)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="spec override for every run, e.g. max_eval_trj=3 (repeatable)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT, help="png/csv/txt results (small files)")
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS,
                        help="run folders (checkpoints, buffers, TensorBoard: heavy), default runs/variant_comparison")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="wall-time budget: then stop the current run (checkpointed) and plot what exists")
    parser.add_argument("--plot-only", action="store_true",
                        help="no training: redraw png/csv from the run folders that exist (an existing "
                             "<group>_command.txt, the record of the training command, is kept)")
    parser.add_argument("--quick", action="store_true", help="tiny budget to test the pipeline (about 3 minutes)")
    args = parser.parse_args(argv)

    suffix = ""
    extra = list(args.set)
    if args.quick:
        suffix = "_quick"
        args.runs_dir = args.runs_dir / "quick"
        extra = QUICK["set"] + extra
    seeds = args.seeds if args.seeds is not None else (QUICK["seeds"] if args.quick else 3)
    steps = args.steps if args.steps is not None else (QUICK["steps"] if args.quick else 100_000)
    epoch_steps = args.epoch_steps if args.epoch_steps is not None else (QUICK["epoch_steps"] if args.quick else 5000)
    groups = list(GROUPS) if args.group == "all" else [args.group]
    try:
        if seeds < 1 or epoch_steps < 1 or steps < epoch_steps:
            raise UserInputError(f"need --seeds >= 1 and --steps >= --epoch-steps >= 1 "
                                 f"(got {seeds}, {steps}, {epoch_steps})")
        if steps % epoch_steps:
            print(f"note: --steps {steps} is not a multiple of --epoch-steps {epoch_steps}: "
                  f"runs stop at {steps // epoch_steps * epoch_steps}", flush=True)
        plans = {group: plan(group, seeds, steps, epoch_steps, extra, args.runs_dir.resolve()) for group in groups}
        for runs in plans.values():
            for run in runs:
                check_run_folder(run)
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    budget = Budget(args.max_minutes)
    failed = stopped = interrupted = False
    for group in groups:
        runs = plans[group]
        try:
            if args.plot_only:
                for run in runs:
                    run.status = f"--plot-only: {epochs_done(run.run_dir)} of {run.spec.max_epoch} epochs on disk"
            else:
                group_failed, group_stopped = execute(runs, budget)
                failed |= group_failed
                stopped |= group_stopped
        except KeyboardInterrupt:
            interrupted = True
        except UserInputError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        title, metrics, experiments = GROUPS[group]
        args.out_dir.mkdir(parents=True, exist_ok=True)
        png = args.out_dir / f"{group}{suffix}.png"
        table = plot_and_tabulate([(name, label, args.runs_dir.resolve() / group / name)
                                   for name, label in experiments],
                                  metrics, title, png, args.out_dir / f"{group}{suffix}.csv",
                                  warmup_steps=runs[0].spec.min_pool_size)
        command_file = args.out_dir / f"{group}{suffix}_command.txt"
        if not (args.plot_only and command_file.exists()):  # keep the record of the command that trained
            write_command_file(command_file, group, runs, stopped or interrupted)
        print_table(table, f"{title} ({png})")
        if interrupted:
            return 130
    if stopped:
        print("stopped by the time budget: rerun the same command to continue (finished runs are skipped, "
              "stopped ones resumed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
