"""`tune`: hyperparameter search on Ray Tune, Optuna's sampler proposing, ASHA stopping poor trials early.

A searched field is written as a distribution, on the command line
(`--search "learning_rate=loguniform(1e-4, 1e-2)"`) or as the field's value in a spec file
(`learning_rate: loguniform(1e-4, 1e-2)`):

    uniform(a, b)       a float in [a, b]
    loguniform(a, b)    a float whose log is uniform in [log a, log b] (a > 0)
    randint(a, b)       an integer in [a, b) (b excluded, as Python's range)
    choice([v1, ...])   one of the values (any YAML values: numbers, names, layer lists)

Each trial is one run (the runner's `train_one`, the same run folder as `train`) reporting its
per-epoch eval return; the search ends by writing the best configuration as a spec file ready for
`train`. Arguments are parsed with `ast.literal_eval`, never `eval`.
"""
from __future__ import annotations

import argparse
import ast
import datetime
import math
import re
from pathlib import Path
from typing import Any, get_args

from blocAndTools.errors import UserInputError

METRIC = "eval_return_mean"
DISTRIBUTIONS = {"uniform": "uniform(a, b)", "loguniform": "loguniform(a, b)", "randint": "randint(a, b)",
                 "choice": "choice([v1, v2, ...])"}
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)
BEST_SPEC = "best_spec.yaml"


def parse_distribution(field: str, text: str) -> tuple[str, tuple]:
    """'loguniform(1e-4, 1e-2)' -> ('loguniform', (0.0001, 0.01)); one line naming the problem otherwise."""
    match = _CALL.match(text)
    if not match:
        raise UserInputError(f"search {field}={text!r}: expected a distribution, one of "
                             f"{', '.join(DISTRIBUTIONS.values())}")
    name, arguments = match.groups()
    if name not in DISTRIBUTIONS:
        raise UserInputError(f"search {field}={text!r}: unknown distribution {name!r} (allowed: "
                             f"{', '.join(DISTRIBUTIONS.values())})")
    try:
        values = ast.literal_eval(f"({arguments},)") if arguments.strip() else ()
    except (ValueError, SyntaxError):
        raise UserInputError(f"search {field}={text!r}: arguments must be literal values, "
                             f"e.g. {DISTRIBUTIONS[name]}") from None
    if name == "choice":
        if len(values) != 1 or not isinstance(values[0], list) or not values[0]:
            raise UserInputError(f"search {field}={text!r}: expected choice([v1, v2, ...]) with at least one value")
        return name, (values[0],)
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values) \
            or not values[0] < values[1]:
        raise UserInputError(f"search {field}={text!r}: expected {DISTRIBUTIONS[name]} with numbers a < b")
    if name == "loguniform" and values[0] <= 0:
        raise UserInputError(f"search {field}={text!r}: loguniform needs 0 < a < b")
    if name == "randint" and not all(isinstance(v, int) for v in values):
        raise UserInputError(f"search {field}={text!r}: randint needs integers")
    return name, tuple(values)


def looks_like_distribution(value: Any) -> bool:
    """True for a spec value written as a distribution call, e.g. 'loguniform(1e-4, 1e-2)'."""
    return isinstance(value, str) and bool(_CALL.match(value)) and value.split("(")[0].strip() in DISTRIBUTIONS


def candidates(name: str, arguments: tuple) -> list[Any]:
    """Values that bound the distribution, to validate the spec with before any trial runs."""
    if name == "choice":
        return list(arguments[0])
    if name == "randint":
        return [arguments[0], arguments[1] - 1]
    return list(arguments)


def build_search(spec_path: str, overrides: list[str], searches: list[str]) -> tuple[dict, dict]:
    """(base raw spec without the searched fields, {field: (distribution, arguments)}), all validated."""
    from blocAndTools.experiment_spec import (
        _FIELD_TYPES,
        FIELD_NAMES,
        ExperimentSpec,
        _is_grid,
        closest_field_hint,
        load_raw_spec,
    )

    raw = load_raw_spec(spec_path, overrides)
    space = {}
    for key, value in list(raw.items()):
        text_field = str in (get_args(_FIELD_TYPES[key]) or (_FIELD_TYPES[key],))
        if looks_like_distribution(value) or (isinstance(value, str) and _CALL.match(value) and not text_field):
            space[key] = parse_distribution(key, value)  # a spec file's distribution (or a misspelled one)
            del raw[key]
    for text in searches:
        field, sep, distribution = text.partition("=")
        field = field.strip()
        if not sep or not field:
            raise UserInputError(f"--search {text!r}: expected FIELD=DISTRIBUTION, e.g. "
                                 f"\"learning_rate=loguniform(1e-4, 1e-2)\"")
        if field not in FIELD_NAMES:
            raise UserInputError(f"--search {text!r}: unknown spec field {field!r}{closest_field_hint(field)}")
        space[field] = parse_distribution(field, distribution)
        raw.pop(field, None)
    if not space:
        raise UserInputError("tune needs at least one --search FIELD=DISTRIBUTION (or a distribution in the spec)")
    for field in ("name", "seed"):
        if field in space:
            raise UserInputError(f"search on {field!r}: not a hyperparameter (use train --reruns for seeds)")
    grid = [key for key, value in raw.items() if _is_grid(key, value)]
    if grid:
        raise UserInputError(f"spec field {grid[0]!r} is a list (a grid for train); tune needs one value or a "
                             f"distribution such as choice([...])")
    for field, (name, arguments) in space.items():
        others = {key: candidates(*dist)[0] for key, dist in space.items() if key != field}
        for value in candidates(name, arguments):
            try:
                ExperimentSpec(**dict(raw, **others, **{field: value}))
            except UserInputError as error:
                raise UserInputError(f"search {field}={name}{arguments}: {error}") from None
    base = ExperimentSpec(**dict(raw, **{key: candidates(*dist)[0] for key, dist in space.items()}))
    if base.max_eval_trj < 1:
        raise UserInputError("spec field 'max_eval_trj' = 0: tune optimises the eval return, it needs >= 1")
    return raw, space


