"""Learning curves of this project next to a peer (SB3's SAC; sbx's SAC, DroQ or CrossQ): same tasks, seeds, evaluation.

Run from the repository root (the module form puts the project on the import path):

    nice -n 10 python -m benchmarks.learning_benchmark --tasks pendulum            # both libraries, 5 seeds
    nice -n 10 python -m benchmarks.learning_benchmark --tasks lunarlander,halfcheetah --max-minutes 60
    python -m benchmarks.learning_benchmark --quick        # the whole pipeline on a tiny budget, ~2 minutes
    python -m benchmarks.learning_benchmark --report-only  # CSV, plots and tables from what is there

Tasks (budget x seeds 1..n), compared with Stable-Baselines3's SAC: pendulum 10k x 5, lunarlander
(LunarLander-v3 continuous) 150k x 5, halfcheetah, hopper and walker2d (the -v5 tasks) 150k x 3. This
project's side of a task is the general default (ExperimentSpec's defaults, no per-task tuning) with the task's
evaluation protocol, seed=k and max_epoch=budget/timestep_per_epoch, run through the CLI (`python -m
SoftActorCritic train --env ENV_ID --set timestep_per_epoch=... --set max_eval_trj=... --set seed=k --set
max_epoch=E --run-dir DIR`).
The SAC family (issue 27), each compared with sbx's same algorithm with sbx's settings for it, listed after the
tasks above (--tasks all runs them last): pendulum_droq and pendulum_crossq (Pendulum-v1 5k x 5, budgets every
1k, the pendulum task's evaluation), hopper_droq and hopper_crossq (Hopper-v5 50k x 3, budgets every 10k, the
MuJoCo evaluation); this project's side runs the shipped spec experiments/droq.yaml or experiments/crossq.yaml
(`train --env ENV_ID --spec FILE --set ...`, Task.spec) with the same evaluation overrides.
The peer's side is benchmarks/peers/peer_learning.py in the peers' own virtual environment
(benchmarks/peers/.venv): SB3 2.9 SAC defaults with one torch thread (Task.peer "sb3"), or sbx 0.28's SAC,
DroQ configuration of SAC, or CrossQ (Task.peer "sbx", Task.peer_algo; JAX on CPU, its thread pool sized for one
core), learning_starts per task (Task.peer_learning_starts); the runner's docstring has the settings. The peer's
library, sb3 or sbx, names its side in --libraries, the records, the run folders and the report.

Evaluation is the same on both sides: after every timestep_per_epoch env steps of the spec,
max_eval_trj deterministic episodes, episode i reset with seed episode_seeds(k, max_eval_trj)[i]
(blocAndTools.seeding; computed here and passed to the peer's runner on its command line).

Resumable, one run at a time per invocation, each run one child process (nice the command on a shared machine:
the children inherit it). Invocations may run side by side, one per core: each claims a run with a lock on
runs/learning_benchmark/<task>/<library>/seed<k>.lock and skips runs another invocation holds. Side by side, give
this project's children one thread per op (`TF_NUM_INTRAOP_THREADS=1 python -m benchmarks.learning_benchmark ...`,
the children inherit it): a spec with gradient_steps > 1 otherwise takes both cores per op (tf_threads), which pays
alone and loses while another run holds a core (DroQ's 20-step call at Hopper's sizes, 2026-12-02: alone 86-97 ms
with two threads against 128-135 with one; beside an sbx run 163-186 against 124-146). sbx's runs go the other
way: one invocation alone with `--jax-cores all` (JAX's pool on every core) is at least as fast as two side by side
and finishes each record sooner (sbx's DroQ on Hopper: 214 ms per env step alone on both cores over the first 5,000
training steps, about 450 each side by side; benchmarks/peers/peer_learning.py). A run keeps the pool it started
with: an sbx state written with one core refuses to resume with --jax-cores all.
- a finished (library, task, seed) run is recorded in benchmarks/results/learning/<task>/records/
  <library>-seed<k>.json (its evaluations and configuration) and never recomputed while the
  configuration (resolved spec, budget, evaluation seeds) is unchanged; a changed one is rerun;
- this project's run in progress lives in runs/learning_benchmark/<task>/project/seed<k>/
  (gitignored: checkpoints, replay buffer) and continues with `train --resume`;
- an interrupted sbx run resumes from its last evaluation (the runner's --state file in its work folder; the
  runner's docstring says what is saved and why a resumed run is not bit-identical to an uninterrupted one, and
  its record lists the env steps it resumed at); an interrupted SB3 run restarts from zero (SB3 saves with pickle,
  which this project does not use). Either way its evaluations so far are kept as a partial record.
--max-minutes M stops after M minutes: this project's child gets SIGTERM (it writes a checkpoint),
the peer's child is stopped; SIGINT / SIGTERM to this script do the same (blocAndTools.errors.stop_on_signals).
Rerun the same command to go on.

Outputs per task in benchmarks/results/learning/<task>/ (small files, committed; benchmarks/learning_report.py):
  evaluations.csv  library, seed, env_steps, eval_return_mean, eval_return_std, complete (run finished)
  curves.png       eval return against env steps: per library the IQM over seeds and its 95% bootstrap CI band
  table.md         per budget: each library's IQM [95% CI] over the seeds that reached it, n, and
                   P(project > SB3) or P(project > sbx) [95% CI] (blocAndTools.statistics, seed 0); then the
                   same over whole curves (AUC: each finished seed's mean over all its evaluations)
  against_sac.md   family tasks only: table.md's comparison of our side with this project's SAC, the base task's
                   (pendulum or hopper) project records, their evaluations up to the family task's budget
  command.txt      this command, and every run's command and status
and across tasks (every invocation but --quick rewrites it from all the records there):
  overview.md      one line per task: table.md's last budget and AUC rows side by side
Exit status: 0 done (or stopped by --max-minutes), 1 a run failed, 2 bad input, 130 interrupted.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import fcntl
import functools
import json
import math
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from benchmarks.learning_report import (
    EVALUATION_KEYS,
    PEERS,
    PROJECT_NAME,
    REPO,
    Run,
    assemble,
    comparable,
    display,
    library_names,
    overview_line,
    overview_markdown,
    project_evaluations,
    read_record,
    write_record,
    write_report,
)
from benchmarks.report import wide_console
from blocAndTools.errors import UserInputError, stop_on_signals
from blocAndTools.experiment_spec import ExperimentSpec, expand_grid, load_raw_spec
from blocAndTools.seeding import episode_seeds

PEER_PYTHON = REPO / "benchmarks" / "peers" / ".venv" / "bin" / "python"
PEER_RUNNER = REPO / "benchmarks" / "peers" / "peer_learning.py"
PEER_ALGORITHMS = {"sb3": ("sac",), "sbx": ("sac", "droq", "crossq")}  # what the peer runner runs
ALL_LIBRARIES = ("project", *PEERS)
DEFAULT_OUT = REPO / "benchmarks" / "results" / "learning"
DEFAULT_RUNS = REPO / "runs" / "learning_benchmark"


@dataclass(frozen=True)
class Task:
    """One benchmark task: its environment, the env-step budget, the seeds 1..n, the peer's learning_starts, our
    side's spec (the general default, spec None: `train --env`, or a shipped spec file), and the peer it is compared
    with: its library (sb3 or sbx, the name of its side) and algorithm (sb3: sac; sbx: sac, droq or crossq). A
    family task's base is the task whose project side is this project's SAC on the same protocol: its report also
    sets our side against that one (against_sac.md)."""
    env_id: str
    steps: int
    seeds: int
    peer_learning_starts: int
    budgets: tuple[int, ...]  # env steps at which the table reports IQM [95% CI] and P(project > peer)
    overrides: tuple[str, ...] = ()  # --set values of our runs: the evaluation protocol, both libraries follow it
    spec: str | None = None
    peer: str = "sb3"
    peer_algo: str = "sac"
    base: str | None = None

    def __post_init__(self) -> None:
        if self.peer_algo not in PEER_ALGORITHMS.get(self.peer, ()):
            raise ValueError(f"Task peer {self.peer!r} with algorithm {self.peer_algo!r}: the peer runner has "
                             + "; ".join(f"{peer}: {', '.join(algos)}" for peer, algos in PEER_ALGORITHMS.items()))

    @property
    def libraries(self) -> dict[str, str]:
        """The task's two libraries, this project then its peer, with their names in the report."""
        project = PROJECT_NAME if self.spec is None else f"this project ({self.spec})"
        return library_names(self.peer, self.peer_algo, project)


