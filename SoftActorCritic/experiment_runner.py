"""The experiment runner CLI: `sac {train,eval,play,export,plot,list,fields}` (or `python -m SoftActorCritic`).

Bad input (spec, files, environment, run folder) prints one line and exits with status 2
before anything is written. Only `train` and `export` need TensorFlow, and they import it
after every input check (`import_training`, `command_export`): `--help`, `list`, `fields`,
`eval`, `play` and every input error answer without loading it.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from blocAndTools.errors import EnvironmentFault, TrainingInterrupted, UserInputError, run_command
from blocAndTools.experiment_spec import (
    ExperimentSpec,
    expand_grid,
    field_docs,
    load_raw_spec,
    parse_override,
    yaml_text,
)
from blocAndTools.gym_playground import GymPlayground
from blocAndTools.seeding import episode_seeds
from blocAndTools.tf_threads import import_tensorflow_quietly
from SoftActorCritic import sweeps
from SoftActorCritic.numpy_policy import Policy, load_policy
from SoftActorCritic.sweep_summary import report_summary

if TYPE_CHECKING:  # type hints only: run_logging imports TensorFlow
    from blocAndTools.run_logging import ConsoleView

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKPOINT_INDEX = re.compile(r'model_checkpoint_path: "ckpt-(\d+)"')  # tf.train.CheckpointManager's index file


def experiments_dir() -> Path:
    """The shipped experiment files: package data once installed, the clone's experiments/ otherwise."""
    for folder in (PACKAGE_DIR / "experiments", PACKAGE_DIR.parent / "experiments"):
        if folder.is_dir():
            return folder
    raise UserInputError("the shipped experiment files are missing from this installation")


def resolve_spec(text: str) -> Path:
    """--spec: a YAML file, or the name of a shipped experiment (`pendulum`, `sac/hopper_clipq`)."""
    path = Path(text)
    if path.is_file():
        return path
    if not path.is_absolute() and path.suffix in ("", ".yaml"):
        shipped = experiments_dir() / path.with_suffix(".yaml")
        if shipped.is_file():
            return shipped
    raise UserInputError(f"--spec {text!r}: no such file, nor a shipped experiment of that name (see `sac list`)")


def _now() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def plan_runs(args: argparse.Namespace) -> list[tuple[ExperimentSpec, Path]]:
    """Expand the grid and the reruns into (spec, run folder) pairs; validate everything first."""
    if args.reruns < 1:
        raise UserInputError(f"--reruns {args.reruns}: must be >= 1")
    specs = expand_grid(load_raw_spec(resolve_spec(args.spec), args.set))
    runs = []
    for spec in specs:
        for rerun in range(args.reruns):
            seeded = spec.replace(seed=spec.seed + rerun)
            if args.run_dir is not None and len(specs) * args.reruns == 1:
                run_dir = Path(args.run_dir)
            else:
                root = Path(args.run_dir) if args.run_dir is not None else Path("runs")
                run_dir = root / seeded.name / f"{_now()}-seed{seeded.seed}"
            if run_dir.exists() and any(run_dir.iterdir()):
                raise UserInputError(f"run folder {str(run_dir)!r} already holds a run "
                                     f"(use --resume to continue it, or another --run-dir)")
            runs.append((seeded, run_dir))
    return runs


def check_environments(specs: Sequence[ExperimentSpec]) -> None:
    """Make each distinct environment once, so a bad id fails before any training starts."""
    seen = set()
    for spec in specs:
        key = (spec.env_id, repr(sorted(spec.env_kwargs.items())), spec.max_trj_steps)
        if key not in seen:
            seen.add(key)
            GymPlayground(spec.env_id, spec.env_kwargs, seed=spec.seed, max_trj_steps=spec.max_trj_steps).close()