def tune_space(tune, space: dict) -> dict:
    """Tune's search space; a choice is searched as the index of its value (Optuna's categories must be scalars)."""
    domains = {"uniform": tune.uniform, "loguniform": tune.loguniform, "randint": tune.randint}
    return {field: tune.choice(list(range(len(arguments[0])))) if name == "choice" else domains[name](*arguments)
            for field, (name, arguments) in space.items()}


def sampled_values(config: dict) -> dict[str, Any]:
    """The trial's field values (choice indices turned back into their values)."""
    choices = config.get("choices", {})
    return {field: choices[field][value] if field in choices else value
            for field, value in config.get("search", {}).items()}


def trial_spec(config: dict, trial_name: str):
    """The ExperimentSpec of one search trial: the base spec with the trial's sampled values."""
    from blocAndTools.experiment_spec import ExperimentSpec

    base = config["base"]
    return ExperimentSpec(**dict(base, **sampled_values(config), name=f"{base['name']}-{trial_name}"))


def run_search(args: argparse.Namespace) -> None:
    """The `tune` command: search, summary.csv, best_spec.yaml and the command that trains it."""
    from SoftActorCritic import sweep_summary, sweeps
    from SoftActorCritic.experiment_runner import check_environments

    if args.samples < 1:
        raise UserInputError(f"--samples {args.samples}: must be >= 1")
    raw, space = build_search(args.spec, args.set, args.search)
    from blocAndTools.experiment_spec import ExperimentSpec
    base_spec = ExperimentSpec(**dict(raw, **{key: candidates(*dist)[0] for key, dist in space.items()}))
    check_environments([base_spec])
    sweep_dir = Path(args.run_dir) if args.run_dir else \
        Path("runs") / raw["name"] / f"tune-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if sweep_dir.exists() and any(sweep_dir.iterdir()):
        raise UserInputError(f"search folder {str(sweep_dir)!r} is not empty: choose another --run-dir")
    args.backend = "ray"
    sweeps.check_backend_options(args)
    sweeps.set_ray_environment(args.ray_address)  # before Ray's first import: it reads some variables then
    try:
        import optuna
        from ray.tune.schedulers import ASHAScheduler
        from ray.tune.search.optuna import OptunaSearch
    except ImportError:
        raise UserInputError("tune needs Optuna: python -m pip install optuna") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # not "A new study created in memory ..."

    stop_flag = sweep_dir.resolve() / sweeps.STOP_FLAG
    resume_hint = "the finished trials are in the search folder"
    with sweeps.ray_session(args.ray_address) as ray:
        sweep_dir.mkdir(parents=True, exist_ok=True)  # once Ray runs: a failed start leaves nothing
        from ray import tune
        concurrent, cpus = sweeps.plan_resources(ray, args.samples, args.max_concurrent)
        print(f"Ray: {int(ray.cluster_resources().get('CPU', 0))} CPUs, {args.samples} trials, {concurrent} at a "
              f"time, {cpus} CPU{'s' if cpus > 1 else ''} each; searching {', '.join(space)}", flush=True)
        param_space = {"cpus": cpus, "sweep_dir": str(sweep_dir.resolve()), "base": raw,
                       "choices": {field: arguments[0] for field, (name, arguments) in space.items()
                                   if name == "choice"},
                       "search": tune_space(tune, space)}
        scheduler = ASHAScheduler(time_attr="training_iteration", max_t=base_spec.max_epoch, grace_period=1,
                                  reduction_factor=2) if args.scheduler == "asha" else None
        tune_config = {"metric": METRIC, "mode": "max", "num_samples": args.samples, "scheduler": scheduler,
                       "search_alg": OptunaSearch(seed=base_spec.seed)}
        with sweeps.stop_on_signals(stop_flag, resume_hint):
            results = sweeps.run_tuner(tune, sweeps.sweep_trial, param_space, sweep_dir, concurrent, cpus,
                                       sweeps.make_progress_callback(tune), tune_config)
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
    sweeps.finish(stop_flag, results, run_dirs, resume_hint)
    if best is None:
        raise UserInputError("no trial finished an epoch: nothing to choose from")


def _value(run_dir: Path, key: str) -> Any:
    import yaml

    return (yaml.safe_load((run_dir / "spec.yaml").read_text()) or {}).get(key)


def best_run(run_dirs: list[Path], max_epoch: int) -> Path | None:
    """The trial with the highest final eval return among those that ran every epoch (ASHA stops the
    others early), or among all of them when none did."""
    from SoftActorCritic.sweep_summary import read_run

    scored = []
    for run_dir in run_dirs:
        run = read_run(run_dir)
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
    from blocAndTools.experiment_spec import ExperimentSpec

    spec = ExperimentSpec.from_yaml(run_dir / "spec.yaml")
    spec.replace(name=f"{name}-best", description=f"best of the search in {out.parent} ({run_dir.name})"
                 ).to_yaml(out)