# The evaluation protocol of each task (both libraries): evaluate every timestep_per_epoch env steps on
# max_eval_trj episodes. The peer's learning_starts: SB3's default (100) on Pendulum, as in the issue's
# measurement; 10,000 on the others, the value of rl-baselines3-zoo's tuned SAC settings for
# LunarLanderContinuous, HalfCheetah and Hopper (the other hyperparameters stay the peer's defaults).
LONG = (50_000, 100_000, 150_000)
MUJOCO_EVALUATION = ("timestep_per_epoch=5000", "max_eval_trj=5")
TASKS = {
    "pendulum": Task("Pendulum-v1", 10_000, 5, 100, (2_000, 4_000, 6_000, 8_000, 10_000),
                     ("timestep_per_epoch=1000", "max_eval_trj=10")),
    "lunarlander": Task("LunarLander-v3", 150_000, 5, 10_000, LONG,
                        ("env_kwargs={continuous: true}", "timestep_per_epoch=5000", "max_eval_trj=10")),
    "halfcheetah": Task("HalfCheetah-v5", 150_000, 3, 10_000, LONG, MUJOCO_EVALUATION),
    "hopper": Task("Hopper-v5", 150_000, 3, 10_000, LONG, MUJOCO_EVALUATION),
    "walker2d": Task("Walker2d-v5", 150_000, 3, 10_000, LONG, MUJOCO_EVALUATION),
}
# The SAC family (issue 27) against sbx's same algorithm, each with the evaluation and seeds of the pendulum or
# hopper task above, a shorter budget, and sbx's learning_starts equal to our warm-up (min_pool_size auto: five time
# limits), so that both sides run the same settings; after the tasks above in --tasks all.
SHORT_PENDULUM = {"steps": 5_000, "budgets": (1_000, 2_000, 3_000, 4_000, 5_000), "peer_learning_starts": 1_000}
SHORT_HOPPER = {"steps": 50_000, "budgets": (10_000, 20_000, 30_000, 40_000, 50_000), "peer_learning_starts": 5_000}
TASKS.update({f"{base}_{algo}": replace(TASKS[base], **short, spec=f"experiments/{algo}.yaml", peer="sbx",
                                        peer_algo=algo, base=base)
              for base, short in (("pendulum", SHORT_PENDULUM), ("hopper", SHORT_HOPPER))
              for algo in ("droq", "crossq")})
