"""The experiment runner CLI: `python -m SoftActorCritic {train,eval,play,plot,list,fields}`.

Bad input (spec, files, environment, run folder) prints one line and exits with status 2
before anything is written.
"""
from __future__ import annotations

import argparse
import datetime
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # for type hints only: each command imports what it uses when it runs
    from blocAndTools.experiment_spec import ExperimentSpec
    from blocAndTools.run_logging import ConsoleView

REPO_ROOT = Path(__file__).resolve().parent.parent
EXPERIMENTS_DIR = REPO_ROOT / "experiments"
PLAY_SEED_OFFSET = 20_000  # play episodes use seed + this: unseen by training and by the epochs' evaluations


def _now() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def plan_runs(args: argparse.Namespace) -> list[tuple[ExperimentSpec, Path]]:
    """Expand the grid and the reruns into (spec, run folder) pairs; validate everything first."""
    from blocAndTools.experiment_spec import expand_grid, load_raw_spec
    from blocAndTools.errors import UserInputError

    if args.reruns < 1:
        raise UserInputError(f"--reruns {args.reruns}: must be >= 1")
    specs = expand_grid(load_raw_spec(args.spec, args.set))
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
    from blocAndTools.gym_playground import GymPlayground

    seen = set()
    for spec in specs:
        key = (spec.env_id, repr(sorted(spec.env_kwargs.items())), spec.max_trj_steps)
        if key not in seen:
            seen.add(key)
            GymPlayground(spec.env_id, spec.env_kwargs, seed=spec.seed, max_trj_steps=spec.max_trj_steps).close()


def request_stop_on_signals(agent) -> None:
    """SIGINT (Ctrl-C) and SIGTERM ask the agent to checkpoint and stop at its next step; a second Ctrl-C kills."""
    import threading

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
    from blocAndTools.gym_playground import EnvironmentFault
    from blocAndTools.run_logging import ProgressFiles
    from SoftActorCritic.agent import SoftActorCriticAgent, TrainingInterrupted

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
        except (TrainingInterrupted, EnvironmentFault) as error:
            raise type(error)(f"{error}; checkpoint saved at env step {agent.env_steps}, continue with: "
                              f"python -m SoftActorCritic train --resume --run-dir {run_dir}") from error
        finally:
            files.close()
    finally:
        agent.close()


def command_train(args: argparse.Namespace) -> None:
    from blocAndTools.errors import UserInputError
    from blocAndTools.run_logging import ConsoleView
    from SoftActorCritic.agent import load_run_spec

    from SoftActorCritic import sweeps

    view = ConsoleView()
    sweeps.check_backend_options(args)
    if args.resume:
        if args.run_dir is None:
            raise UserInputError("--resume needs --run-dir: the folder of the run to continue")
        run_dir = Path(args.run_dir)
        if sweeps.is_sweep_folder(run_dir):
            sweeps.resume_sweep(run_dir, args.backend, view, args.ray_address, args.max_concurrent)
            return
        if not (run_dir / "spec.yaml").is_file():
            raise UserInputError(f"run folder {str(run_dir)!r} holds no spec.yaml to resume")
        spec = load_run_spec(run_dir)
        check_environments([spec])
        if args.backend == "ray":
            sweeps.run_on_ray([(spec, run_dir)], None, args.ray_address, args.max_concurrent)
        else:
            train_one(spec, run_dir, resume=True, view=view)
        sweeps.report_summary([(spec, run_dir)], None)
        return
    if args.spec is None:
        raise UserInputError("train needs --spec FILE (see `python -m SoftActorCritic list`)")
    if args.run_dir is None:  # a grid or reruns: one sweep folder for the runs and their summary
        args.run_dir = sweeps.default_sweep_dir(args.spec, args.set, max(args.reruns, 1))
    runs = plan_runs(args)
    check_environments([spec for spec, _ in runs])
    sweep_dir = Path(args.run_dir) if len(runs) > 1 else None
    if sweep_dir is not None:
        sweeps.write_manifest(sweep_dir, runs, args.backend)
    if args.backend == "ray":
        sweeps.run_on_ray(runs, sweep_dir, args.ray_address, args.max_concurrent)
    else:
        for spec, run_dir in runs:
            train_one(spec, run_dir, resume=False, view=view)
    sweeps.report_summary(runs, sweep_dir)


