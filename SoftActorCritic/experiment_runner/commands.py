"""One short function per command: check the arguments, call the library, print.

Only `train`, `export` and `tune` load TensorFlow or Ray, after every input check: `--help`, `list`,
`fields`, `eval`, `play`, `plot`, `compare` and every input error answer without them.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from blocAndTools.errors import EnvironmentFault, UserInputError
from blocAndTools.experiment_spec import ExperimentSpec, field_defaults, field_docs, yaml_text
from blocAndTools.gym_playground import GymPlayground
from blocAndTools.seeding import episode_seeds
from blocAndTools.tf_threads import import_tensorflow_quietly
from SoftActorCritic import ray_backend, sweeps
from SoftActorCritic.numpy_policy import Policy, load_policy
from SoftActorCritic.runs import experiments_dir, plan_runs, resolve_spec

if TYPE_CHECKING:  # type hints only: run_logging imports TensorFlow
    from blocAndTools.run_logging import ConsoleView


def import_training() -> ConsoleView:
    """Load TensorFlow quietly (after the input checks) and return the console view of a training run."""
    import_tensorflow_quietly()
    from blocAndTools.run_logging import ConsoleView  # TensorFlow: only once a run really trains
    from SoftActorCritic.metrics import COLUMNS

    return ConsoleView(COLUMNS)


def _spec_and_overrides(args: argparse.Namespace) -> tuple[Path | None, list[str]]:
    """(--spec's file or None for the general default, the overrides: --env as env_id first, then --set)."""
    if args.spec is None and args.env is None:
        raise UserInputError(f"{args.command} needs --env ENV_ID (the general default on that environment) or "
                             f"--spec FILE (a spec file, or a shipped experiment: see `sac list`)")
    env = [] if args.env is None else [f"env_id={args.env}"]
    return (None if args.spec is None else resolve_spec(args.spec)), env + list(args.set)


def command_train(args: argparse.Namespace) -> None:
    """Train a spec (a grid of specs, with reruns), or resume a run or a sweep folder."""
    ray_backend.check_backend_options(args.backend, args.ray_address, args.max_concurrent)
    backend = dict(backend=args.backend, make_view=import_training, ray_address=args.ray_address,
                   max_concurrent=args.max_concurrent)
    if args.resume:
        if args.spec is not None or args.env is not None:
            raise UserInputError("--resume continues the run in --run-dir with its own spec: no --spec or --env")
        if args.run_dir is None:
            raise UserInputError("--resume needs --run-dir: the folder of the run to continue")
        sweeps.resume(Path(args.run_dir), args.set, **backend)
        return
    spec_path, overrides = _spec_and_overrides(args)
    run_dir = args.run_dir or sweeps.default_sweep_dir(spec_path, overrides, max(args.reruns, 1))
    runs = plan_runs(spec_path, overrides, args.reruns, None if run_dir is None else Path(run_dir))
    sweeps.train_runs(runs, Path(run_dir) if len(runs) > 1 else None, **backend)


def _run_spec(run_dir: Path) -> ExperimentSpec:
    """The spec of a run folder, or of the run a policy file belongs to (<run>/checkpoints/policy-N.npz,
    <run>/best_policy/policy.npz); a bare policy file gets the default seed and time limit."""
    folder = Path(run_dir) if Path(run_dir).is_dir() else Path(run_dir).parent.parent
    return ExperimentSpec.from_yaml(folder / "spec.yaml") if (folder / "spec.yaml").is_file() else ExperimentSpec()


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
    """Deterministic returns of a run's policy on the run's play episodes (unseen by training and its evaluations),
    or with --episodes-of evaluation on the start states of its evaluations (progress.csv's eval_return_mean)."""
    episodes, policy, spec = _episodes(args), load_policy(args.run_dir, args.best), _run_spec(args.run_dir)
    with _playground(policy, spec) as playground:
        returns = [playground.run_episode(policy.actor, seed)
                   for seed in episode_seeds(spec.seed, episodes, args.episodes_of)]
    print(f"evaluated {_describe(policy)} on its run's {args.episodes_of} episodes")
    print(f"{policy.env_id}: deterministic return over {len(returns)} episodes: mean {np.mean(returns):.1f}, "
          f"std {np.std(returns):.1f}, min {np.min(returns):.1f}, max {np.max(returns):.1f}")
    print("returns:", [round(r, 1) for r in returns])


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
    from SoftActorCritic.export import export_saved_model  # TensorFlow: after the input checks

    export_saved_model(policy, out)
    print(f"exported {_describe(policy)} to {out}: serving_default(obs: float32 [None, {policy.obs_dim}]) -> "
          f"action: float32 [None, {policy.act_dim}] in the bounds of {policy.env_id}")


def command_tune(args: argparse.Namespace) -> None:
    spec_path, overrides = _spec_and_overrides(args)
    from SoftActorCritic.search import run_search  # Ray Tune and Optuna: this command only, after the checks

    run_search(spec_path, overrides, args.search, args.samples, args.scheduler,
               None if args.run_dir is None else Path(args.run_dir), args.ray_address, args.max_concurrent)


def command_plot(args: argparse.Namespace) -> None:
    from SoftActorCritic.plotting import plot_learning_curves  # matplotlib and scipy: this command only

    folders = [Path(p) for p in args.run_dirs]
    if args.out is not None:
        out = Path(args.out)
    else:  # next to the runs: in the one folder given, or in the folders' common parent
        out = (folders[0] if len(folders) == 1 else Path(os.path.commonpath([p.resolve() for p in folders])))
        out = out / "learning_curves.png"
    out = plot_learning_curves(folders, out, args.metric or ["eval_return_mean"], args.band)
    print(f"learning curves written to {out}")


def command_compare(args: argparse.Namespace) -> None:
    from SoftActorCritic.compare import compare_runs, plot_profiles  # matplotlib and scipy: this command only

    comparison = compare_runs(Path(args.a), Path(args.b), args.metric)
    print(comparison.report())
    out = plot_profiles(comparison, None if args.out is None else Path(args.out))
    print(f"performance profiles written to {out}")


def command_list(args: argparse.Namespace) -> None:
    folder = Path(args.dir) if args.dir is not None else experiments_dir()
    if args.dir is None:
        print(f"{'(default: sac train --env ID)':40s} the general default for any continuous-control task: "
              f"ExperimentSpec's defaults (sac fields)")
    for path in sorted(folder.rglob("*.yaml")):
        try:
            description = (yaml.safe_load(path.read_text()) or {}).get("description", "")
        except yaml.YAMLError:
            description = "(not valid YAML)"
        print(f"{path.relative_to(folder).with_suffix('').as_posix():40s} {description}")


def command_fields(args: argparse.Namespace) -> None:
    docs = field_docs()
    for name, default in field_defaults().items():
        print(f"{name:30s} {yaml_text(default):18s} {docs.get(name, '')}")