QUICK_TASK = Task("Pendulum-v1", 600, 1, 100, (200, 400, 600),
                  ("timestep_per_epoch=200", "min_pool_size=200", "batch_size_in_ts=64", "max_eval_trj=2",
                   "phi_nn_h_layer_topo=[64,64]", "psi_nn_h_layer_topo=[64,64]", "theta_nn_h_layer_topo=[64,64]"))


# ---------------------------------------------------------------------------------------------
# what one run is: its configuration, folder, record and command
# ---------------------------------------------------------------------------------------------

def project_spec(task: Task, seed: int) -> ExperimentSpec:
    """The resolved spec of our run of `task` with `seed` (max_epoch from the budget)."""
    def resolve(extra: list[str]) -> ExperimentSpec:
        spec_path = None if task.spec is None else REPO / task.spec
        return expand_grid(load_raw_spec(spec_path, [f"env_id={task.env_id}", *task.overrides, *extra]))[0]

    epoch = resolve([]).timestep_per_epoch
    if task.steps % epoch:
        raise UserInputError(f"{task.env_id}: budget {task.steps} is not a multiple of timestep_per_epoch {epoch}")
    return resolve([f"seed={seed}", f"max_epoch={task.steps // epoch}"])


def plan(task_name: str, task: Task, library: str, seed: int, out_dir: Path, runs_dir: Path,
         jax_cores: str = "one") -> Run:
    """The Run of one (task, library, seed), library "project" or the task's peer: config, command and paths;
    nothing is started. jax_cores: the sbx runner's --jax-cores (its JAX thread pool: one core or all).

    The peer's config has the fields of the first SB3 records (env_id ... seed) and "algo"; a record without it
    was SAC (learning_report.same_config). Its command gives --library and --algo where they are not the runner's
    defaults (sb3, sac), so that an SB3 run's command is the one its records were made with."""
    if library not in ("project", task.peer):
        raise ValueError(f"{task_name} compares this project with {task.peer}, not {library}")
    spec = project_spec(task, seed)
    eval_seeds = episode_seeds(seed, spec.max_eval_trj)
    record = out_dir / task_name / "records" / f"{library}-seed{seed}.json"  # not "runs": .gitignore has runs/
    work_dir = runs_dir / task_name / library / f"seed{seed}"
    if library == "project":
        overrides = [*task.overrides, f"seed={seed}", f"max_epoch={spec.max_epoch}"]
        command = [sys.executable, "-m", "SoftActorCritic", "train", "--env", task.env_id]
        if task.spec is not None:
            command += ["--spec", task.spec]
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
                  "learning_starts": task.peer_learning_starts, "seed": seed, "algo": task.peer_algo}
        command = [str(PEER_PYTHON), str(PEER_RUNNER)]
        if (task.peer, task.peer_algo) != ("sb3", "sac"):
            command += ["--library", task.peer, "--algo", task.peer_algo]
        command += ["--env", spec.env_id, "--env-kwargs", json.dumps(env_kwargs), "--seed", str(seed),
                    "--steps", str(task.steps), "--eval-interval", str(spec.timestep_per_epoch),
                    "--eval-seeds", ",".join(map(str, eval_seeds)),
                    "--learning-starts", str(task.peer_learning_starts)]
        if task.peer == "sbx":  # the runner writes its state there at each evaluation and resumes from it
            command += ["--state", str(work_dir / "sbx_state.npz")]
            if jax_cores != "one":
                command += ["--jax-cores", jax_cores]
    return Run(task_name, library, seed, config, command, record, work_dir)


