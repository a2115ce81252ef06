"""Learning curves of this project's SAC next to Stable-Baselines3's SAC: same tasks, seeds, budgets, evaluation.

Run from the repository root (the module form puts the project on the import path):

    nice -n 10 python -m benchmarks.learning_benchmark --tasks pendulum            # both libraries, 5 seeds
    nice -n 10 python -m benchmarks.learning_benchmark --tasks lunarlander,halfcheetah --max-minutes 60
    python -m benchmarks.learning_benchmark --quick        # the whole pipeline on a tiny budget, ~2 minutes
    python -m benchmarks.learning_benchmark --report-only  # CSV, plots and tables from what is there

Tasks (budget x seeds 1..n): pendulum 10k x 5, lunarlander (LunarLander-v3 continuous) 150k x 3,
halfcheetah, hopper and walker2d (Walker2d-v5) 150k x 3. This project's side of a task is its shipped spec
(experiments/*.yaml) with seed=k and max_epoch=budget/timestep_per_epoch, run through the CLI
(`python -m SoftActorCritic train --spec FILE --set seed=k --set max_epoch=E --run-dir DIR`).
SB3's side is benchmarks/peers/sb3_learning.py in the peers' own virtual environment
(benchmarks/peers/.venv; SB3 2.9 SAC defaults, learning_starts per task, one torch thread).

Evaluation is the same on both sides: after every timestep_per_epoch env steps of the spec,
max_eval_trj deterministic episodes, episode i reset with seed episode_seeds(k, max_eval_trj)[i]
(blocAndTools.seeding; computed here and passed to SB3's runner on its command line).

Resumable, one run at a time per invocation (nice the command on a shared machine: the children
inherit it). Invocations may run side by side, one per core: each claims a run with a lock on
runs/learning_benchmark/<task>/<library>/seed<k>.lock and skips runs another invocation holds.
- a finished (library, task, seed) run is recorded in benchmarks/results/learning/<task>/records/
  <library>-seed<k>.json (its evaluations and configuration) and never recomputed while the
  configuration (resolved spec, budget, evaluation seeds) is unchanged; a changed one is rerun;
- this project's run in progress lives in runs/learning_benchmark/<task>/project/seed<k>/
  (gitignored: checkpoints, replay buffer) and continues with `train --resume`;
- SB3 cannot resume mid-run (its save format is pickle, which this project does not use): an
  interrupted SB3 run restarts from zero; its evaluations so far are kept as a partial record.
--max-minutes M stops after M minutes: this project's child gets SIGTERM (it writes a checkpoint),
SB3's child is stopped; SIGINT / SIGTERM to this script do the same. Rerun the same command to go on.

Outputs per task in benchmarks/results/learning/<task>/ (small files, committed):
  evaluations.csv  library, seed, env_steps, eval_return_mean, eval_return_std, complete (run finished)
  curves.png       eval return against env steps: per library the IQM over seeds and its 95% bootstrap CI band
  table.md         per budget: each library's IQM [95% CI] over the seeds that reached it, n, and
                   P(project > SB3) [95% CI] (blocAndTools.statistics, seed 0)
  command.txt      this command, and every run's command and status
Exit status: 0 done (or stopped by --max-minutes), 1 a run failed, 2 bad input, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import json
import math
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    from benchmarks.report import print_table, save_results, wide_console
    from blocAndTools.atomic_files import write_text_atomically
    from blocAndTools.errors import UserInputError
    from blocAndTools.experiment_spec import ExperimentSpec
    from blocAndTools.seeding import episode_seeds
    from blocAndTools.statistics import iqm_interval, probability_of_improvement
    from SoftActorCritic.plotting import band_curve, draw_curve
    from SoftActorCritic.sweep_summary import interval_cell, interval_columns
except ModuleNotFoundError:
    print("run it from the repository root as `python -m benchmarks.learning_benchmark` (the project must be "
          "importable)", file=sys.stderr)
    sys.exit(2)

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from rich.console import Console  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
PEER_PYTHON = REPO / "benchmarks" / "peers" / ".venv" / "bin" / "python"
SB3_RUNNER = REPO / "benchmarks" / "peers" / "sb3_learning.py"
DEFAULT_OUT = REPO / "benchmarks" / "results" / "learning"
DEFAULT_RUNS = REPO / "runs" / "learning_benchmark"
LIBRARIES = {"project": "this project (SAC v1)", "sb3": "Stable-Baselines3 SAC"}
COLUMNS = ["library", "seed", "env_steps", "eval_return_mean", "eval_return_std", "complete"]


@dataclass(frozen=True)
class Task:
    """One benchmark task: our spec file, the env-step budget, the seeds 1..n, SB3's learning_starts."""
    spec: str
    steps: int
    seeds: int
    sb3_learning_starts: int
    budgets: tuple[int, ...]  # env steps at which the table reports IQM [95% CI] and P(project > SB3)
    overrides: tuple[str, ...] = ()  # extra --set values of our runs


