"""Keras building blocks shared by every network of the project: the MLP builder and the polyak update."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

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


def build_mlp(hidden_layer_topo: Sequence[int], activation: str, name: str, layer_norm: bool = False,
              dropout: float = 0.0, dropout_noise: tf.random.Generator | None = None) -> keras.Sequential:
    """A stack of Dense hidden layers (no output layer): the trunk of every network.

    Each hidden layer is activation(x W + b), or with the options, in DroQ's order (Hiraoka et al. 2022),
    activation(LayerNorm(Dropout(x W + b))):
    layer_norm: LayerNorm(h) = gamma * (h - mean(h)) / sqrt(var(h) + 1e-3) + beta over the layer's units (Ba et al.
    2016); dropout > 0: GeneratorDropout(dropout) with masks from dropout_noise, at every call.
    """
    act = activation_from_name(activation)
    if not layer_norm and not dropout:
        return keras.Sequential([keras.layers.Dense(units, activation=act, name=f"hidden_{i + 1}")
                                 for i, units in enumerate(hidden_layer_topo)], name=name)
    layers = []
    for i, units in enumerate(hidden_layer_topo):
        layers.append(keras.layers.Dense(units, name=f"hidden_{i + 1}"))
        if dropout:
            layers.append(GeneratorDropout(dropout, dropout_noise, name=f"dropout_{i + 1}"))
        if layer_norm:
            layers.append(keras.layers.LayerNormalization(epsilon=1e-3, name=f"layer_norm_{i + 1}"))
        layers.append(keras.layers.Activation(act, name=f"activation_{i + 1}"))
    return keras.Sequential(layers, name=name)


class GeneratorDropout(keras.layers.Layer):
    """Dropout at every call, its masks drawn from a given tf.random.Generator: x * keep / (1 - rate), keep ~
    Bernoulli(1 - rate).

    Keras' Dropout keeps its seed state in a variable of its own that a checkpoint of the model does not hold
    and that the model's variable list (the polyak pairs) would include; the brain's generator is checkpointed
    with the run, so a resumed run draws the same masks.
    """

    def __init__(self, rate: float, noise: tf.random.Generator, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self._uniform = noise.uniform  # a bound method: not tracked by Keras, so the generator stays the brain's

    def call(self, x: tf.Tensor) -> tf.Tensor:
        keep = self._uniform(tf.shape(x)) >= self.rate
        return tf.where(keep, x / (1.0 - self.rate), tf.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return input_shape


def check_matching_variables(source_variables: Sequence[tf.Variable],
                             target_variables: Sequence[tf.Variable]) -> None:
    """Raise a clear ValueError unless the two variable lists pair up one to one with equal shapes."""
    if len(source_variables) != len(target_variables):
        raise ValueError(f"polyak_update: {len(source_variables)} source variables "
                         f"but {len(target_variables)} target variables")
    for source, target in zip(source_variables, target_variables, strict=True):
        if source.shape != target.shape:
            raise ValueError(f"polyak_update: shape mismatch between {variable_name(source)} {source.shape} "
                             f"and {variable_name(target)} {target.shape}")


def variable_name(variable: tf.Variable) -> str:
    return getattr(variable, "path", variable.name)  # Keras 3 variables have a path, tf.Variables a name


def polyak_update(source_variables: Sequence[tf.Variable], target_variables: Sequence[tf.Variable],
                  tau: float | tf.Tensor) -> None:
    """target <- tau * source + (1 - tau) * target, variable by variable.

    Runs eagerly or inside a `tf.function`; the lists are checked when the function
    is traced (build time), not at every call. `tau = 1.0` is a hard copy.
    """
    check_matching_variables(source_variables, target_variables)
    for source, target in zip(source_variables, target_variables, strict=True):
        target.assign(tau * source + (1.0 - tau) * target)


class FusedAdam(tf.Module):
    """Adam applied by TensorFlow's fused kernel, one `ResourceApplyAdam` op per variable.

    The same update as keras.optimizers.Adam (Kingma & Ba 2015, epsilon outside the square root):
        m <- b1 m + (1 - b1) g,   v <- b2 v + (1 - b2) g^2,
        var <- var - lr sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)
    Keras 3 builds this from about ten ops per variable; inside one compiled SAC update those
    small ops cost more than the arithmetic on a 2-core CPU (see benchmarks/train_step_benchmark.py).
    The moments and the step count are variables of this module, so tf.train.Checkpoint saves them.
    """

    def __init__(self, variables: Sequence[tf.Variable], learning_rate: float, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, name: str | None = None) -> None:
        super().__init__(name=name)
        self.learning_rate, self.beta_1, self.beta_2, self.epsilon = learning_rate, beta_1, beta_2, epsilon
        self.iterations = tf.Variable(0, dtype=tf.int64, trainable=False, name="iterations")
        self.first_moments = [tf.Variable(tf.zeros(v.shape), trainable=False, name="m") for v in variables]
        self.second_moments = [tf.Variable(tf.zeros(v.shape), trainable=False, name="v") for v in variables]
        self._shapes = [tuple(v.shape) for v in variables]

    def apply_gradients(self, grads_and_vars: Iterable[tuple[tf.Tensor, tf.Variable]]) -> None:
        """One Adam step, as keras.optimizers.Adam.apply_gradients, on the variables given at construction."""
        gradients, variables = zip(*grads_and_vars, strict=True)
        if [tuple(v.shape) for v in variables] != self._shapes:
            raise ValueError("FusedAdam.apply_gradients: the variables differ from those it was built for")
        t = tf.cast(self.iterations.assign_add(1), tf.float32)
        beta_1_power, beta_2_power = tf.pow(self.beta_1, t), tf.pow(self.beta_2, t)
        for gradient, variable, m, v in zip(gradients, variables, self.first_moments, self.second_moments, strict=True):
            tf.raw_ops.ResourceApplyAdam(var=variable.handle, m=m.handle, v=v.handle, beta1_power=beta_1_power,
                                         beta2_power=beta_2_power, lr=self.learning_rate, beta1=self.beta_1,
                                         beta2=self.beta_2, epsilon=self.epsilon, grad=gradient)