# ---------------------------------------------------------------------------------------------
# running: one child process at a time, claimed with a lock
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


def stop_on_signal(signum: int) -> None:
    """stop_on_signals' answer to the first Ctrl-C / SIGTERM: interrupt the wait for the child (run_child stops it)."""
    raise Stop("signal")


def run_child(command: list[str], log: Path, deadline: float, stdout: Path | None = None) -> int:
    """Run one child to its end and return its exit status; stderr, and stdout unless `stdout` names a file for it,
    are appended to `log`.

    At the deadline or on a Stop from stop_on_signal: SIGTERM to the child (ours writes a checkpoint), wait for it,
    then raise Stop; past the deadline already: Stop at once. Not subprocess.run(timeout=...): it would SIGKILL the
    child, which then writes no checkpoint.
    """
    if time.time() >= deadline:
        raise Stop("deadline")
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    with open(log, "a") as log_file, (open(stdout, "w") if stdout else contextlib.nullcontext(log_file)) as out_file:
        log_file.write(f"\n$ {shlex.join(command)}\n")
        log_file.flush()
        with subprocess.Popen(command, cwd=REPO, stdout=out_file, stderr=log_file, env=env) as child:
            try:
                return child.wait(timeout=max(deadline - time.time(), 0) if math.isfinite(deadline) else None)
            except subprocess.TimeoutExpired:
                reason = "deadline"
            except Stop:
                reason = "signal"
            child.terminate()
            try:
                child.wait(timeout=120)
            except subprocess.TimeoutExpired:
                child.kill()
    raise Stop(reason)


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


