"""The deterministic SAC actor tanh(mu(s)) in NumPy, from phi's weights exported to an .npz file.

For processes that must not load TensorFlow: MuJoCo's EGL rendering segfaults once
TensorFlow is loaded (Mesa's llvmpipe picks up the LLVM symbols inside
libtensorflow_framework.so), so `play --record` renders in a child process acting with
this policy. The .npz (written by SoftActorCritic.networks.save_actor_weights) holds
trunk_kernel_<i> / trunk_bias_<i> for the hidden layers in order, mu_kernel / mu_bias
for the policy_mu head, and the hidden activation name as a 0-d string array.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np

from blocAndTools.errors import UserInputError

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


class NumpyDeterministicPolicy:
    """tanh(mu(obs)) of a Gaussian actor phi, computed with NumPy (float64) from exported weights."""

    def __init__(self, trunk: list[tuple[np.ndarray, np.ndarray]], mu: tuple[np.ndarray, np.ndarray],
                 activation: str) -> None:
        if activation not in ACTIVATIONS:
            raise UserInputError(f"unknown activation {activation!r}; allowed: {', '.join(ACTIVATIONS)}")
        self.trunk, self.mu, self.activation = trunk, mu, ACTIVATIONS[activation]

    @classmethod
    def load(cls, path: str | Path) -> NumpyDeterministicPolicy:
        """Read an .npz from save_actor_weights; a missing or malformed file raises UserInputError."""
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {key: np.asarray(npz[key]) for key in npz.files}
            layers = sum(1 for key in arrays if key.startswith("trunk_kernel_"))
            trunk = [(arrays[f"trunk_kernel_{i}"], arrays[f"trunk_bias_{i}"]) for i in range(layers)]
            mu, activation = (arrays["mu_kernel"], arrays["mu_bias"]), str(arrays["activation"])
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as error:
            raise UserInputError(f"{str(path)!r} is not an actor weights file: "
                                 f"{type(error).__name__}: {' '.join(str(error).split())}") from None
        fan_in = [kernel.shape[0] for kernel, _ in trunk[1:] + [mu]]
        fan_out = [kernel.shape[1] for kernel, _ in trunk]
        if layers < 1 or fan_in != fan_out or any(bias.shape != kernel.shape[1:] for kernel, bias in trunk + [mu]):
            raise UserInputError(f"{str(path)!r} holds inconsistent actor weight shapes")
        return cls(trunk, mu, activation)

    @property
    def obs_dim(self) -> int:
        return int(self.trunk[0][0].shape[0])

    @property
    def act_dim(self) -> int:
        return int(self.mu[0].shape[1])

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        """tanh(mu(obs)), float32: shape (obs_dim,) gives (act_dim,), (batch, obs_dim) gives (batch, act_dim)."""
        x = np.asarray(obs, dtype=np.float64)
        for kernel, bias in self.trunk:
            x = self.activation(x @ kernel + bias)
        return np.tanh(x @ self.mu[0] + self.mu[1]).astype(np.float32)