def request_stop_on_signals(agent) -> None:
    """SIGINT (Ctrl-C) and SIGTERM ask the agent to checkpoint and stop at its next step; a second Ctrl-C kills."""
    if threading.current_thread() is not threading.main_thread():
        return  # a Ray Tune trial runs in a thread: its driver stops it (SoftActorCritic.sweeps)

    def handler(signum, frame):
        if agent.stop_requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        agent.stop_requested = True

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def train_one(spec: ExperimentSpec, run_dir: Path, resume: bool, view: ConsoleView) -> None:
    """Train (or resume) one run in run_dir."""
    from blocAndTools.run_logging import ProgressFiles
    from SoftActorCritic.agent import SoftActorCriticAgent

    agent = SoftActorCriticAgent(spec, run_dir)
    request_stop_on_signals(agent)
    try:
        if resume:
            agent.restore_checkpoint()
            view.print(f"resuming {run_dir} from epoch {agent.epoch} ({agent.env_steps} env steps)")
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            spec.to_yaml(run_dir / "spec.yaml")
            view.print(f"training {spec.name} on {agent.playground.describe()}; run folder {run_dir}")
        view.print(agent.tf_threads)
        files = ProgressFiles(run_dir, keep_epochs=agent.epoch)
        try:
            agent.train(view, files)
        except (TrainingInterrupted, EnvironmentFault) as error:  # the agent checkpointed what it could
            latest = agent.checkpointer.latest_number
            if latest is None:
                raise type(error)(f"{error}; no checkpoint was written: start the run again") from error
            raise type(error)(f"{error}; checkpoint saved at env step {latest}, continue with: "
                              f"sac train --resume --run-dir {run_dir}") from error
        finally:
            files.close()
    finally:
        agent.close()


def import_training() -> ConsoleView:
    """Load TensorFlow quietly (after the input checks) and return the console view of a training run."""
    import_tensorflow_quietly()
    from blocAndTools.run_logging import ConsoleView
    return ConsoleView()


def latest_checkpoint_state(run_dir: Path) -> dict | None:
    """The run state (epoch, env steps, ...) of the newest complete checkpoint of a run, read without TensorFlow."""
    checkpoints = Path(run_dir) / "checkpoints"
    index = checkpoints / "checkpoint"
    match = CHECKPOINT_INDEX.search(index.read_text()) if index.is_file() else None
    if match is None:
        return None
    state_path = checkpoints / f"run_state-{match.group(1)}.json"
    try:
        return json.loads(state_path.read_text())
    except (OSError, ValueError) as error:
        raise UserInputError(f"{state_path} cannot be read: {type(error).__name__}: {error}") from None


def resume_spec(run_dir: Path, overrides: Sequence[str]) -> ExperimentSpec:
    """The run's spec with the one change a resume allows: a new max_epoch (any other would mix two experiments)."""
    spec = ExperimentSpec.from_yaml(run_dir / "spec.yaml")
    changes = dict(parse_override(text) for text in overrides)
    refused = sorted(set(changes) - {"max_epoch"})
    if refused:
        raise UserInputError(f"--set {refused[0]} with --resume: only max_epoch can change when a run continues "
                             f"(another field would mix two experiments in one progress.csv)")
    return spec.replace(**changes)


def command_train(args: argparse.Namespace) -> None:
    sweeps.check_backend_options(args)
    if args.resume:
        resume(args)
        return
    if args.spec is None:
        raise UserInputError("train needs --spec FILE or the name of a shipped experiment (see `sac list`)")
    if args.run_dir is None:  # a grid or reruns: one sweep folder for the runs and their summary
        args.run_dir = sweeps.default_sweep_dir(resolve_spec(args.spec), args.set, max(args.reruns, 1))
    runs = plan_runs(args)
    check_environments([spec for spec, _ in runs])
    sweep_dir = Path(args.run_dir) if len(runs) > 1 else None
    on_ray = args.backend == "ray"
    with sweeps.ray_session(args.ray_address) if on_ray else contextlib.nullcontext():
        # Ray has started by now: when it cannot, the command exits 2 with nothing written
        if sweep_dir is not None:
            sweeps.write_manifest(sweep_dir, runs, args.backend)
        if on_ray:
            sweeps.run_on_ray(runs, sweep_dir, args.ray_address, args.max_concurrent)
        else:
            view = import_training()
            for spec, run_dir in runs:
                train_one(spec, run_dir, resume=False, view=view)
    report_summary(runs, sweep_dir)


