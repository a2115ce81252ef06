"""Keras building blocks shared by every network of the project: the MLP builder and the polyak update."""
from __future__ import annotations

from typing import Callable, Sequence

import keras
import tensorflow as tf

from blocAndTools.errors import UserInputError

# The activation names a spec may use (experiment_spec.ACTIVATION_NAMES), mapped explicitly
# (never `eval` a user string); SoftActorCritic.numpy_policy maps the same names in NumPy.
ACTIVATIONS: dict[str, Callable[[tf.Tensor], tf.Tensor]] = {
    "relu": tf.nn.relu,
    "tanh": tf.math.tanh,
    "elu": tf.nn.elu,
    "selu": tf.nn.selu,
    "gelu": tf.nn.gelu,
    "swish": tf.nn.silu,
    "leaky_relu": tf.nn.leaky_relu,
}


def activation_from_name(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    """Look up a hidden-layer activation by its spec name."""
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise UserInputError(
            f"unknown activation {name!r}; allowed: {', '.join(sorted(ACTIVATIONS))}") from None


def build_mlp(hidden_layer_topo: Sequence[int], activation: str, name: str) -> keras.Sequential:
    """A stack of Dense hidden layers (no output layer): the trunk of every network."""
    act = activation_from_name(activation)
    return keras.Sequential(
        [keras.layers.Dense(units, activation=act, name=f"hidden_{i + 1}")
         for i, units in enumerate(hidden_layer_topo)],
        name=name)


def check_matching_variables(source_variables: Sequence[tf.Variable],
                             target_variables: Sequence[tf.Variable]) -> None:
    """Raise a clear ValueError unless the two variable lists pair up one to one with equal shapes."""
    if len(source_variables) != len(target_variables):
        raise ValueError(f"polyak_update: {len(source_variables)} source variables "
                         f"but {len(target_variables)} target variables")
    for source, target in zip(source_variables, target_variables):
        if source.shape != target.shape:
            raise ValueError(f"polyak_update: shape mismatch between {_name(source)} {source.shape} "
                             f"and {_name(target)} {target.shape}")


def _name(variable: tf.Variable) -> str:
    return getattr(variable, "path", variable.name)  # Keras 3 variables have a path, tf.Variables a name


def polyak_update(source_variables: Sequence[tf.Variable], target_variables: Sequence[tf.Variable],
                  tau: float | tf.Tensor) -> None:
    """target <- tau * source + (1 - tau) * target, variable by variable.

    Runs eagerly or inside a `tf.function`; the lists are checked when the function
    is traced (build time), not at every call. `tau = 1.0` is a hard copy.
    """
    check_matching_variables(source_variables, target_variables)
    for source, target in zip(source_variables, target_variables):
        target.assign(tau * source + (1.0 - tau) * target)