def peer_lines(path: Path) -> list[dict]:
    """The JSON lines the peer's runner printed (one per evaluation, a last one with done); other lines are
    skipped."""
    items = []
    with contextlib.suppress(OSError), open(path) as lines:
        for line in lines:
            with contextlib.suppress(json.JSONDecodeError):
                items.append(json.loads(line))
    return [item for item in items if isinstance(item, dict)]


def run_peer(run: Run, deadline: float, console: Console) -> None:
    """Train the peer in the peer venv (SB3 from zero, sbx from its state if it has one); on success write its record,
    with what its runner's last line says (versions, hyperparameters, threads, resumed_at) under the library's name;
    else a partial record of its evaluations."""
    if not PEER_PYTHON.exists():
        run.status = "failed (no peer venv: bash benchmarks/peers/setup.sh)"
        return
    console.print(f"  $ {display(run.command)}")
    lines, log = run.work_dir / f"{run.library}.jsonl", run.work_dir / f"{run.library}.log"
    try:
        code = run_child(run.command, log, deadline, stdout=lines)
    finally:  # finished, failed or stopped: its evaluations so far are kept
        items = peer_lines(lines)
        run.evaluations = [{key: item[key] for key in EVALUATION_KEYS} for item in items if not item.get("done")]
        if run.evaluations:
            write_record(run, run.evaluations, finished=False)
    done = next((item for item in items if item.get("done")), None)
    if code != 0 or done is None:
        run.status = f"failed (exit {code}, log {log})"
        return
    write_record(run, run.evaluations, finished=True,
                 extra={run.library: {key: value for key, value in done.items()
                                      if key not in ("done", "env_steps", "wall_time_s")}})
    run.status = "finished"


# ---------------------------------------------------------------------------------------------

def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="pendulum,lunarlander,halfcheetah",
                        help=f"comma-separated, in order, from {', '.join(TASKS)} (or all)")
    parser.add_argument("--libraries", default=",".join(ALL_LIBRARIES),
                        help=f"comma-separated from {', '.join(ALL_LIBRARIES)} (default all): which sides of the "
                             "tasks to run; a task's peer is sb3 or sbx (TASKS)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 1..N (default: the task's)")
    parser.add_argument("--max-minutes", type=float, default=None, help="stop (resumably) after this many minutes")
    parser.add_argument("--report-only", action="store_true", help="no training: assemble what is there")
    parser.add_argument("--quick", action="store_true",
                        help="Pendulum 600 steps, 1 seed, small nets; outputs under <runs-dir>/quick (never mixed "
                             "with real results)")
    parser.add_argument("--jax-cores", default="one",
                        help="sbx's JAX thread pool: one (default: invocations side by side, one per core) or all "
                             "(one invocation alone: faster per run, see the module docstring)")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    names = list(TASKS) if args.tasks == "all" else [name.strip() for name in args.tasks.split(",") if name.strip()]
    unknown = [name for name in names if name not in TASKS]
    libraries = [name.strip() for name in args.libraries.split(",") if name.strip()]
    bad_libraries = [name for name in libraries if name not in ALL_LIBRARIES]
    if unknown or not names:
        parser.exit(2, f"--tasks: unknown {', '.join(unknown) or '(none given)'}; allowed: {', '.join(TASKS)}, all\n")
    if bad_libraries or not libraries:
        parser.exit(2, f"--libraries: unknown {', '.join(bad_libraries) or '(none given)'}; "
                       f"allowed: {', '.join(ALL_LIBRARIES)}\n")
    if args.seeds is not None and args.seeds < 1 or args.max_minutes is not None and args.max_minutes <= 0:
        parser.exit(2, "--seeds and --max-minutes must be positive\n")
    if args.jax_cores not in ("one", "all"):
        parser.exit(2, f"--jax-cores: one or all, not {args.jax_cores!r}\n")
    args.task_names, args.library_names = names, libraries
    if args.quick:
        args.task_names = ["pendulum"]
        args.runs_dir = args.runs_dir / "quick"
        args.out_dir = args.runs_dir / "results"
    return args


