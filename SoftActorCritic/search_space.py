"""The search space of `tune`: a searched field is written as a distribution, on the command line
(`--search "actor_learning_rate=loguniform(1e-4, 1e-2)"`) or as the field's value in a spec file
(`actor_learning_rate: loguniform(1e-4, 1e-2)`):

    uniform(a, b)       a float in [a, b]
    loguniform(a, b)    a float whose log is uniform in [log a, log b] (a > 0)
    randint(a, b)       an integer in [a, b) (b excluded, as Python's range)
    choice([v1, ...])   one of the values (any YAML values: numbers, names, layer lists)

Arguments are parsed with `ast.literal_eval`, never `eval`; every value a distribution can give is
checked against the spec before any trial runs.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import (
    FIELD_NAMES,
    RENAMED_FIELDS,
    ExperimentSpec,
    closest_field_hint,
    is_grid_value,
    is_text_field,
    load_raw_spec,
)

DISTRIBUTIONS = {"uniform": "uniform(a, b)", "loguniform": "loguniform(a, b)", "randint": "randint(a, b)",
                 "choice": "choice([v1, v2, ...])"}
_CALL = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*\((.*)\)\s*$", re.DOTALL)


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


def build_search(spec_path: Path | None, overrides: list[str], searches: list[str]) -> tuple[dict, dict]:
    """(base raw spec without the searched fields, {field: (distribution, arguments)}), all validated."""
    raw = load_raw_spec(spec_path, overrides)
    space = {}
    for key, value in list(raw.items()):
        if looks_like_distribution(value) or (isinstance(value, str) and _CALL.match(value) and not is_text_field(key)):
            space[key] = parse_distribution(key, value)  # a spec file's distribution (or a misspelled one)
            del raw[key]
    for text in searches:
        field, sep, distribution = text.partition("=")
        field = RENAMED_FIELDS.get(field.strip(), field.strip())  # an old field name still searches its field
        if not sep or not field:
            raise UserInputError(f"--search {text!r}: expected FIELD=DISTRIBUTION, e.g. "
                                 f"\"actor_learning_rate=loguniform(1e-4, 1e-2)\"")
        if field not in FIELD_NAMES:
            raise UserInputError(f"--search {text!r}: unknown spec field {field!r}{closest_field_hint(field)}")
        space[field] = parse_distribution(field, distribution)
        raw.pop(field, None)
    if not space:
        raise UserInputError("tune needs at least one --search FIELD=DISTRIBUTION (or a distribution in the spec)")
    for field in ("name", "seed"):
        if field in space:
            raise UserInputError(f"search on {field!r}: not a hyperparameter (use train --reruns for seeds)")
    grid = [key for key, value in raw.items() if is_grid_value(key, value)]
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
    base = config["base"]
    return ExperimentSpec(**dict(base, **sampled_values(config), name=f"{base['name']}-{trial_name}"))