def _agent_from_run(run_dir: Path, best: bool = False, render_mode: str | None = None):
    """Rebuild the agent of a finished or running run from its spec and latest checkpoint (or best policy)."""
    import tensorflow as tf
    from blocAndTools.checkpointing import restore_checkpoint
    from blocAndTools.errors import UserInputError
    from blocAndTools.gym_playground import GymPlayground
    from SoftActorCritic.agent import SoftActorCriticAgent, load_run_spec

    run_dir = Path(run_dir)
    if not (run_dir / "spec.yaml").is_file():
        raise UserInputError(f"{str(run_dir)!r} is not a run folder (no spec.yaml)")
    agent = SoftActorCriticAgent(load_run_spec(run_dir), run_dir)
    if best:
        path = run_dir / "best_policy" / "phi"
        if not Path(str(path) + ".index").exists():
            raise UserInputError(f"{str(run_dir)!r} has no best policy (the goal was never reached)")
        restore_checkpoint(tf.train.Checkpoint(phi=agent.brain.phi), str(path))
    else:
        agent.checkpointer.restore_trackables()  # the networks; the replay buffer is not needed to act
    agent.brain.actor_weights_changed()
    if render_mode is not None:
        spec = agent.spec
        agent.eval_playground.close()
        agent.eval_playground = GymPlayground(spec.env_id, spec.env_kwargs, seed=spec.seed + PLAY_SEED_OFFSET,
                                              max_trj_steps=spec.max_trj_steps, render_mode=render_mode)
    return agent


def command_eval(args: argparse.Namespace) -> None:
    import numpy as np

    agent = _agent_from_run(args.run_dir, best=args.best)
    returns = agent.evaluate(args.episodes)
    print(f"{agent.spec.env_id}: deterministic return over {len(returns)} episodes: "
          f"mean {np.mean(returns):.1f}, std {np.std(returns):.1f}, min {np.min(returns):.1f}, "
          f"max {np.max(returns):.1f}")
    agent.close()


def command_play(args: argparse.Namespace) -> int:
    """Watch the policy in a window, or with --record write mp4 videos from a TensorFlow-free child process.

    MuJoCo's EGL rendering segfaults in a process with TensorFlow loaded, so the recording
    child (SoftActorCritic.record_video) acts with a NumPy copy of phi exported here.
    """
    from blocAndTools.errors import UserInputError

    if not args.record:
        if not os.environ.get("DISPLAY"):
            raise UserInputError("no display to play on: use --record to write a video instead")
        agent = _agent_from_run(args.run_dir, best=args.best, render_mode="human")
        print("returns:", [round(r, 1) for r in agent.evaluate(args.episodes)])
        agent.close()
        return 0
    from blocAndTools.gym_playground import EnvironmentFault
    from SoftActorCritic.networks import save_actor_weights

    agent = _agent_from_run(args.run_dir, best=args.best)
    video_dir = Path(args.run_dir) / "videos"
    weights = video_dir / "phi_weights.npz"
    save_actor_weights(agent.brain.phi, weights)
    seed = agent.spec.seed + PLAY_SEED_OFFSET
    agent.close()
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    child = subprocess.run([sys.executable, "-m", "SoftActorCritic.record_video", "--spec",
                            str(Path(args.run_dir) / "spec.yaml"), "--weights", str(weights), "--episodes",
                            str(args.episodes), "--out-dir", str(video_dir), "--seed", str(seed)],
                           env=dict(os.environ, PYTHONPATH=python_path), check=False)
    if child.returncode < 0:
        raise EnvironmentFault(f"the recording process (SoftActorCritic.record_video) died of signal "
                               f"{-child.returncode}")
    return child.returncode  # its errors were already printed on one line by the child


