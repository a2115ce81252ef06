"""A trained SAC policy without TensorFlow: phi's forward pass in NumPy, and the policy file.

Users: the brain acts with `NumpyActor` during training and evaluation (a TensorFlow call
per action would cost far more than the forward pass); `load_policy` gives a trained
policy to any Python program, and `play --record` renders in a child process that must
not load TensorFlow (MuJoCo's EGL rendering segfaults once it is loaded).

The policy file (`policy.npz`, no pickle) holds everything needed to act:
trunk_kernel_<i> / trunk_bias_<i> for the hidden layers in order, mu_kernel / mu_bias and
log_std_kernel / log_std_bias for the two heads, `activation` (the hidden activation's
name), `action_low` / `action_high` (the environment's action bounds), `env_id`,
`env_kwargs` (JSON), and where it comes from: `env_steps` and `eval_return` (NaN if none).
"""
from __future__ import annotations

import json
import math
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from blocAndTools.atomic_files import write_atomically
from blocAndTools.errors import UserInputError

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0  # phi's log_std clip, as in the SAC paper's code
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_erf = np.vectorize(math.erf, otypes=[np.float64])


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow for large |x|


def _exp_minus_one(x: np.ndarray) -> np.ndarray:
    return np.expm1(np.minimum(x, 0.0))  # only used where x <= 0: no overflow warning elsewhere


# The same names as experiment_spec.ACTIVATION_NAMES, with TensorFlow's definitions.
ACTIVATIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "relu": lambda x: np.maximum(x, 0.0),
    "tanh": np.tanh,
    "elu": lambda x: np.where(x > 0, x, _exp_minus_one(x)),
    "selu": lambda x: SELU_SCALE * np.where(x > 0, x, SELU_ALPHA * _exp_minus_one(x)),
    "gelu": lambda x: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),  # tf.nn.gelu's exact (erf) form
    "swish": lambda x: x * _sigmoid(x),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.2 * x),  # tf.nn.leaky_relu's default alpha
}


Layer = tuple[np.ndarray, np.ndarray]  # (kernel, bias)