# SB3's learning_starts: its default (100) on Pendulum, as in the issue's measurement; 10,000 on the
# others, the value of rl-baselines3-zoo's tuned SAC settings for LunarLanderContinuous, HalfCheetah
# and Hopper (the other hyperparameters stay SB3's defaults).
TASKS = {
    "pendulum": Task("experiments/pendulum.yaml", 10_000, 5, 100, (2_000, 4_000, 6_000, 8_000, 10_000)),
    "lunarlander": Task("experiments/lunarlander_continuous.yaml", 150_000, 3, 10_000, (50_000, 100_000, 150_000)),
    "halfcheetah": Task("experiments/halfcheetah.yaml", 150_000, 3, 10_000, (50_000, 100_000, 150_000)),
    "hopper": Task("experiments/hopper.yaml", 150_000, 3, 10_000, (50_000, 100_000, 150_000)),
    # Walker2d-v5: no task spec of its own; the Hopper spec with only the environment changed.
    "walker2d": Task("experiments/hopper.yaml", 150_000, 3, 10_000, (50_000, 100_000, 150_000),
                     ("env_id=Walker2d-v5",)),
}
QUICK_TASK = Task("experiments/pendulum.yaml", 600, 1, 100, (200, 400, 600),
                  ("timestep_per_epoch=200", "min_pool_size=200", "batch_size_in_ts=64", "max_eval_trj=2",
                   "phi_nn_h_layer_topo=[64,64]", "psi_nn_h_layer_topo=[64,64]", "theta_nn_h_layer_topo=[64,64]"))


# ---------------------------------------------------------------------------------------------
# what one run is: its configuration, folder, record and command
# ---------------------------------------------------------------------------------------------

@dataclass
class Run:
    task: str
    library: str
    seed: int
    config: dict  # everything that makes two runs the same: a record with another config is stale
    command: list[str]
    record: Path  # the finished run's JSON record (committed)
    work_dir: Path  # our run folder, or SB3's folder for its log and partial evaluations (gitignored)
    status: str = "pending"
    evaluations: list[dict] = field(default_factory=list)

    @property
    def lock(self) -> Path:
        """The file an invocation locks while it runs this (library, task, seed): see claim()."""
        return self.work_dir.parent / f"seed{self.seed}.lock"


def project_spec(task: Task, seed: int) -> ExperimentSpec:
    """The resolved spec of our run of `task` with `seed` (max_epoch from the budget)."""
    base = ExperimentSpec.from_yaml(REPO / task.spec, task.overrides)
    if task.steps % base.timestep_per_epoch:
        raise UserInputError(f"{task.spec}: budget {task.steps} is not a multiple of timestep_per_epoch "
                             f"{base.timestep_per_epoch}")
    return ExperimentSpec.from_yaml(REPO / task.spec, [*task.overrides, f"seed={seed}",
                                                       f"max_epoch={task.steps // base.timestep_per_epoch}"])


def comparable(spec: ExperimentSpec) -> dict:
    """The spec's fields that change the numbers (name and description do not)."""
    return {key: value for key, value in spec.to_dict().items() if key not in ("name", "description")}


