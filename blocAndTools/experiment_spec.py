"""ExperimentSpec: every hyperparameter of a run, in one typed, documented, validated definition.

A spec file is YAML holding a subset of the fields below; `--set key=value` overrides
them. As in the original project, a list in place of a scalar value means a search:
`expand_grid` turns one raw spec into one spec per grid point. A sweep file may also hold
`grid:`, a list of mappings of fields that change together (one grid axis), e.g. the three
actor gradient estimators {actor_gradient: reinforce, num_actor_samples: 1}, {..., 10},
{actor_gradient: reparametrize}.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import itertools
import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Union, get_args, get_origin, get_type_hints

import yaml

from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.errors import UserInputError

VARIANTS = ("v1", "v2", "crossq")
Q_BACKUPS = ("single", "double", "clipped")
ACTOR_GRADIENTS = ("reparametrize", "reinforce")
ACTOR_LOSSES = ("soft_q", "entropy_only", "none")
# Hidden-layer activations a spec may use; blocAndTools.nn_blocs (TensorFlow) and
# SoftActorCritic.numpy_policy (NumPy) each map exactly these names.
ACTIVATION_NAMES = ("relu", "tanh", "elu", "selu", "gelu", "swish", "leaky_relu")
# min_pool_size 'auto': the random warm-up lasts this many time limits of the environment (ExperimentSpec.warmup_steps)
WARMUP_TIME_LIMITS = 5


@dataclasses.dataclass(frozen=True)
class ExperimentSpec:
    """Hyperparameters of one SAC run. The defaults are the general default (`sac train --env ID`): SAC v1's five
    networks with a learned temperature, meant for any continuous-control task without per-task tuning."""

    # Each field's docstring stays on one line, however long: field_docs() gives it whole to `fields`.
    name: str = "experiment"
    """Experiment name: the run folder is runs/<name>/..."""
    description: str = ""
    """One line saying what the experiment shows (printed by `list`)."""

    # --- environment ---
    env_id: str = "Pendulum-v1"
    """Registered gymnasium id with a Box action space (actions are rescaled to [-1, 1])."""
    env_kwargs: dict = dataclasses.field(default_factory=dict)
    """Keyword arguments for gymnasium.make, e.g. {continuous: true} for LunarLander-v3."""
    seed: int = 0
    """Seed of the run: every random stream (environment, warm-up actions, action noise, replay sampler, update noise, initial weights, evaluation episodes) is drawn from its own child of numpy.random.SeedSequence(seed), see blocAndTools/seeding.py."""  # noqa: E501
    max_trj_steps: int | None = None
    """Time limit of a trajectory in steps (null keeps the environment's own limit)."""

    # --- schedule ---
    max_epoch: int = 100
    """Number of epochs of a run."""
    timestep_per_epoch: int = 1000
    """Environment steps per epoch; an evaluation follows each epoch."""
    gradient_step_interval: int = 1
    """Environment steps between two gradient steps (1: one gradient step per env step)."""
    gradient_steps: int = 1
    """Gradient steps taken every gradient_step_interval env steps, on as many minibatches sampled at once, in one compiled call (SB3's gradient_steps; interval = steps = 64: "train every 64 steps")."""  # noqa: E501
    min_pool_size: int | str = "auto"
    """Transitions collected with uniform random actions before the first gradient step (at least one minibatch); 'auto': WARMUP_TIME_LIMITS (5) times the environment's time limit (Pendulum 1,000, MuJoCo and LunarLander 5,000; 1,000 counted without a limit), at most pool_capacity."""  # noqa: E501
    pool_capacity: int = 1_000_000
    """Replay buffer capacity; the oldest transitions are overwritten once full."""
    batch_size_in_ts: int = 256
    """Minibatch size in transitions."""
    max_eval_trj: int = 10
    """Evaluation episodes with the deterministic policy tanh(mu) after each epoch, from the same start states each time."""  # noqa: E501
    expected_reward_goal: float | None = None
    """Eval return announced as the goal reached (the best policy is kept in any case); null: no goal; dropped when --env or --set env_id moves a spec file to another environment."""  # noqa: E501
    checkpoint_interval: int = 1
    """Epochs between two checkpoints (a checkpoint is also written at the end)."""
    deterministic_ops: bool = True
    """Enable TensorFlow op determinism: the same seed gives the same numbers on the same machine."""

    # --- SAC ---
    variant: str = "v1"
    """v1: V_psi and frozen_V_psi targets (2018a); v2: twin frozen Q targets, no V (2018b); crossq: no V and no frozen networks, batch renormalisation in phi and the Q_theta, each critic sees (s, a) and (s', a') in one training-mode forward pass (CrossQ, Bhatt et al. 2024)."""  # noqa: E501
    discount_factor: float = 0.99
    """gamma: weight of the next state's value in the Bellman target."""
    n_step: int = 1
    """n: the Q target sums k <= n rewards, r_t + gamma r_t+1 + ..., and bootstraps with gamma^k from the k-th next state; k < n when a termination (no bootstrap), an episode's end or the newest transition comes first; 1 is SAC's one-step target."""  # noqa: E501
    actor_learning_rate: float = 3e-4
    """Adam learning rate of the actor phi (learning_rate in older spec files, still read)."""
    critic_learning_rate: float = 1e-3
    """Adam learning rate of V_psi and both Q_theta."""
    alpha: float | str = "auto"
    """Temperature of the entropy bonus, or 'auto' to learn log_alpha (SAC v2)."""
    alpha_learning_rate: float = 3e-4
    """Adam learning rate of log_alpha when alpha is 'auto'."""
    adam_beta1: float = 0.9
    """beta_1 of the Adam optimizers of phi, V_psi and the Q_theta (crossq.yaml: 0.5, sbx's); log_alpha's stays 0.9."""
    target_entropy: float | None = None
    """Entropy target of alpha 'auto' (null: -act_dim)."""
    reward_scaling: float = 1.0
    """eta: rewards are multiplied by eta in the Q target; plays the inverse role of alpha."""
    target_smoothing_coefficient: float = 0.005
    """tau: frozen <- tau * online + (1 - tau) * frozen (1.0 is a hard copy)."""
    target_update_interval: int = 1
    """Gradient steps between two target updates (hard update: tau 1.0 and e.g. 1000)."""
    actor_update_interval: int = 1
    """Gradient steps between two updates of phi and log_alpha, on the steps whose number (from 0) is a multiple of it; the critics are updated at every step (CrossQ's and TD3's policy_delay: 3). v2 and crossq compute the actor's losses on those steps only; the others report the last values."""  # noqa: E501
    q_backup: str = "clipped"
    """single: Q_theta_1 only; double: each Q uses the other's value; clipped: min of both (of the num_critics)."""
    num_critics: int = 2
    """N: Q networks Q_theta_1..N (v2: and their frozen copies), each trained on its own loss; q_backup clipped takes the min over them (single trains one, double two)."""  # noqa: E501
    critic_subset: int | None = None
    """M (REDQ, Chen et al. 2021): the targets take the min over M of the N critics drawn at random at each update, and the actor judges a~ by the mean of all N; null: the min over all N."""  # noqa: E501
    actor_gradient: str = "reparametrize"
    """reparametrize: backpropagate through a = tanh(mu + std * eps); reinforce: score function."""
    num_actor_samples: int = 1
    """Actions sampled per state for the actor loss (REINFORCE-10 uses 10)."""
    actor_loss: str = "soft_q"
    """soft_q: the SAC actor; entropy_only: maximise entropy alone; none: no actor update."""
    action_noise_beta: float = 0.0
    """beta of the acting noise: a = tanh(mu + std * eps_t) with eps_t N(0, 1) and power spectrum 1/f^beta along each episode; 0: white, i.i.d. (SAC's); 1: pink, 2: red, ever slower-varying (colored noise exploration, Eberhard et al. 2023; blocAndTools/action_noise.py). The update and evaluation are unchanged."""  # noqa: E501

    # --- networks ---
    phi_nn_h_layer_topo: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor phi."""
    psi_nn_h_layer_topo: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of V_psi and frozen_V_psi."""
    theta_nn_h_layer_topo: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the Q_theta (Q_theta_1..N)."""
    hidden_activation: str = "relu"
    """Activation of every hidden layer (relu, tanh, elu, selu, gelu, swish, leaky_relu)."""
    critic_layer_norm: bool = False
    """Layer normalisation in every hidden layer of V_psi and the Q_theta (and their frozen copies), before the activation, as in DroQ's critics (Hiraoka et al. 2022): it bounds the features a value target is built from."""  # noqa: E501
    critic_dropout: float = 0.0
    """Dropout rate in every hidden layer of the Q_theta (and their frozen copies), before the layer norm, at every critic evaluation of the update, as in DroQ (Hiraoka et al. 2022); 0: none."""  # noqa: E501

    def __post_init__(self) -> None:
        for spec_field in dataclasses.fields(self):
            value = _coerce(spec_field.name, getattr(self, spec_field.name), _FIELD_TYPES[spec_field.name])
            object.__setattr__(self, spec_field.name, value)
        _check_ranges(self)

    def warmup_steps(self, time_limit: int | None) -> int:
        """min_pool_size, with 'auto' resolved for an environment whose episodes end at time_limit steps (None: no
        limit): a few full-length episodes of random actions, so that the first updates do not fit a handful of
        transitions (HalfCheetah learned far slower after 256 than after 5,000; benchmarks/results/learning/
        NOTES.md, session 11)."""
        if self.min_pool_size != "auto":
            return self.min_pool_size
        return min(max(WARMUP_TIME_LIMITS * (time_limit or 1000), self.batch_size_in_ts), self.pool_capacity)

    @property
    def learns_alpha(self) -> bool:
        """True when the temperature is learned (alpha: auto)."""
        return self.alpha == "auto"

    def replace(self, **changes: Any) -> ExperimentSpec:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain YAML-friendly dict (tuples as lists)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}

    def to_yaml(self, path: str | Path) -> None:
        """Write the resolved spec (loading it back gives an equal spec), atomically: readers never see half a
        file."""
        write_text_atomically(path, yaml.safe_dump(self.to_dict(), sort_keys=False))

    @classmethod
    def from_yaml(cls, path: str | Path, overrides: Iterable[str] = ()) -> ExperimentSpec:
        """Load one spec (no grid) from a YAML file, with `key=value` overrides."""
        points = expand_grid(load_raw_spec(path, overrides))
        if len(points) != 1:
            raise UserInputError(f"{path}: holds a grid of {len(points)} specs where one was expected")
        return points[0]