def resume(args: argparse.Namespace) -> None:
    """train --resume: continue a run (or extend it with --set max_epoch=N), or a sweep folder's unfinished runs."""
    if args.run_dir is None:
        raise UserInputError("--resume needs --run-dir: the folder of the run to continue")
    run_dir = Path(args.run_dir)
    if sweeps.is_sweep_folder(run_dir):
        if args.set:
            raise UserInputError("--set with --resume of a sweep folder: a sweep continues as it was planned")
        sweeps.resume_sweep(run_dir, args.backend, import_training, args.ray_address, args.max_concurrent)
        return
    if not (run_dir / "spec.yaml").is_file():
        raise UserInputError(f"run folder {str(run_dir)!r} holds no spec.yaml to resume")
    spec = resume_spec(run_dir, args.set)
    state = latest_checkpoint_state(run_dir)
    if state is None:
        raise UserInputError(f"run folder {str(run_dir)!r} holds no checkpoint to resume from")
    if spec.max_epoch < state["epoch"]:
        raise UserInputError(f"--set max_epoch={spec.max_epoch}: the run has already done {state['epoch']} epochs")
    if spec.max_epoch == state["epoch"]:
        print(f"{run_dir} has finished its {spec.max_epoch} epochs; nothing to do "
              f"(extend it with --set max_epoch=N, N > {spec.max_epoch})")
        return
    check_environments([spec])
    spec.to_yaml(run_dir / "spec.yaml")  # the new max_epoch, if any
    if args.backend == "ray":
        sweeps.run_on_ray([(spec, run_dir)], None, args.ray_address, args.max_concurrent)
    else:
        train_one(spec, run_dir, resume=True, view=import_training())
    report_summary([(spec, run_dir)], None)


def _run_spec(run_dir: Path) -> ExperimentSpec:
    """The spec of a run folder; a bare policy file gets the default seed and time limit."""
    path = Path(run_dir) / "spec.yaml"
    return ExperimentSpec.from_yaml(path) if path.is_file() else ExperimentSpec()


def _describe(policy: Policy) -> str:
    """Which policy file, from which point of the run, e.g. 'runs/x/checkpoints/policy-2000.npz (env step 2000)'."""
    score = "" if policy.eval_return is None else f", eval return {policy.eval_return:.1f}"
    return f"{policy.path} (env step {policy.env_steps}{score})"


def _playground(policy: Policy, spec: ExperimentSpec, render_mode: str | None = None) -> GymPlayground:
    playground = GymPlayground(policy.env_id, policy.env_kwargs, max_trj_steps=spec.max_trj_steps,
                               render_mode=render_mode)
    if (playground.obs_dim, playground.act_dim) != (policy.obs_dim, policy.act_dim):
        playground.close()
        raise UserInputError(f"the policy is for obs/act dims {policy.obs_dim}/{policy.act_dim}, "
                             f"{policy.env_id} has {playground.obs_dim}/{playground.act_dim}")
    return playground


def _episodes(args: argparse.Namespace) -> int:
    if args.episodes < 1:
        raise UserInputError(f"--episodes {args.episodes}: must be >= 1")
    return args.episodes


def command_eval(args: argparse.Namespace) -> None:
    """Deterministic returns of a run's policy on the run's play episodes (unseen by training and its evaluations)."""
    episodes, policy, spec = _episodes(args), load_policy(args.run_dir, args.best), _run_spec(args.run_dir)
    with _playground(policy, spec) as playground:
        returns = [playground.run_episode(policy.actor, seed) for seed in episode_seeds(spec.seed, episodes, "play")]
    print(f"evaluated {_describe(policy)}")
    print(f"{policy.env_id}: deterministic return over {len(returns)} episodes: mean {np.mean(returns):.1f}, "
          f"std {np.std(returns):.1f}, min {np.min(returns):.1f}, max {np.max(returns):.1f}")


def command_play(args: argparse.Namespace) -> int:
    """Watch the policy in a window, or with --record write mp4 videos from a TensorFlow-free child process."""
    episodes, policy, spec = _episodes(args), load_policy(args.run_dir, args.best), _run_spec(args.run_dir)
    if args.record:
        # MuJoCo's EGL rendering segfaults in a process with TensorFlow loaded: record_video never loads it.
        command = [sys.executable, "-m", "SoftActorCritic.record_video", "--policy", str(policy.path),
                   "--episodes", str(episodes), "--out-dir", str(Path(args.run_dir) / "videos"),
                   "--seed", str(spec.seed)]
        if spec.max_trj_steps is not None:
            command += ["--max-trj-steps", str(spec.max_trj_steps)]
        print(f"recording {_describe(policy)}", flush=True)
        child = subprocess.run(command, check=False)
        if child.returncode < 0:
            raise EnvironmentFault(f"the recording process (SoftActorCritic.record_video) died of signal "
                                   f"{-child.returncode}")
        return child.returncode  # its errors were already printed on one line by the child
    if not os.environ.get("DISPLAY"):
        raise UserInputError("no display to play on: use --record to write a video instead")
    with _playground(policy, spec, render_mode="human") as playground:
        returns = [playground.run_episode(policy.actor, seed) for seed in episode_seeds(spec.seed, episodes, "play")]
    print("returns:", [round(r, 1) for r in returns])
    return 0


