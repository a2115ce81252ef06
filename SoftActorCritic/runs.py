"""The run library: plan runs from a spec, check their environments, train or resume one run in its folder,
and read a run folder's state. The CLI, the sweeps (both backends) and the search all call it.

A run folder holds spec.yaml, progress.csv, tb/, checkpoints/ and best_policy/ (see the docs' "Run folder").
TensorFlow is loaded only by `train_one`, so planning, checking and reading stay fast.
"""
from __future__ import annotations

import datetime
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from blocAndTools.checkpointing import INDEX_FILE, read_latest_state
from blocAndTools.errors import EnvironmentFault, TrainingInterrupted, UserInputError, stop_on_signals
from blocAndTools.experiment_spec import ExperimentSpec, expand_grid, load_raw_spec, parse_override
from blocAndTools.gym_playground import GymPlayground

if TYPE_CHECKING:  # type hints only: run_logging imports TensorFlow
    from blocAndTools.run_logging import ConsoleView

PACKAGE_DIR = Path(__file__).resolve().parent
RunStatus = Literal["finished", "resume", "train"]


def experiments_dir() -> Path:
    """The shipped experiment files: package data once installed, the clone's experiments/ otherwise."""
    for folder in (PACKAGE_DIR / "experiments", PACKAGE_DIR.parent / "experiments"):
        if folder.is_dir():
            return folder
    raise UserInputError("the shipped experiment files are missing from this installation")


def resolve_spec(text: str) -> Path:
    """A spec file's path, or the name of a shipped experiment (`pendulum`, `sac/hopper_clipq`)."""
    path = Path(text)
    if path.is_file():
        return path
    if not path.is_absolute() and path.suffix in ("", ".yaml"):
        shipped = experiments_dir() / path.with_suffix(".yaml")
        if shipped.is_file():
            return shipped
    raise UserInputError(f"--spec {text!r}: no such file, nor a shipped experiment of that name (see `sac list`)")


def plan_runs(spec_path: Path | None, overrides: Sequence[str], reruns: int,
              run_dir: Path | None) -> list[tuple[ExperimentSpec, Path]]:
    """The grid points times `reruns` seeds as (spec, run folder) pairs; every spec validated first.

    One run goes to run_dir (default runs/<name>/<date-time>-seed<N>); several go under run_dir (default
    runs/) as <name>/<date-time>-seed<N>. A folder that already holds a run is refused.
    """
    if reruns < 1:
        raise UserInputError(f"--reruns {reruns}: must be >= 1")
    specs = expand_grid(load_raw_spec(spec_path, overrides))
    now = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
    runs = []
    for spec in specs:
        for rerun in range(reruns):
            seeded = spec.replace(seed=spec.seed + rerun)
            if run_dir is not None and len(specs) * reruns == 1:
                folder = Path(run_dir)
            else:
                folder = Path(run_dir or "runs") / seeded.name / f"{now}-seed{seeded.seed}"
            if folder.exists() and any(folder.iterdir()):
                raise UserInputError(f"run folder {str(folder)!r} already holds a run "
                                     f"(use --resume to continue it, or another --run-dir)")
            runs.append((seeded, folder))
    return runs


def check_environments(specs: Sequence[ExperimentSpec]) -> None:
    """Make each distinct environment once, so a bad id fails before any training starts."""
    seen = set()
    for spec in specs:
        key = (spec.env_id, repr(sorted(spec.env_kwargs.items())), spec.max_trj_steps)
        if key not in seen:
            seen.add(key)
            GymPlayground(spec.env_id, spec.env_kwargs, seed=spec.seed, max_trj_steps=spec.max_trj_steps).close()


def train_one(spec: ExperimentSpec, run_dir: Path, resume: bool, view: ConsoleView) -> None:
    """Train (or resume) one run in run_dir; Ctrl-C / SIGTERM checkpoint it and stop (TrainingInterrupted)."""
    # TensorFlow: loaded here, once a run is really trained
    from blocAndTools.run_logging import ProgressFiles
    from SoftActorCritic.agent import SoftActorCriticAgent
    from SoftActorCritic.metrics import COLUMNS

    agent = SoftActorCriticAgent(spec, run_dir)
    try:
        if resume:
            agent.restore_checkpoint()
            view.print(f"resuming {run_dir} from epoch {agent.epoch} ({agent.env_steps} env steps)")
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            spec.to_yaml(run_dir / "spec.yaml")
            name = "" if spec.name == spec.env_id else f"{spec.name} "  # `train --env ID`: the name is the env's
            view.print(f"training {name}on {agent.playground.describe()}; warm-up {agent.warmup_steps} random "
                       f"steps; run folder {run_dir}")
        view.print(agent.tf_threads)
        files = ProgressFiles(run_dir, COLUMNS, keep_epochs=agent.epoch)
        try:
            with stop_on_signals(lambda signum: setattr(agent, "stop_requested", True)):
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


def resume_changes(overrides: Sequence[str]) -> dict:
    """The --set changes of a resume: a new max_epoch at most (any other would mix two experiments)."""
    changes = dict(parse_override(text) for text in overrides)
    refused = sorted(set(changes) - {"max_epoch"})
    if refused:
        raise UserInputError(f"--set {refused[0]} with --resume: only max_epoch can change when a run continues "
                             f"(another field would mix two experiments in one progress.csv)")
    return changes


def resume_spec(run_dir: Path, overrides: Sequence[str]) -> ExperimentSpec:
    """The run's spec with the one change a resume allows: a new max_epoch."""
    return ExperimentSpec.from_yaml(run_dir / "spec.yaml").replace(**resume_changes(overrides))


def has_checkpoint(run_dir: Path) -> bool:
    """True when the run folder holds a checkpoint `train --resume` can continue from."""
    return (Path(run_dir) / "checkpoints" / INDEX_FILE).is_file() and (Path(run_dir) / "spec.yaml").is_file()


def latest_checkpoint_state(run_dir: Path) -> dict | None:
    """The state (epoch, env steps, ...) of the run's newest complete checkpoint, read without TensorFlow."""
    return read_latest_state(Path(run_dir) / "checkpoints")


def resumable_state(run_dir: Path) -> dict | None:
    """latest_checkpoint_state of a run folder that has_checkpoint, else None (nothing to resume from)."""
    return latest_checkpoint_state(run_dir) if has_checkpoint(run_dir) else None


def refuse_fewer_epochs(spec: ExperimentSpec, run_dir: Path, done: int) -> None:
    """A resume extends a run, never cuts it: a max_epoch below the epochs it has done is one line, exit 2."""
    if spec.max_epoch < done:
        raise UserInputError(f"--set max_epoch={spec.max_epoch}: run {run_dir} has already done {done} epochs")


def run_status(spec: ExperimentSpec, run_dir: Path) -> RunStatus:
    """'finished' (last epoch checkpointed), 'resume' (a checkpoint to continue from) or 'train' (nothing
    worth keeping)."""
    state = resumable_state(run_dir)
    if state is None:
        return "train"
    return "finished" if state["epoch"] >= spec.max_epoch else "resume"


def epochs_done(run_dir: Path) -> int:
    """Rows of the run's progress.csv (0 when there is none)."""
    path = Path(run_dir) / "progress.csv"
    if not path.is_file():
        return 0
    with path.open() as file:
        return max(0, sum(1 for line in file if line.strip()) - 1)


def clear_unusable(run_dir: Path) -> None:
    """Remove a run folder that died before its first checkpoint, so the run starts clean."""
    if Path(run_dir).exists() and not has_checkpoint(run_dir):
        shutil.rmtree(run_dir)