_FIELD_TYPES = get_type_hints(ExperimentSpec)
FIELD_NAMES = tuple(f.name for f in dataclasses.fields(ExperimentSpec))
_TUPLE_FIELDS = {name for name, hint in _FIELD_TYPES.items() if get_origin(hint) is tuple}
# Fields renamed since spec files and run folders were first written: old name -> current name. A raw spec
# (a spec file, --set, a grid point, an old run folder's spec.yaml) may still use the old name.
RENAMED_FIELDS = {"learning_rate": "actor_learning_rate"}


def is_text_field(name: str) -> bool:
    """True when the field takes text (str in its type hint: env_id, alpha's 'auto', ...); False for any other
    name. A value that looks like a call, e.g. 'loguniform(1e-4, 1e-2)', is a search only in another field."""
    hint = _FIELD_TYPES.get(name)
    return hint is not None and str in (get_args(hint) or (hint,))


def with_current_names(fields: dict[str, Any], where: str) -> dict[str, Any]:
    """A copy of fields with each old field name (RENAMED_FIELDS) replaced by the current one, in the same place;
    one line naming `where` (the file, --set) when both names are given."""
    for old, new in RENAMED_FIELDS.items():
        if old in fields and new in fields:
            raise UserInputError(f"{where}: both {old!r} and {new!r} are given; {old!r} is the old name of "
                                 f"{new!r}: keep {new!r} only")
    return {RENAMED_FIELDS.get(key, key): value for key, value in fields.items()}