def plan(task_name: str, task: Task, library: str, seed: int, out_dir: Path, runs_dir: Path) -> Run:
    """The Run of one (task, library, seed): config, command and paths; nothing is started."""
    spec = project_spec(task, seed)
    eval_seeds = episode_seeds(seed, spec.max_eval_trj)
    record = out_dir / task_name / "records" / f"{library}-seed{seed}.json"  # not "runs": .gitignore has runs/
    work_dir = runs_dir / task_name / library / f"seed{seed}"
    if library == "project":
        overrides = [*task.overrides, f"seed={seed}", f"max_epoch={spec.max_epoch}"]
        command = [sys.executable, "-m", "SoftActorCritic", "train", "--spec", task.spec]
        for item in overrides:
            command += ["--set", item]
        command += ["--run-dir", str(work_dir)]
        config = {"spec": comparable(spec), "eval_seeds": eval_seeds}
    else:
        env_kwargs = dict(spec.env_kwargs)
        if spec.max_trj_steps is not None:
            env_kwargs["max_episode_steps"] = spec.max_trj_steps
        config = {"env_id": spec.env_id, "env_kwargs": env_kwargs, "steps": task.steps,
                  "eval_interval": spec.timestep_per_epoch, "eval_seeds": eval_seeds,
                  "learning_starts": task.sb3_learning_starts, "seed": seed}
        command = [str(PEER_PYTHON), str(SB3_RUNNER), "--env", spec.env_id, "--env-kwargs", json.dumps(env_kwargs),
                   "--seed", str(seed), "--steps", str(task.steps), "--eval-interval", str(spec.timestep_per_epoch),
                   "--eval-seeds", ",".join(map(str, eval_seeds)),
                   "--learning-starts", str(task.sb3_learning_starts)]
    return Run(task_name, library, seed, config, command, record, work_dir)


def display(command: list[str]) -> str:
    """A command as a shell line, relative to the repository root (python: this project's interpreter)."""
    return shlex.join(["python" if part == sys.executable else part for part in command]).replace(str(REPO) + "/", "")


def read_record(run: Run) -> dict | None:
    """The finished run's record when it exists and matches the run's config, else None."""
    try:
        record = json.loads(run.record.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("config") == run.config and record.get("finished") else None


def write_record(run: Run, evaluations: list[dict], finished: bool, extra: dict | None = None) -> None:
    """A run's record: config, command, evaluations; finished=False marks a partial SB3 run."""
    path = run.record if finished else run.work_dir / "partial.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"library": run.library, "task": run.task, "seed": run.seed, "finished": finished,
              "config": run.config, "command": display(run.command), "evaluations": evaluations, **(extra or {})}
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")


def project_evaluations(run_dir: Path) -> list[dict]:
    """The evaluations in our run folder's progress.csv (empty when there is none yet)."""
    try:
        frame = pd.read_csv(run_dir / "progress.csv")
    except (OSError, pd.errors.EmptyDataError):
        return []
    keep = ["env_steps", "eval_return_mean", "eval_return_std", "wall_time_s"]
    return frame[keep].to_dict("records")