def command_export(args: argparse.Namespace) -> None:
    """Write a TensorFlow SavedModel of the policy: serving_default(obs) -> action in the environment's bounds."""
    out = Path(args.out)
    if out.exists():
        raise UserInputError(f"--out {str(out)!r} already exists: choose a new path (nothing was overwritten)")
    policy = load_policy(args.run_dir, args.best)
    import_tensorflow_quietly()
    from SoftActorCritic.export import export_saved_model

    export_saved_model(policy, out)
    print(f"exported {_describe(policy)} to {out}: serving_default(obs: float32 [None, {policy.obs_dim}]) -> "
          f"action: float32 [None, {policy.act_dim}] in the bounds of {policy.env_id}")


def command_tune(args: argparse.Namespace) -> None:
    from SoftActorCritic.search import run_search

    args.spec = str(resolve_spec(args.spec))
    run_search(args)


def command_plot(args: argparse.Namespace) -> None:
    from SoftActorCritic.plotting import plot_learning_curves

    folders = [Path(p) for p in args.run_dirs]
    if args.out is not None:
        out = Path(args.out)
    else:  # next to the runs: in the one folder given, or in the folders' common parent
        out = (folders[0] if len(folders) == 1 else Path(os.path.commonpath([p.resolve() for p in folders])))
        out = out / "learning_curves.png"
    out = plot_learning_curves(folders, out, args.metric or ["eval_return_mean"])
    print(f"learning curves written to {out}")


def command_list(args: argparse.Namespace) -> None:
    folder = Path(args.dir) if args.dir is not None else experiments_dir()
    for path in sorted(folder.rglob("*.yaml")):
        try:
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            description = "(not valid YAML)"
        print(f"{path.relative_to(folder).with_suffix('').as_posix():40s} {description}")