def field_docs() -> dict[str, str]:
    """Each field's one-line docstring, read from this module's source (for `fields` and the README)."""
    tree = ast.parse(inspect.getsource(ExperimentSpec))
    body = tree.body[0].body
    docs = {}
    for node, following in zip(body, body[1:], strict=False):
        if isinstance(node, ast.AnnAssign) and isinstance(following, ast.Expr) \
                and isinstance(following.value, ast.Constant):
            docs[node.target.id] = following.value.value
    return docs


def field_defaults() -> dict[str, Any]:
    """Each field's default value, in definition order (for `fields` and the docs' fields page)."""
    return {spec_field.name: spec_field.default if spec_field.default is not dataclasses.MISSING
            else spec_field.default_factory() for spec_field in dataclasses.fields(ExperimentSpec)}


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """Check a value against its field's type hint, converting int to float and list to tuple."""
    allowed = get_args(hint) if get_origin(hint) in (Union, type(int | None)) else (hint,)
    for option in allowed:
        if option is type(None) and value is None:
            return None
        if option is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if option is float and isinstance(value, str) and _looks_like_float(value):
            return float(value)  # PyYAML reads 3e-4 (no dot) as a string
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if option is bool and isinstance(value, bool):
            return value
        if option is str and isinstance(value, str):
            return value
        if option is dict and isinstance(value, dict):
            return dict(value)
        if get_origin(option) is tuple and isinstance(value, (list, tuple)) \
                and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return tuple(value)
    expected = " or ".join("null" if t is type(None) else getattr(t, "__name__", str(t)) for t in allowed)
    if name in _TUPLE_FIELDS:
        expected = "a list of integers"
    raise UserInputError(f"spec field {name!r}: expected {expected}, got {value!r}")


