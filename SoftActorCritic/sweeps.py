"""Training planned runs on a backend: one after another in this process (local) or as Ray Tune trials
(SoftActorCritic.ray_backend); resuming a run or a sweep folder.

A sweep folder (`train --run-dir`) holds one folder per run, `sweep.yaml` (the planned runs, for
`--resume`) and `summary.csv` (one row per grid point, see sweep_summary.py). An interrupted sweep
resumes without rerunning its finished runs; the others continue from their own checkpoints.
"""
from __future__ import annotations

import contextlib
import datetime
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec, expand_grid, load_raw_spec, with_current_names
from SoftActorCritic import ray_backend
from SoftActorCritic.runs import (
    check_environments,
    clear_unusable,
    latest_checkpoint_state,
    refuse_fewer_epochs,
    resumable_state,
    resume_changes,
    resume_spec,
    run_status,
    train_one,
)
from SoftActorCritic.sweep_summary import MANIFEST, report_summary


def default_sweep_dir(spec_path: Path | None, overrides: Sequence[str], reruns: int) -> Path | None:
    """runs/<name>/sweep-<date-time> when the spec and --reruns make more than one run, else None."""
    raw = load_raw_spec(spec_path, overrides)
    if len(expand_grid(raw)) * reruns <= 1:
        return None
    return Path("runs") / raw["name"] / f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def is_sweep_folder(folder: Path) -> bool:
    """True for a folder written by a sweep (it holds sweep.yaml)."""
    return (Path(folder) / MANIFEST).is_file()


def write_manifest(sweep_dir: Path, runs: Sequence[tuple[ExperimentSpec, Path]], backend: str) -> None:
    """sweep.yaml: every planned run (folder relative to the sweep folder, resolved spec), for --resume."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"backend": backend, "command": " ".join(sys.argv),
                "runs": [{"folder": str(Path(run_dir).resolve().relative_to(sweep_dir.resolve())),
                          "spec": spec.to_dict()} for spec, run_dir in runs]}
    write_text_atomically(sweep_dir / MANIFEST, yaml.safe_dump(manifest, sort_keys=False))


def read_manifest(sweep_dir: Path) -> list[tuple[ExperimentSpec, Path]]:
    """The planned runs of a sweep folder, validated again."""
    try:
        manifest = yaml.safe_load((sweep_dir / MANIFEST).read_text())
        return [(ExperimentSpec(**with_current_names(entry["spec"], str(sweep_dir / MANIFEST))),
                 sweep_dir / entry["folder"]) for entry in manifest["runs"]]
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise UserInputError(f"{sweep_dir / MANIFEST} is not a sweep manifest ({error})") from None


def extend_sweep(sweep_dir: Path, runs: list[tuple[ExperimentSpec, Path]],
                 max_epoch: Any) -> list[tuple[ExperimentSpec, Path]]:
    """The sweep's runs with a new max_epoch, written to sweep.yaml and to each started run's spec.yaml (what
    `train --resume --set max_epoch=N` does to one run); refused before any write when a run has done more."""
    extended = [(spec.replace(max_epoch=max_epoch), run_dir) for spec, run_dir in runs]
    for spec, run_dir in extended:
        state = resumable_state(run_dir)
        refuse_fewer_epochs(spec, run_dir, 0 if state is None else state["epoch"])
    manifest = yaml.safe_load((sweep_dir / MANIFEST).read_text())
    for entry, (spec, run_dir) in zip(manifest["runs"], extended, strict=True):
        entry["spec"] = spec.to_dict()
        if (run_dir / "spec.yaml").is_file():
            spec.to_yaml(run_dir / "spec.yaml")
    write_text_atomically(sweep_dir / MANIFEST, yaml.safe_dump(manifest, sort_keys=False))
    return extended


def resume_sweep(sweep_dir: Path, backend: str, make_view: Callable[[], Any], ray_address: str | None = None,
                 max_concurrent: int | None = None, overrides: Sequence[str] = ()) -> None:
    """Continue an interrupted sweep: finished runs are skipped, the others continue from their checkpoints;
    with --set max_epoch=N every run is extended to N epochs first.

    make_view() (which loads TensorFlow) is called only when a run is left to train locally."""
    runs = read_manifest(sweep_dir)
    changes = resume_changes(overrides)
    if changes:
        runs = extend_sweep(sweep_dir, runs, changes["max_epoch"])
    todo = [(spec, run_dir) for spec, run_dir in runs if run_status(spec, run_dir) != "finished"]
    print(f"resuming sweep {sweep_dir}: {len(runs) - len(todo)} of {len(runs)} runs finished earlier, "
          f"{len(todo)} to run", flush=True)
    check_environments([spec for spec, _ in todo])
    if todo and backend == "ray":
        ray_backend.run_on_ray(todo, sweep_dir, ray_address, max_concurrent)
    elif todo:
        view = make_view()
        for spec, run_dir in todo:
            resume = run_status(spec, run_dir) == "resume"
            clear_unusable(run_dir)
            train_one(spec, run_dir, resume=resume, view=view)
    report_summary(runs, sweep_dir)


def train_runs(runs: Sequence[tuple[ExperimentSpec, Path]], sweep_dir: Path | None, backend: str,
               make_view: Callable[[], Any], ray_address: str | None = None, max_concurrent: int | None = None) -> None:
    """Train planned runs on a backend: 'local' one after another in this process, 'ray' as Tune trials; a sweep
    folder gets sweep.yaml first and summary.csv last. Ray starts before anything is written: when it cannot,
    the command exits 2 and leaves nothing on disk."""
    check_environments([spec for spec, _ in runs])
    on_ray = backend == "ray"
    with ray_backend.ray_session(ray_address) if on_ray else contextlib.nullcontext():
        if sweep_dir is not None:
            write_manifest(sweep_dir, runs, backend)
        if on_ray:
            ray_backend.run_on_ray(runs, sweep_dir, ray_address, max_concurrent)
        else:
            view = make_view()
            for spec, run_dir in runs:
                train_one(spec, run_dir, resume=False, view=view)
    report_summary(runs, sweep_dir)


def resume(run_dir: Path, overrides: Sequence[str], backend: str, make_view: Callable[[], Any],
           ray_address: str | None = None, max_concurrent: int | None = None) -> None:
    """Continue a run or a sweep folder's unfinished runs (or extend them: max_epoch=N in overrides)."""
    if is_sweep_folder(run_dir):
        resume_sweep(run_dir, backend, make_view, ray_address, max_concurrent, overrides)
        return
    if not (run_dir / "spec.yaml").is_file():
        raise UserInputError(f"run folder {str(run_dir)!r} holds no spec.yaml to resume")
    spec = resume_spec(run_dir, overrides)
    state = latest_checkpoint_state(run_dir)
    if state is None:
        raise UserInputError(f"run folder {str(run_dir)!r} holds no checkpoint to resume from")
    refuse_fewer_epochs(spec, run_dir, state["epoch"])
    if spec.max_epoch == state["epoch"]:
        print(f"{run_dir} has finished its {spec.max_epoch} epochs; nothing to do "
              f"(extend it with --set max_epoch=N, N > {spec.max_epoch})")
        return
    check_environments([spec])
    spec.to_yaml(run_dir / "spec.yaml")  # the new max_epoch, if any
    if backend == "ray":
        ray_backend.run_on_ray([(spec, run_dir)], None, ray_address, max_concurrent)
    else:
        train_one(spec, run_dir, resume=True, view=make_view())
    report_summary([(spec, run_dir)], None)