class NumpyActor:
    """phi's forward pass in NumPy, in the dtype of its weights (float32 from TensorFlow).

    obs -> trunk -> (mu, log_std clipped to [LOG_STD_MIN, LOG_STD_MAX]); the deterministic
    action is tanh(mu), a stochastic one tanh(mu + exp(log_std) * eps), eps ~ N(0, 1).
    """

    def __init__(self, trunk: list[Layer], mu: Layer, log_std: Layer, activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise UserInputError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        fan_in = [kernel.shape[0] for kernel, _ in trunk[1:] + [mu]]
        fan_out = [kernel.shape[1] for kernel, _ in trunk]
        if not trunk or fan_in != fan_out or mu[0].shape != log_std[0].shape \
                or any(bias.shape != kernel.shape[1:] for kernel, bias in trunk + [mu, log_std]):
            raise ValueError("inconsistent actor weight shapes")
        self.trunk, self.mu, self.log_std = trunk, mu, log_std
        self.activation_name, self.activation = activation, ACTIVATIONS[activation]
        self.dtype = mu[0].dtype

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], activation: str) -> NumpyActor:
        """From phi's weights in layer order: trunk kernel, bias, ..., mu kernel, bias, log_std kernel, bias."""
        layers = list(zip(arrays[0::2], arrays[1::2], strict=True))
        return cls(layers[:-2], layers[-2], layers[-1], activation)

    def weight_arrays(self) -> dict[str, np.ndarray]:
        """The weights under the policy file's names."""
        arrays = {"mu_kernel": self.mu[0], "mu_bias": self.mu[1],
                  "log_std_kernel": self.log_std[0], "log_std_bias": self.log_std[1]}
        for i, (kernel, bias) in enumerate(self.trunk):
            arrays[f"trunk_kernel_{i}"], arrays[f"trunk_bias_{i}"] = kernel, bias
        return arrays

    @property
    def obs_dim(self) -> int:
        return int(self.trunk[0][0].shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.mu[0].shape[1])

    def _features(self, obs: np.ndarray) -> np.ndarray:
        x = np.asarray(obs, dtype=self.dtype)
        for kernel, bias in self.trunk:
            x = self.activation(x @ kernel + bias)
        return x

    def mu_log_std(self, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """phi(obs): (mu, log_std), batch first or one observation."""
        x = self._features(obs)
        return x @ self.mu[0] + self.mu[1], np.clip(x @ self.log_std[0] + self.log_std[1], LOG_STD_MIN, LOG_STD_MAX)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action tanh(mu(obs)); (obs_dim,) gives (act_dim,), (n, obs_dim) gives (n, act_dim)."""
        return np.tanh(self._features(obs) @ self.mu[0] + self.mu[1])

    def sample(self, obs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A stochastic action (with_noise) with eps ~ N(0, 1) drawn from rng."""
        return self.with_noise(obs, rng.standard_normal((*np.shape(obs)[:-1], self.act_dim), dtype=self.dtype))

    def with_noise(self, obs: np.ndarray, eps: np.ndarray) -> np.ndarray:
        """The stochastic action tanh(mu + exp(log_std) * eps) for a given eps, e.g. colored (action_noise.py)."""
        mu, log_std = self.mu_log_std(obs)
        return np.tanh(mu + np.exp(log_std) * eps)


class Policy:
    """A trained policy acting in the environment's own action bounds: `policy(obs)`, `policy.sample(obs)`.

    The actor acts in [-1, 1] (tanh); an action a becomes low + (a + 1) / 2 * (high - low),
    the rescaling the training environment applied (gymnasium's RescaleAction).
    """

    def __init__(self, actor: NumpyActor, action_low: np.ndarray, action_high: np.ndarray, env_id: str,
                 env_kwargs: dict | None = None, env_steps: int = 0, eval_return: float | None = None) -> None:
        self.actor = actor
        self.action_low = np.asarray(action_low, dtype=actor.dtype).reshape(actor.act_dim)
        self.action_high = np.asarray(action_high, dtype=actor.dtype).reshape(actor.act_dim)
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.env_steps, self.eval_return = int(env_steps), eval_return
        self.path: Path | None = None  # the file it was loaded from

    @property
    def obs_dim(self) -> int:
        return self.actor.obs_dim

    @property
    def act_dim(self) -> int:
        return self.actor.act_dim

    def _to_bounds(self, unit_action: np.ndarray) -> np.ndarray:
        return self.action_low + (unit_action + 1.0) * 0.5 * (self.action_high - self.action_low)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """The deterministic action tanh(mu(obs)) in the environment's bounds; one observation or a batch."""
        return self._to_bounds(self.actor(obs))

    def sample(self, obs: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """A stochastic action tanh(mu + std * eps) in the environment's bounds, eps ~ N(0, 1) from rng."""
        return self._to_bounds(self.actor.sample(obs, np.random.default_rng() if rng is None else rng))

    def all_finite(self) -> bool:
        """False when any weight is NaN or infinite (such a policy is never written)."""
        return all(np.isfinite(array).all() for array in self.actor.weight_arrays().values())

    def save(self, path: str | Path) -> None:
        """Write the policy file atomically: readers never see half a file."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        # a file object: np.savez would append .npz to the name
        write_atomically(path, lambda file: np.savez(
            file, activation=np.array(self.actor.activation_name), env_id=np.array(self.env_id),
            env_kwargs=np.array(json.dumps(self.env_kwargs)), action_low=self.action_low,
            action_high=self.action_high, env_steps=np.array(self.env_steps),
            eval_return=np.array(np.nan if self.eval_return is None else self.eval_return),
            **self.actor.weight_arrays()))

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read a policy file; a missing, damaged or incomplete one raises UserInputError (one line)."""
        if Path(path).is_file() and not zipfile.is_zipfile(path):  # np.load would guess at other formats
            raise UserInputError(f"{str(path)!r} is not a policy file (.npz written by training) nor a run folder")
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: np.asarray(npz[key]) for key in npz.files}
            layers = sum(1 for key in arrays if key.startswith("trunk_kernel_"))
            actor = NumpyActor([(arrays[f"trunk_kernel_{i}"], arrays[f"trunk_bias_{i}"]) for i in range(layers)],
                               (arrays["mu_kernel"], arrays["mu_bias"]),
                               (arrays["log_std_kernel"], arrays["log_std_bias"]), str(arrays["activation"]))
            eval_return = float(arrays["eval_return"])
            policy = cls(actor, arrays["action_low"], arrays["action_high"], str(arrays["env_id"]),
                         json.loads(str(arrays["env_kwargs"])), int(arrays["env_steps"]),
                         None if math.isnan(eval_return) else eval_return)
        except (OSError, ValueError, EOFError, KeyError, TypeError, zipfile.BadZipFile) as error:
            raise UserInputError(f"{str(path)!r} is not a policy file: "
                                 f"{type(error).__name__}: {' '.join(str(error).split())}") from None
        policy.path = Path(path)
        return policy


CHECKPOINT_POLICY = re.compile(r"policy-(\d+)\.npz")  # checkpoints/policy-<env steps>.npz
BEST_POLICY = Path("best_policy") / "policy.npz"


def checkpoint_policy_path(run_dir: Path, env_steps: int) -> Path:
    """Where the checkpoint at `env_steps` keeps its policy file."""
    return Path(run_dir) / "checkpoints" / f"policy-{env_steps}.npz"


def load_policy(run_dir: str | Path, best: bool = False) -> Policy:
    """The policy of a run folder: its newest checkpoint's, or with best=True the best evaluated one.

    A policy file's path is accepted too. Needs no TensorFlow. Bad input raises UserInputError.
    """
    path = Path(run_dir)
    if path.is_dir():
        if best:
            path = path / BEST_POLICY
            if not path.is_file():
                raise UserInputError(f"{str(run_dir)!r} has no best policy yet (written after the first evaluation)")
        else:
            numbered = [(int(match.group(1)), file) for file in (path / "checkpoints").glob("policy-*.npz")
                        if (match := CHECKPOINT_POLICY.fullmatch(file.name))]
            if not numbered:
                raise UserInputError(f"{str(run_dir)!r} holds no policy file (checkpoints/policy-<steps>.npz): "
                                     f"not a run folder, or no checkpoint written yet")
            path = max(numbered)[1]
    elif not path.is_file():
        raise UserInputError(f"{str(run_dir)!r} is neither a run folder nor a policy file")
    return Policy.load(path)
