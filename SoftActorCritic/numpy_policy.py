"""The SAC actor phi in NumPy: acting without a TensorFlow call, and without TensorFlow at all.

Two users: the brain acts with it during training and evaluation (one observation costs
about 15 us here, a compiled TensorFlow function about 400 us of call overhead), and
`play --record` renders in a child process that must not load TensorFlow (MuJoCo's EGL
rendering segfaults once TensorFlow is loaded: Mesa's llvmpipe picks up the LLVM symbols
inside libtensorflow_framework.so). The .npz written by
SoftActorCritic.networks.save_actor_weights holds trunk_kernel_<i> / trunk_bias_<i> for the
hidden layers in order, mu_kernel / mu_bias and log_std_kernel / log_std_bias for the two
heads, and the hidden activation name as a 0-d string array.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

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
        self.trunk, self.mu, self.log_std, self.activation = trunk, mu, log_std, ACTIVATIONS[activation]
        self.dtype = mu[0].dtype

    @classmethod
    def from_arrays(cls, arrays: list[np.ndarray], activation: str) -> NumpyActor:
        """From phi's weights in layer order: trunk kernel, bias, ..., mu kernel, bias, log_std kernel, bias."""
        layers = list(zip(arrays[0::2], arrays[1::2]))
        return cls(layers[:-2], layers[-2], layers[-1], activation)

    @classmethod
    def load(cls, path: str | Path) -> NumpyActor:
        """Read an .npz from save_actor_weights; a missing or malformed file raises UserInputError."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: np.asarray(npz[key]) for key in npz.files}
            layers = sum(1 for key in arrays if key.startswith("trunk_kernel_"))
            trunk = [(arrays[f"trunk_kernel_{i}"], arrays[f"trunk_bias_{i}"]) for i in range(layers)]
            return cls(trunk, (arrays["mu_kernel"], arrays["mu_bias"]),
                       (arrays["log_std_kernel"], arrays["log_std_bias"]), str(arrays["activation"]))
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise UserInputError(f"{str(path)!r} is not an actor weights file: "
                                 f"{type(error).__name__}: {' '.join(str(error).split())}") from None

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
        """A stochastic action tanh(mu + exp(log_std) * eps) with eps ~ N(0, 1) drawn from rng."""
        mu, log_std = self.mu_log_std(obs)
        return np.tanh(mu + np.exp(log_std) * rng.standard_normal(mu.shape, dtype=self.dtype))
