"""`tune`: hyperparameter search on Ray Tune, Optuna's sampler proposing, ASHA stopping poor trials early.

The searched fields and their distributions are search_space.py's. Each trial is one run (the run
library's `train_one`, the same run folder as `train`) reporting its per-epoch eval return; the search
ends by writing the best configuration as a spec file ready for `train`.
"""
from __future__ import annotations

import datetime
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from blocAndTools.errors import UserInputError, stop_on_signals
from blocAndTools.experiment_spec import ExperimentSpec
from SoftActorCritic import ray_backend, sweep_summary
from SoftActorCritic.runs import check_environments
from SoftActorCritic.search_space import build_search, candidates, tune_space
from SoftActorCritic.sweep_progress import make_progress_callback

METRIC = "eval_return_mean"
BEST_SPEC = "best_spec.yaml"


def run_search(spec_path: Path | None, overrides: Sequence[str], searches: Sequence[str], samples: int, scheduler: str,
               run_dir: Path | None, ray_address: str | None, max_concurrent: int | None) -> None:
    """Search the space of the spec (with --set overrides and --search distributions) with `samples` trials;
    write summary.csv and best_spec.yaml in the search folder and print the command that trains the best."""
    if samples < 1:
        raise UserInputError(f"--samples {samples}: must be >= 1")
    raw, space = build_search(spec_path, list(overrides), list(searches))
    base_spec = ExperimentSpec(**dict(raw, **{key: candidates(*dist)[0] for key, dist in space.items()}))
    check_environments([base_spec])
    sweep_dir = run_dir if run_dir is not None else \
        Path("runs") / raw["name"] / f"tune-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise UserInputError(f"search folder {str(sweep_dir)!r} is not empty: choose another --run-dir")
    ray_backend.check_backend_options("ray", ray_address, max_concurrent)
    ray_backend.set_ray_environment(ray_address)  # before Ray's first import: it reads some variables then
    try:  # Ray and Optuna: loaded by this command only
        import optuna
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise UserInputError("tune needs Optuna: python -m pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory ..."

    stop_flag = sweep_dir.resolve() / ray_backend.STOP_FLAG
    resume_hint = "the finished trials are in the search folder"
    with ray_backend.ray_session(ray_address) as ray:
        sweep_dir.mkdir(parents=True, exist_ok=True)  # once Ray runs: a failed start leaves nothing
        from ray import tune
        concurrent, cpus = ray_backend.plan_resources(ray, samples, max_concurrent)
        print(f"Ray: {int(ray.cluster_resources().get('CPU', 0))} CPUs, {samples} trials, {concurrent} at a "
              f"time, {cpus} CPU{'s' if cpus > 1 else ''} each; searching {', '.join(space)}", flush=True)
        param_space = {"cpus": cpus, "sweep_dir": str(sweep_dir.resolve()), "base": raw,
                       "choices": {field: arguments[0] for field, (name, arguments) in space.items()
                                   if name == "choice"},
                       "search": tune_space(tune, space)}
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=base_spec.max_epoch, grace_period=1,
                                  reduction_factor=2) if scheduler == "asha" else None
        tune_config = {"metric": METRIC, "mode": "max", "num_samples": samples, "scheduler": scheduler,
                       "search_alg": OptunaSearch(seed=base_spec.seed)}
        with stop_on_signals(ray_backend.stop_flag_writer(stop_flag, resume_hint)):
            results = ray_backend.run_tuner(tune, ray_backend.sweep_trial, param_space, sweep_dir, concurrent, cpus,
                                            make_progress_callback(tune, ray_backend.MAX_FAILURES), tune_config)
    run_dirs = sorted(path.parent for path in sweep_dir.glob("*/spec.yaml"))
    table = sweep_summary.write_summary(sweep_dir, run_dirs)
    if len(table):
        sweep_summary.print_summary(table, f"search summary ({sweep_dir / sweep_summary.SUMMARY})")
    best = best_run(run_dirs, base_spec.max_epoch)
    if best is not None:
        write_best_spec(best, sweep_dir / BEST_SPEC, raw["name"])
        print(f"best trial: {best.name} ({', '.join(f'{key}={_value(best, key)}' for key in space)})\n"
              f"best configuration written to {sweep_dir / BEST_SPEC}; train it with:\n"
              f"  sac train --spec {sweep_dir / BEST_SPEC} --reruns 3", flush=True)
    ray_backend.finish(stop_flag, results, run_dirs, resume_hint)
    if best is None:
        raise UserInputError("no trial finished an epoch: nothing to choose from")


def _value(run_dir: Path, key: str) -> Any:
    return sweep_summary.read_spec_fields(run_dir).get(key)


def best_run(run_dirs: list[Path], max_epoch: int) -> Path | None:
    """The trial with the highest final eval return among those that ran every epoch (ASHA stops the
    others early), or among all of them when none did."""
    scored = []
    for run_dir in run_dirs:
        run = sweep_summary.read_run(run_dir)
        if run is None:
            continue
        evals = run[1][METRIC].dropna()
        if len(evals):
            scored.append((len(run[1]) >= max_epoch, float(evals.iloc[-1]), run_dir))
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], item[1] if math.isfinite(item[1]) else -math.inf))[2]


def write_best_spec(run_dir: Path, out: Path, name: str) -> None:
    """The best trial's resolved spec under the experiment's name, ready for `train --spec`."""
    spec = ExperimentSpec.from_yaml(run_dir / "spec.yaml")
    spec.replace(name=f"{name}-best", description=f"best of the search in {out.parent} ({run_dir.name})"
                 ).to_yaml(out)