def command_fields(args: argparse.Namespace) -> None:
    docs = field_docs()
    for spec_field in dataclasses.fields(ExperimentSpec):
        default = spec_field.default if spec_field.default is not dataclasses.MISSING else spec_field.default_factory()
        print(f"{spec_field.name:30s} {yaml_text(default):18s} {docs.get(spec_field.name, '')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sac", description="Soft Actor-Critic (TensorFlow 2): train, evaluate, "
                                     "watch and export policies on gymnasium continuous-control tasks.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train from a spec (a grid of specs, with reruns), or resume a run")
    train.add_argument("--spec", help="spec YAML file, or a shipped experiment's name, e.g. pendulum (see `sac list`)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field (repeatable); a list value makes a grid search; with --resume "
                            "only max_epoch=N, to extend the run")
    train.add_argument("--run-dir", help="run folder (default runs/<name>/<date-time>-seed<N>); with a grid "
                                         "or reruns, the sweep folder (default runs/<name>/sweep-<date-time>)")
    train.add_argument("--reruns", type=int, default=1, help="seeds per grid point: seed, seed+1, ...")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint "
                                                             "(a sweep folder: its unfinished runs)")
    train.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local: the runs one after another in this process; ray: each run is a Ray Tune "
                            "trial (retried from its checkpoint if its process dies)")
    train.add_argument("--ray-address", metavar="HOST:PORT",
                       help="join the Ray cluster started with `ray start --head` there (default: start a local "
                            "one inside this command)")
    train.add_argument("--max-concurrent", type=int, metavar="K",
                       help="Ray trials at a time (default: one per CPU of the cluster); the CPUs are shared "
                            "evenly between them")
    train.set_defaults(func=command_train)

    search = commands.add_parser("tune", help="hyperparameter search on Ray Tune (Optuna sampler, ASHA stopping); "
                                              "writes the best configuration as a spec file")
    search.add_argument("--spec", required=True, help="spec YAML file or a shipped experiment's name; a field written "
                                                      "as a distribution, e.g. 'loguniform(1e-4, 1e-2)', is searched")
    search.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field (repeatable)")
    search.add_argument("--search", action="append", default=[], metavar="FIELD=DISTRIBUTION",
                        help="search a field (repeatable): uniform(a, b), loguniform(a, b), randint(a, b) "
                             "(b excluded) or choice([v1, v2, ...])")
    search.add_argument("--samples", type=int, default=8, metavar="N", help="configurations to try (default 8)")
    search.add_argument("--scheduler", choices=("asha", "none"), default="asha",
                        help="asha: stop poor trials early on their per-epoch eval return; none: run all to the end")
    search.add_argument("--run-dir", help="search folder (default runs/<name>/tune-<date-time>): one run folder "
                                          "per trial, summary.csv and best_spec.yaml")
    search.add_argument("--ray-address", metavar="HOST:PORT",
                        help="join the Ray cluster started with `ray start --head` there (default: a local one)")
    search.add_argument("--max-concurrent", type=int, metavar="K",
                        help="trials at a time (default: one per CPU of the cluster)")
    search.set_defaults(func=command_tune)

    for name, helptext, func in (("eval", "deterministic return of a run's policy, tanh(mu)", command_eval),
                                 ("play", "watch a run's policy, or record videos", command_play)):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--run-dir", required=True, help="the run folder (or a policy file)")
        sub.add_argument("--episodes", type=int, default=10 if name == "eval" else 1, help="number of episodes")
        sub.add_argument("--best", action="store_true", help="the best evaluated policy instead of the newest one")
        if name == "play":
            sub.add_argument("--record", action="store_true", help="write mp4 videos to <run-dir>/videos/")
        sub.set_defaults(func=func)

    export = commands.add_parser("export", help="write a run's policy as a TensorFlow SavedModel")
    export.add_argument("--run-dir", required=True, help="the run folder (or a policy file)")
    export.add_argument("--best", action="store_true", help="the best evaluated policy instead of the newest one")
    export.add_argument("--out", required=True, help="SavedModel folder to create (must not exist)")
    export.set_defaults(func=command_export)

    plot = commands.add_parser("plot", help="learning curves (eval return vs env steps) of one or more runs")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders, or folders of runs (reruns are averaged)")
    plot.add_argument("--out", help="image file to write (default: learning_curves.png next to the runs)")
    plot.add_argument("--metric", action="append", metavar="COLUMN",
                      help="progress.csv column to draw, one panel each (repeatable; default eval_return_mean), "
                           "e.g. q1_mean for overestimation")
    plot.set_defaults(func=command_plot)

    listing = commands.add_parser("list", help="the shipped experiments, with a one-line description each")
    listing.add_argument("--dir", help="list the spec files of this folder instead")
    listing.set_defaults(func=command_list)

    fields = commands.add_parser("fields", help="every ExperimentSpec field with its default and meaning")
    fields.set_defaults(func=command_fields)
    return parser


def add_working_folder_to_path() -> None:
    """Let `env_id: my_envs.reach:ReachTarget-v0` import my_envs from the folder the command runs in.

    `python -m SoftActorCritic` puts that folder on sys.path, the `sac` console script does not: the
    same for both (appended, so a module there never shadows an installed one). Ray trials get it
    through their PYTHONPATH (sweeps.worker_environment).
    """
    folder = os.getcwd()
    if folder not in sys.path and "" not in sys.path:
        sys.path.append(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 done, 1 environment fault or divergence, 2 bad input, 130 interrupted."""
    args = build_parser().parse_args(argv)
    # Quiet whatever the caller's TF_CPP_MIN_LOG_LEVEL: at 2, TensorFlow still prints ERROR-level notices
    # that are not errors (e.g. oneDNN's DT_INT32 fallback on AVX-512 CPUs). --verbose shows everything.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if args.verbose else "3"
    add_working_folder_to_path()
    try:
        return run_command(lambda: args.func(args))
    except BrokenPipeError:  # e.g. `sac list | head`: the reader left; say nothing more (Python docs' recipe)
        if sys.stdout is sys.__stdout__:  # the process's own stdout, never a caller's redirection
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