# ---------------------------------------------------------------------------------------------
# running (one child process at a time)
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def claim(run: Run):
    """Yield True when this invocation holds the run's lock (False: another invocation runs it).

    An flock, not a marker file: the kernel releases it when its holder exits, even on a kill.
    """
    run.lock.parent.mkdir(parents=True, exist_ok=True)
    with open(run.lock, "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


class Stop(Exception):
    """The deadline passed or a signal arrived: the child was stopped, its state kept."""


STOP_SIGNAL: list[int] = []


def run_child(command: list[str], log: Path, deadline: float, on_line=None) -> int:
    """Run one child with stdout read line by line (on_line) and stderr to `log`.

    At the deadline or on SIGINT / SIGTERM to this process: SIGTERM to the child (ours writes a
    checkpoint), wait, then raise Stop.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    with open(log, "a") as log_file:
        log_file.write(f"\n$ {shlex.join(command)}\n")
        log_file.flush()
        child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=log_file, text=True, env=env)

        def read_stdout() -> None:  # a thread: the main loop stays free to watch the deadline
            for line in child.stdout:
                if on_line is not None:
                    on_line(line.rstrip("\n"))
                else:
                    log_file.write(line)
                    log_file.flush()

        reader = threading.Thread(target=read_stdout, daemon=True)
        reader.start()
        while child.poll() is None:
            if STOP_SIGNAL or time.time() > deadline:
                child.send_signal(signal.SIGTERM)
                try:
                    child.wait(timeout=120)
                except subprocess.TimeoutExpired:
                    child.kill()
                    child.wait()
                reader.join(timeout=10)
                raise Stop("signal" if STOP_SIGNAL else "deadline")
            time.sleep(0.5)
        reader.join()
        return child.returncode


def run_project(run: Run, deadline: float, console: Console) -> None:
    """Train (or resume) our run through the CLI; on success write its record."""
    expected = run.config["spec"]
    log = run.work_dir.parent / f"seed{run.seed}.log"
    spec_file = run.work_dir / "spec.yaml"
    command = run.command
    if spec_file.is_file():
        try:
            found = comparable(ExperimentSpec.from_yaml(spec_file))
        except UserInputError:
            found = None
        if found != expected:
            console.print(f"  {run.work_dir} holds another configuration: starting it again")
            shutil.rmtree(run.work_dir)
        elif len(project_evaluations(run.work_dir)) < expected["max_epoch"]:
            command = [sys.executable, "-m", "SoftActorCritic", "train", "--resume", "--run-dir", str(run.work_dir)]
    elif run.work_dir.exists():
        shutil.rmtree(run.work_dir)  # an empty or half-created folder: the CLI refuses a non-empty one
    evaluations = project_evaluations(run.work_dir)
    if len(evaluations) < expected["max_epoch"]:
        console.print(f"  $ {display(command)}")
        code = run_child(command, log, deadline)
        if code != 0:
            run.status = f"failed (exit {code}, log {log})"
            return
        evaluations = project_evaluations(run.work_dir)
    write_record(run, evaluations, finished=True)
    run.status, run.evaluations = "finished", evaluations


def run_sb3(run: Run, deadline: float, console: Console) -> None:
    """Train SB3 in the peer venv from zero; on success write its record (on a stop: a partial record)."""
    if not PEER_PYTHON.exists():
        run.status = "failed (no peer venv: bash benchmarks/peers/setup.sh)"
        return
    evaluations, done = [], {}

    def on_line(line: str) -> None:
        try:
            item = json.loads(line)
        except json.JSONDecodeError:
            return
        if item.get("done"):
            done.update(item)
        else:
            evaluations.append({key: item[key] for key in
                                ("env_steps", "eval_return_mean", "eval_return_std", "wall_time_s")})
            write_record(run, evaluations, finished=False)

    console.print(f"  $ {display(run.command)}")
    try:
        code = run_child(run.command, run.work_dir / "sb3.log", deadline, on_line)
    finally:
        run.evaluations = evaluations
    if code != 0 or not done:
        run.status = f"failed (exit {code}, log {run.work_dir / 'sb3.log'})"
        return
    write_record(run, evaluations, finished=True, extra={"sb3": {key: done[key] for key in
                                                                ("versions", "hyperparameters", "torch_threads")}})
    run.status = "finished"


# ---------------------------------------------------------------------------------------------
# assembling: CSV, table, plot (no training: tested on hand-made records)
# ---------------------------------------------------------------------------------------------

def assemble(runs: list[Run]) -> pd.DataFrame:
    """Every evaluation of the task's runs, finished or not, as rows of COLUMNS.

    Finished runs come from their records; unfinished ones from our run folder's progress.csv
    or SB3's partial record (complete = False).
    """
    rows = []
    for run in runs:
        record = read_record(run)
        if record is not None:
            evaluations, complete = record["evaluations"], True
        elif run.library == "project":
            evaluations, complete = project_evaluations(run.work_dir), False
            if run.work_dir.joinpath("spec.yaml").is_file():
                try:
                    if comparable(ExperimentSpec.from_yaml(run.work_dir / "spec.yaml")) != run.config["spec"]:
                        evaluations = []
                except UserInputError:
                    evaluations = []
        else:
            try:
                partial = json.loads((run.work_dir / "partial.json").read_text())
                evaluations = partial["evaluations"] if partial.get("config") == run.config else []
            except (OSError, json.JSONDecodeError):
                evaluations = []
            complete = False
        for item in evaluations:
            rows.append({"library": run.library, "seed": run.seed, "env_steps": int(item["env_steps"]),
                         "eval_return_mean": float(item["eval_return_mean"]),
                         "eval_return_std": float(item["eval_return_std"]), "complete": complete})
    return pd.DataFrame(rows, columns=COLUMNS)


def budget_table(frame: pd.DataFrame, budgets: tuple[int, ...]) -> pd.DataFrame:
    """One row per budget that a seed reached: per library n (seeds that reached it) and the IQM of their eval return
    there with its 95% bootstrap interval; P(project > SB3) with its interval when both libraries reached it.

    Columns <library>_n and sweep_summary.interval_columns <library>_iqm(_ci_low, _ci_high), p(_ci_low, _ci_high):
    NaN where a library has no seed there, NaN bounds for an interval over one seed.
    """
    rows = []
    for budget in budgets:
        scores = {library: frame.loc[(frame["library"] == library) & (frame["env_steps"] == budget),
                                     "eval_return_mean"].to_numpy() for library in LIBRARIES}
        if not any(values.size for values in scores.values()):
            continue
        row = {"env_steps": budget}
        for library, values in scores.items():
            row[f"{library}_n"] = values.size if values.size else math.nan
            row.update(interval_columns(f"{library}_iqm", iqm_interval(values) if values.size else None))
        both = all(values.size for values in scores.values())
        row.update(interval_columns("p", probability_of_improvement(scores["project"], scores["sb3"]) if both
                                    else None))
        rows.append(row)
    return pd.DataFrame(rows)


def budget_cells(row: dict) -> list[str]:
    """One budget's cells: each library's 'IQM [low, high], n=k' (empty: no seed), then P(project > SB3)."""
    cells = [f"{interval_cell(row, f'{library}_iqm', digits=0)}, n={int(row[f'{library}_n'])}"
             if row[f"{library}_n"] > 0 else "" for library in LIBRARIES]
    return [*cells, interval_cell(row, "p", digits=2) if not math.isnan(row["p"]) else ""]


def markdown_table(table: pd.DataFrame, title: str) -> str:
    """The budget table as markdown: one row per budget, one column per library, then P(project > SB3)."""
    lines = [f"**{title}** (deterministic eval return, mean of the evaluation episodes; IQM over seeds "
             "[95% bootstrap CI], n = seeds that reached the step; P(project > SB3) = the probability that a seed "
             "of this project scores higher than a seed of SB3 there, 0.5 = no difference)", "",
             "| env steps | " + " | ".join(LIBRARIES[lib] for lib in LIBRARIES) + " | P(project > SB3) |",
             "|---|" + "---|" * (len(LIBRARIES) + 1)]
    for row in table.to_dict("records"):
        lines.append(f"| {row['env_steps']:,} | " + " | ".join(budget_cells(row)) + " |")
    return "\n".join(lines) + "\n"


def plot(frame: pd.DataFrame, title: str, png: Path) -> None:
    """Per library: the IQM over seeds against env steps and its 95% bootstrap CI band (SoftActorCritic.plotting)."""
    figure, axis = plt.subplots(figsize=(8, 4.6))
    for index, library in enumerate(LIBRARIES):
        own = frame[frame["library"] == library]
        if own.empty:
            continue
        seeds = own["seed"].nunique()
        finished = own.groupby("seed")["complete"].all().sum()
        label = f"{LIBRARIES[library]}: {seeds} seed{'s' if seeds > 1 else ''}"
        if finished < seeds:
            label += f" ({seeds - finished} unfinished)"
        draw_curve(axis, band_curve(own, "eval_return_mean"), f"C{index}", label)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("eval return (deterministic, mean of episodes)")
    axis.ticklabel_format(axis="x", style="plain")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=9)
    axis.set_title(f"{title}: IQM over seeds, 95% bootstrap CI band", fontsize=11)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
    plt.close(figure)


def report(task_name: str, task: Task, runs: list[Run], out_dir: Path, argv: list[str], console: Console,
           quiet: bool = False) -> None:
    """Write the task's evaluations.csv, curves.png, table.md and command.txt; print the table unless quiet."""
    frame = assemble(runs)
    if frame.empty:  # no run has started: no empty files to commit
        console.print(f"{task_name}: no evaluations yet")
        return
    folder = out_dir / task_name
    folder.mkdir(parents=True, exist_ok=True)
    save_results(frame, folder / "evaluations.csv", float_format="%.2f")
    spec = project_spec(task, 1)
    title = f"{spec.env_id}{' ' + json.dumps(spec.env_kwargs) if spec.env_kwargs else ''}, {task.steps:,} steps"
    plot(frame, title, folder / "curves.png")
    table = budget_table(frame, task.budgets)
    (folder / "table.md").write_text(markdown_table(table, title))
    lines = [f"# {datetime.datetime.now():%Y-%m-%d %H:%M}",
             f"python -m benchmarks.learning_benchmark {shlex.join(argv)}", "",
             "# runs (status at the end of this invocation)"]
    for run in runs:
        status = run.status
        if status.startswith("not run") and read_record(run) is not None:  # an invocation running beside this one
            status = "finished (by another invocation)"
        lines += [f"{run.library} seed {run.seed}: {status}", f"  {display(run.command)}"]
    (folder / "command.txt").write_text("\n".join(lines) + "\n")
    if not quiet:
        print_table(console, title, ["env steps", *(f"{library}: IQM [95% CI], n" for library in LIBRARIES),
                                     "P(project > SB3)"],
                    [[f"{row['env_steps']:,}", *budget_cells(row)] for row in table.to_dict("records")])


# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="pendulum,lunarlander,halfcheetah",
                        help=f"comma-separated, in order, from {', '.join(TASKS)} (or all)")
    parser.add_argument("--libraries", default="project,sb3", help="comma-separated: project, sb3")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default: the task's)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this many minutes")
    parser.add_argument("--report-only", action="store_true", help="no training: assemble what is there")
    parser.add_argument("--quick", action="store_true",
                        help="Pendulum 600 steps, 1 seed, small nets; outputs under <runs-dir>/quick (never mixed "
                             "with real results)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    names = list(TASKS) if args.tasks == "all" else [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in TASKS]
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    bad_libraries = [name for name in libraries if name not in LIBRARIES]
    if unknown or not names:
        parser.exit(2, f"--tasks: unknown {', '.join(unknown) or '(none given)'}; allowed: {', '.join(TASKS)}, all\n")
    if bad_libraries or not libraries:
        parser.exit(2, f"--libraries: unknown {', '.join(bad_libraries) or '(none given)'}; allowed: project, sb3\n")
    if args.seeds is not None and args.seeds < 1 or args.max_minutes is not None and args.max_minutes <= 0:
        parser.exit(2, "--seeds and --max-minutes must be positive\n")
    args.task_names, args.library_names = names, libraries
    if args.quick:
        args.task_names = ["pendulum"]
        args.runs_dir = args.runs_dir / "quick"
        args.out_dir = args.runs_dir / "results"
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    console = wide_console()
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else float("inf")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda number, frame: STOP_SIGNAL.append(number))
    failed, stopped = False, None
    for task_name in args.task_names:
        task = QUICK_TASK if args.quick else TASKS[task_name]
        seeds = args.seeds or task.seeds
        try:  # every library is planned so that the task's files show both; only --libraries are run
            runs = [plan(task_name, task, library, seed, args.out_dir, args.runs_dir)
                    for seed in range(1, seeds + 1) for library in LIBRARIES]
        except UserInputError as error:
            print(error, file=sys.stderr)
            return 2
        for run in runs:
            if read_record(run) is not None:
                run.status = "finished (kept from an earlier invocation)"
                continue
            if run.library not in args.library_names:
                run.status = "not run (--libraries)"
                continue
            if args.report_only or stopped:
                run.status = "not run" if stopped is None else f"not run (stopped: {stopped})"
                continue
            with claim(run) as mine:
                if not mine:
                    run.status = "not run (another invocation is running it)"
                    continue
                if read_record(run) is not None:  # finished by the other invocation before we claimed it
                    run.status = "finished (by another invocation)"
                    continue
                console.print(f"[{datetime.datetime.now():%H:%M:%S}] {task_name} {run.library} seed {run.seed}")
                try:
                    (run_project if run.library == "project" else run_sb3)(run, deadline, console)
                except Stop as stop:
                    stopped = str(stop)
                    run.status = f"stopped ({stopped}); rerun the command to continue"
            failed |= run.status.startswith("failed")
            console.print(f"  -> {run.status}")
            report(task_name, task, runs, args.out_dir, argv, console, quiet=True)  # commit-ready after every run
        report(task_name, task, runs, args.out_dir, argv, console)
    if stopped == "signal":
        return 130
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