def start(run: Run, deadline: float, console: Console) -> str:
    """Run `run` unless another invocation holds it or has finished it meanwhile; its status."""
    with claim(run) as mine:
        if not mine:
            return "not run (another invocation is running it)"
        if read_record(run) is not None:  # finished by the other invocation before we claimed it
            return "finished (by another invocation)"
        console.print(f"[{datetime.datetime.now():%H:%M:%S}] {run.task} {run.library} seed {run.seed}")
        (run_project if run.library == "project" else run_peer)(run, deadline, console)
        return run.status


def run_tasks(args: argparse.Namespace, argv: list[str], console: Console) -> int:
    """Every task's runs in turn, then its files; the exit status."""
    deadline = time.time() + 60 * args.max_minutes if args.max_minutes else math.inf
    failed, stopped = False, None
    for task_name in args.task_names:
        task = QUICK_TASK if args.quick else TASKS[task_name]
        seeds = args.seeds or task.seeds
        try:  # both libraries are planned so that the task's files show both; only --libraries are run
            runs = [plan(task_name, task, library, seed, args.out_dir, args.runs_dir, args.jax_cores)
                    for seed in range(1, seeds + 1) for library in task.libraries]
        except UserInputError as error:
            print(error, file=sys.stderr)
            return 2
        spec = project_spec(task, 1)
        title = f"{spec.env_id}{' ' + json.dumps(spec.env_kwargs) if spec.env_kwargs else ''}, {task.steps:,} steps"
        base_runs = None if task.base is None else [  # QUICK_TASK has no base
            plan(task.base, TASKS[task.base], "project", seed, args.out_dir, args.runs_dir)
            for seed in range(1, seeds + 1)]
        report = functools.partial(write_report, args.out_dir / task_name, title, task.budgets, runs, argv, console,
                                   libraries=task.libraries, base_runs=base_runs)
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
            try:
                run.status = start(run, deadline, console)
            except Stop as stop:
                stopped = str(stop)
                run.status = f"stopped ({stopped}); rerun the command to continue"
            failed |= run.status.startswith("failed")
            console.print(f"  -> {run.status}")
            report(quiet=True)  # commit-ready after every run
        report()
    if not args.quick:  # QUICK_TASK is none of TASKS
        console.print(f"overview of every task: {write_overview(args.out_dir, args.runs_dir)}")
    if stopped == "signal":
        return 130
    return 1 if failed else 0


def write_overview(out_dir: Path, runs_dir: Path) -> Path:
    """<out_dir>/overview.md: every task of TASKS with a seed (of its 1..n) at its last budget, there and over the
    whole curves (learning_report.overview_line); the file's path."""
    lines = []
    for name, task in TASKS.items():
        runs = [plan(name, task, library, seed, out_dir, runs_dir)
                for seed in range(1, task.seeds + 1) for library in task.libraries]
        line = overview_line(name, assemble(runs), task.budgets[-1], task.libraries)
        if line is not None:
            lines.append(line)
    path = out_dir / "overview.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(overview_markdown(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    try:
        with stop_on_signals(stop_on_signal):
            return run_tasks(args, argv, wide_console())
    except Stop:  # a signal while no child ran (between two runs, while writing the files): the records are kept
        return 130


if __name__ == "__main__":
    sys.exit(main())