def _looks_like_float(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _check_ranges(spec: ExperimentSpec) -> None:
    """Reject out-of-range values with one line naming the field and what is allowed."""
    def require(ok: bool, name: str, allowed: str) -> None:
        if not ok:
            raise UserInputError(f"spec field {name!r} = {getattr(spec, name)!r}: must be {allowed}")

    for name in ("actor_learning_rate", "critic_learning_rate", "alpha_learning_rate", "reward_scaling"):
        require(math.isfinite(getattr(spec, name)) and getattr(spec, name) > 0, name, "a positive number")
    for name in ("max_epoch", "timestep_per_epoch", "gradient_step_interval", "gradient_steps", "pool_capacity",
                 "batch_size_in_ts", "checkpoint_interval", "target_update_interval", "num_actor_samples", "n_step",
                 "actor_update_interval"):
        require(getattr(spec, name) >= 1, name, "an integer >= 1")
    require(spec.seed >= 0, "seed", "an integer >= 0")
    require(spec.max_eval_trj >= 0, "max_eval_trj", "an integer >= 0")
    require(spec.max_trj_steps is None or spec.max_trj_steps >= 1, "max_trj_steps", "null or an integer >= 1")
    require(0.0 <= spec.discount_factor <= 1.0, "discount_factor", "in [0, 1]")
    require(0.0 <= spec.adam_beta1 < 1.0, "adam_beta1", "in [0, 1)")
    require(0.0 < spec.target_smoothing_coefficient <= 1.0, "target_smoothing_coefficient", "in (0, 1]")
    require(spec.alpha == "auto" or (isinstance(spec.alpha, float) and math.isfinite(spec.alpha)
                                     and spec.alpha >= 0), "alpha", "a number >= 0 or 'auto'")
    require(spec.target_entropy is None or math.isfinite(spec.target_entropy), "target_entropy",
            "null or a finite number")
    for name, choices in (("variant", VARIANTS), ("q_backup", Q_BACKUPS),
                          ("actor_gradient", ACTOR_GRADIENTS), ("actor_loss", ACTOR_LOSSES)):
        require(getattr(spec, name) in choices, name, "one of " + ", ".join(choices))
    for name in ("phi_nn_h_layer_topo", "psi_nn_h_layer_topo", "theta_nn_h_layer_topo"):
        require(len(getattr(spec, name)) >= 1 and min(getattr(spec, name)) >= 1, name,
                "a non-empty list of positive layer sizes")
    if spec.variant == "crossq":  # no target networks; the targets take the min over all the critics
        defaults = field_defaults()
        require(spec.q_backup == "clipped", "q_backup", "clipped with variant crossq (its targets take the min "
                "over the critics)")
        for name in ("target_smoothing_coefficient", "target_update_interval"):
            require(getattr(spec, name) == defaults[name], name, f"left at its default ({defaults[name]}) with "
                    "variant crossq, which has no target networks")
        require(spec.critic_subset is None, "critic_subset", "null with variant crossq (its targets take the min "
                "over all the critics)")
    require(spec.q_backup != "double" or spec.variant == "v2", "q_backup",
            "single or clipped with variant v1 (double needs the twin frozen Q targets of v2)")
    require(spec.num_critics == 2 or (spec.q_backup == "clipped" and spec.num_critics >= 2), "num_critics",
            "an integer >= 2" if spec.q_backup == "clipped" else
            f"2 with q_backup {spec.q_backup} (an ensemble of N critics takes q_backup clipped)")
    require(spec.critic_subset is None or 1 <= spec.critic_subset <= spec.num_critics, "critic_subset",
            f"null or an integer in [1, num_critics ({spec.num_critics})]")
    require(spec.critic_subset is None or spec.q_backup == "clipped", "critic_subset",
            f"null with q_backup {spec.q_backup} (a random subset's min is a clipped backup)")
    require(0.0 <= spec.critic_dropout < 1.0, "critic_dropout", "in [0, 1)")
    require(0.0 <= spec.action_noise_beta <= 2.0, "action_noise_beta", "in [0, 2] (0 white, 1 pink, 2 red)")
    if spec.min_pool_size != "auto":
        require(isinstance(spec.min_pool_size, int) and spec.min_pool_size >= 1, "min_pool_size",
                "an integer >= 1 or 'auto'")
        require(spec.batch_size_in_ts <= spec.min_pool_size, "batch_size_in_ts",
                f"<= min_pool_size ({spec.min_pool_size})")
        require(spec.min_pool_size <= spec.pool_capacity, "min_pool_size", f"<= pool_capacity ({spec.pool_capacity})")
    require(spec.batch_size_in_ts <= spec.pool_capacity, "batch_size_in_ts",
            f"<= pool_capacity ({spec.pool_capacity})")
    require(spec.hidden_activation in ACTIVATION_NAMES, "hidden_activation", "one of " + ", ".join(ACTIVATION_NAMES))


# Names other SAC libraries (SB3, CleanRL, Spinning Up, the papers) give to this spec's fields.
OTHER_NAMES = {
    "gamma": "discount_factor", "tau": "target_smoothing_coefficient", "polyak": "target_smoothing_coefficient",
    "lr": "actor_learning_rate", "policy_lr": "actor_learning_rate", "q_lr": "critic_learning_rate",
    "qf_lr": "critic_learning_rate", "batch_size": "batch_size_in_ts", "buffer_size": "pool_capacity",
    "replay_size": "pool_capacity", "learning_starts": "min_pool_size", "start_steps": "min_pool_size",
    "ent_coef": "alpha", "train_freq": "gradient_step_interval", "update_every": "gradient_step_interval",
    "net_arch": "phi_nn_h_layer_topo", "reward_scale": "reward_scaling", "env": "env_id", "env_name": "env_id",
    "epochs": "max_epoch", "steps_per_epoch": "timestep_per_epoch", "num_test_episodes": "max_eval_trj",
    "n_critics": "num_critics", "num_qs": "num_critics", "ensemble_size": "num_critics", "num_min": "critic_subset",
    "dropout_rate": "critic_dropout", "layer_norm": "critic_layer_norm",
    "n_steps": "n_step", "update_horizon": "n_step", "policy_delay": "actor_update_interval",
    "policy_frequency": "actor_update_interval", "beta1": "adam_beta1", "b1": "adam_beta1",
    "noise_beta": "action_noise_beta", "colored_noise_beta": "action_noise_beta"}


def closest_field_hint(key: str) -> str:
    """' (did you mean ...?)' for a misspelled field name (current or old) or another library's name for a
    field, or ''."""
    match = [OTHER_NAMES[key.lower()]] if key.lower() in OTHER_NAMES else \
        difflib.get_close_matches(key, FIELD_NAMES + tuple(RENAMED_FIELDS), n=1)
    return f" (did you mean {RENAMED_FIELDS.get(match[0], match[0])!r}?)" if match else ""


def yaml_text(value: Any) -> str:
    """A field value as it is written in a spec file: null, true, [256, 256], {continuous: true}."""
    value = list(value) if isinstance(value, tuple) else value
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def parse_override(text: str) -> tuple[str, Any]:
    """'key=value' -> (key, YAML-parsed value), e.g. 'alpha=auto' or 'phi_nn_h_layer_topo=[64,64]'."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UserInputError(f"--set {text!r}: expected key=value")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError as error:
        raise UserInputError(f"--set {text!r}: value is not valid YAML ({error.problem})") from None


def load_raw_spec(path: str | Path | None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a spec file with the safe YAML loader, apply overrides, reject unknown keys.

    path None: the general default (every field at its default, named after its env_id), e.g. for
    `sac train --env Hopper-v5`, whose overrides start with env_id=Hopper-v5. An override of the file's env_id
    drops its expected_reward_goal (unless one is given too): `--spec pendulum --env Hopper-v5` has no goal."""
    raw = {} if path is None else _read_spec_file(Path(path))
    changes = with_current_names(dict(parse_override(text) for text in overrides), "--set")
    if path is None:
        raw["name"] = re.sub(f"[^{NAME_CHARACTERS}]+", "_", str(changes.get("env_id", ExperimentSpec.env_id)))
    elif changes.get("env_id", raw.get("env_id")) != raw.get("env_id") and "expected_reward_goal" not in changes:
        raw.pop("expected_reward_goal", None)  # a return on the file's environment, not on the one given instead
    raw.update(changes)
    for key in raw:
        if key not in FIELD_NAMES and key != GRID_KEY:
            raise UserInputError(f"unknown spec field {key!r}{closest_field_hint(str(key))}")
    if raw.get(GRID_KEY) is not None:
        raw[GRID_KEY] = _grid_points(raw[GRID_KEY])
    return raw


def _read_spec_file(path: Path) -> dict[str, Any]:
    """A spec file's fields (current names) with its name defaulting to the file's stem; one line on bad input."""
    if not path.is_file():
        raise UserInputError(f"spec file {str(path)!r} does not exist")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise UserInputError(f"spec file {str(path)!r} is not valid YAML{where}: "
                             f"{error.problem or error.context}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise UserInputError(f"spec file {str(path)!r} is not valid YAML: "
                             f"{str(error).splitlines()[0]}") from None
    if raw is None:  # an empty file is more likely a mistake than a wish for every default
        raise UserInputError(f"spec file {str(path)!r} is empty: write at least env_id: ... (fields: `sac fields`)")
    if not isinstance(raw, dict):
        raise UserInputError(f"spec file {str(path)!r} must hold a mapping of field: value")
    raw = with_current_names(raw, f"spec file {str(path)!r}")
    raw.setdefault("name", path.stem)
    return raw


NAME_CHARACTERS = "A-Za-z0-9_.-"  # of the names this module makes (a run folder's name): a regex character class
GRID_KEY = "grid"  # a list of {field: value} mappings: one grid axis whose points set several fields together


def _grid_points(points: Any) -> list[dict[str, Any]]:
    """`grid:` with current field names; it must be a non-empty list of mappings of known fields, each point
    optionally named (`name: redq`: its runs' name ends in -redq instead of the list of its fields)."""
    if not isinstance(points, list) or not points or not all(isinstance(point, dict) and point for point in points):
        raise UserInputError(f"spec key {GRID_KEY!r}: expected a list of field: value mappings, got {points!r}")
    points = [with_current_names(point, f"spec key {GRID_KEY!r}") for point in points]
    for point in points:
        for key in point:
            if key not in FIELD_NAMES:
                raise UserInputError(f"spec key {GRID_KEY!r}: unknown spec field {key!r}{closest_field_hint(str(key))}")
        name = point.get("name", "")
        if "name" in point and not (isinstance(name, str) and re.fullmatch(f"[{NAME_CHARACTERS}]+", name)):
            raise UserInputError(f"spec key {GRID_KEY!r}: a point's name must be letters, digits, '_', '.' or '-', "
                                 f"got {name!r}")
    names = [point["name"] for point in points if "name" in point]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserInputError(f"spec key {GRID_KEY!r}: several points are named {', '.join(map(repr, repeated))}")
    return points


def is_grid_value(key: str, value: Any) -> bool:
    """True when the value of field `key` is a grid search: a list in place of a scalar; for a layer topology,
    a list of lists."""
    if key in _TUPLE_FIELDS:
        return isinstance(value, list) and len(value) > 0 and all(isinstance(v, (list, tuple)) for v in value)
    return isinstance(value, list)


def expand_grid(raw: dict[str, Any]) -> list[ExperimentSpec]:
    """One validated ExperimentSpec per point of the grid (a single point when nothing is a list)."""
    raw = dict(raw)
    grid_points = raw.pop(GRID_KEY, None) or [{}]
    grid_keys = [key for key, value in raw.items() if is_grid_value(key, value)]
    if any(len(raw[key]) == 0 for key in grid_keys):
        raise UserInputError(f"spec field {grid_keys[0]!r}: an empty list is not a search")
    specs = []
    for grid_point in grid_points:
        for values in itertools.product(*(raw[key] for key in grid_keys)):
            fields = {key: value for key, value in grid_point.items() if key != "name"}
            changes = dict(fields, **dict(zip(grid_keys, values, strict=True)))
            point = dict(raw, **changes)
            # a named grid point is tagged by its name; the seed is not part of the name: run folders already end
            # in -seed<N>
            tags = [grid_point["name"]] if "name" in grid_point else []
            tags += [f"{key}={_tag(value)}" for key, value in changes.items()
                     if key != "seed" and not (key in fields and "name" in grid_point)]
            if tags:
                point["name"] = f"{raw['name']}-{','.join(tags)}"
            specs.append(ExperimentSpec(**point))
    return specs


def _tag(value: Any) -> str:
    """Short text of a grid value for folder names: [64, 64] -> 64x64."""
    return "x".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