def command_tune(args: argparse.Namespace) -> None:
    from SoftActorCritic.search import run_search

    run_search(args)


def command_plot(args: argparse.Namespace) -> None:
    from SoftActorCritic.plotting import plot_learning_curves

    out = plot_learning_curves([Path(p) for p in args.run_dirs], Path(args.out), args.metric or ["eval_return_mean"])
    print(f"learning curves written to {out}")


def command_list(args: argparse.Namespace) -> None:
    import yaml

    for path in sorted(Path(args.dir).rglob("*.yaml")):
        try:
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            description = "(not valid YAML)"
        print(f"{str(path.relative_to(args.dir)):45s} {description}")


def command_fields(args: argparse.Namespace) -> None:
    import dataclasses

    from blocAndTools.experiment_spec import ExperimentSpec, field_docs

    docs = field_docs()
    for spec_field in dataclasses.fields(ExperimentSpec):
        default = spec_field.default if spec_field.default is not dataclasses.MISSING else spec_field.default_factory()
        print(f"{spec_field.name:30s} {str(default):18s} {docs.get(spec_field.name, '')}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m SoftActorCritic",
                                     description="Soft Actor-Critic (TensorFlow 2) experiment runner.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train from a spec file (a grid of specs, with reruns)")
    train.add_argument("--spec", help="ExperimentSpec YAML file, e.g. experiments/pendulum.yaml")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field (repeatable); a list value makes a grid search")
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
    search.add_argument("--spec", required=True, help="ExperimentSpec YAML file; a field written as a "
                                                      "distribution, e.g. 'loguniform(1e-4, 1e-2)', is searched")
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

    for name, helptext, func in (("eval", "evaluate a run's policy with tanh(mu)", command_eval),
                                 ("play", "watch a run's policy, or record videos", command_play)):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--run-dir", required=True, help="the run folder")
        sub.add_argument("--episodes", type=int, default=10 if name == "eval" else 1)
        sub.add_argument("--best", action="store_true", help="use the best policy instead of the last checkpoint")
        if name == "play":
            sub.add_argument("--record", action="store_true", help="write mp4 videos to <run-dir>/videos/")
        sub.set_defaults(func=func)

    plot = commands.add_parser("plot", help="learning curves (eval return vs env steps) of one or more runs")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders, or folders of runs (reruns are averaged)")
    plot.add_argument("--out", default="learning_curves.png", help="image file to write")
    plot.add_argument("--metric", action="append", metavar="COLUMN",
                      help="progress.csv column to draw, one panel each (repeatable; default eval_return_mean), "
                           "e.g. q1_mean for overestimation")
    plot.set_defaults(func=command_plot)

    listing = commands.add_parser("list", help="the experiment files, with a one-line description each")
    listing.add_argument("--dir", default=str(EXPERIMENTS_DIR), help="folder of spec files")
    listing.set_defaults(func=command_list)

    fields = commands.add_parser("fields", help="every ExperimentSpec field with its default and meaning")
    fields.set_defaults(func=command_fields)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 done, 1 environment fault or divergence, 2 bad input, 130 interrupted."""
    args = build_parser().parse_args(argv)
    from blocAndTools.errors import UserInputError
    from blocAndTools.gym_playground import EnvironmentFault
    from SoftActorCritic.agent import TrainingDiverged, TrainingInterrupted

    try:
        status = args.func(args)  # None, or the exit status of a child process
    except UserInputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingInterrupted as error:
        print(f"interrupted: {error}", file=sys.stderr)
        return 130
    except (EnvironmentFault, TrainingDiverged) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return status or 0
