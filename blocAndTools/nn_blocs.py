"""Keras building blocks shared by every network of the project: the MLP builder (and its BatchRenorm and
GeneratorDropout layers), the polyak update and FusedAdam."""
from __future__ import annotations

import functools
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


def kernel_initializer(batch_renorm: bool) -> str:
    """The Dense kernels' initializer: Keras' Glorot uniform, or with batch renormalisation (CrossQ) LeCun normal,
    the default of flax's Dense that sbx's and the CrossQ paper's networks start from. It matters there: with a
    normalisation after each layer, the scale of a kernel no longer scales the output, it only sets how far Adam's
    steps (about lr per weight) turn the kernel, and on a 4-input layer of 1024 units Glorot's kernel is 11 times
    smaller than LeCun's (std 0.044 against 0.5). Measured on Pendulum: benchmarks/results/learning/NOTES.md."""
    return "lecun_normal" if batch_renorm else "glorot_uniform"


def build_mlp(hidden_layer_topo: Sequence[int], activation: str, name: str, layer_norm: bool = False,
              dropout: float = 0.0, dropout_noise: tf.random.Generator | None = None,
              batch_renorm: bool = False) -> keras.Sequential:
    """A stack of Dense hidden layers (no output layer): the trunk of every network.

    Each hidden layer is activation(x W + b), or with the options, in DroQ's order (Hiraoka et al. 2022),
    activation(LayerNorm(Dropout(x W + b))):
    layer_norm: LayerNorm(h) = gamma * (h - mean(h)) / sqrt(var(h) + 1e-3) + beta over the layer's units (Ba et al.
    2016); dropout > 0: GeneratorDropout(dropout) with masks from dropout_noise, at every call;
    batch_renorm: BatchRenorm on the input and after each hidden layer's activation, in sbx's CrossQ order
    (Bhatt et al. 2024): x -> BRN -> [Dense -> activation -> BRN] per hidden layer; the model's `training` flag
    reaches it (training: batch statistics, evaluation: running statistics); kernels from kernel_initializer.
    """
    act = activation_from_name(activation)
    if not layer_norm and not dropout and not batch_renorm:
        return keras.Sequential([keras.layers.Dense(units, activation=act, name=f"hidden_{i + 1}")
                                 for i, units in enumerate(hidden_layer_topo)], name=name)
    layers = [BatchRenorm(name="batch_renorm_0")] if batch_renorm else []
    for i, units in enumerate(hidden_layer_topo):
        layers.append(keras.layers.Dense(units, kernel_initializer=kernel_initializer(batch_renorm),
                                         name=f"hidden_{i + 1}"))
        if dropout:
            layers.append(GeneratorDropout(dropout, dropout_noise, name=f"dropout_{i + 1}"))
        if layer_norm:
            layers.append(keras.layers.LayerNormalization(epsilon=1e-3, name=f"layer_norm_{i + 1}"))
        layers.append(keras.layers.Activation(act, name=f"activation_{i + 1}"))
        if batch_renorm:
            layers.append(BatchRenorm(name=f"batch_renorm_{i + 1}"))
    return keras.Sequential(layers, name=name)


class BatchRenorm(keras.layers.Layer):
    """Batch renormalisation (Ioffe 2017) of (batch, units) inputs over the batch, with sbx's CrossQ settings.

    Training mode (`training=True`), from the batch's mean_B and var_B (biased) and the running mean and var:
        x^ = (x - mean_B) / sigma_B * r + d,   sigma_B = sqrt(var_B + eps),  sigma = sqrt(var + eps),
        r = stop_grad(clip(sigma_B / sigma, 1 / r_max, r_max)),  d = stop_grad(clip((mean_B - mean) / sigma, +-d_max)),
    with r = 1, d = 0 (plain batch norm) during the first warmup_steps training calls; then the running statistics
    move, mean <- momentum * mean + (1 - momentum) * mean_B (var likewise with var_B), and `steps` counts the call.
    Evaluation mode (training False or None): x^ = (x - mean) / sigma. Output: gamma * x^ + beta.
    gamma, beta are trainable; mean, var, steps are non-trainable variables of the layer (so of its model's
    checkpoint, never of trainable_variables).
    """

    def __init__(self, momentum: float = 0.99, epsilon: float = 1e-3, r_max: float = 3.0, d_max: float = 5.0,
                 warmup_steps: int = 100_000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.momentum, self.epsilon, self.r_max, self.d_max = momentum, epsilon, r_max, d_max
        self.warmup_steps = warmup_steps

    def build(self, input_shape) -> None:
        units = (int(input_shape[-1]),)
        self.gamma = self.add_weight(shape=units, initializer="ones", name="gamma")
        self.beta = self.add_weight(shape=units, initializer="zeros", name="beta")
        self.moving_mean = self.add_weight(shape=units, initializer="zeros", trainable=False, name="moving_mean")
        self.moving_variance = self.add_weight(shape=units, initializer="ones", trainable=False,
                                               name="moving_variance")
        self.steps = self.add_weight(shape=(), initializer="zeros", dtype="int64", trainable=False, name="steps")

    def scale_and_shift(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Evaluation mode as one affine map per unit, y = scale * x + shift: scale = gamma / sigma,
        shift = beta - scale * mean (what a following Dense layer can absorb)."""
        scale = self.gamma / tf.sqrt(self.moving_variance + self.epsilon)
        return scale, self.beta - scale * self.moving_mean

    def call(self, x: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        # Both modes as one affine map per unit, x * scale + shift: two full-size ops (and their gradients) instead
        # of the formula's six, which made CrossQ's update 13 % slower (1024-wide critics, batch 2 x 256).
        if not training:
            scale, shift = self.scale_and_shift()
            return x * scale + shift
        sigma = tf.sqrt(self.moving_variance + self.epsilon)
        batch_mean, batch_variance = tf.nn.moments(x, axes=[0])
        batch_sigma = tf.sqrt(batch_variance + self.epsilon)
        renorm = tf.cast(self.steps >= self.warmup_steps, x.dtype)  # 0 during the warm-up: r = 1, d = 0
        r = tf.stop_gradient(tf.clip_by_value(batch_sigma / sigma, 1.0 / self.r_max, self.r_max))
        d = tf.stop_gradient(tf.clip_by_value((batch_mean - self.moving_mean) / sigma, -self.d_max, self.d_max))
        r, d = renorm * r + (1.0 - renorm), renorm * d
        # gamma * ((x - mean_B) / sigma_B * r + d) + beta = x * scale + shift
        scale = self.gamma * r / batch_sigma
        shift = self.beta + self.gamma * d - scale * batch_mean
        self.moving_mean.assign(self.momentum * self.moving_mean + (1.0 - self.momentum) * batch_mean)
        self.moving_variance.assign(self.momentum * self.moving_variance + (1.0 - self.momentum) * batch_variance)
        self.steps.assign_add(1)
        return x * scale + shift

    def compute_output_shape(self, input_shape):
        return input_shape


class GeneratorDropout(keras.layers.Layer):
    """Dropout at every call, its masks keyed by a given tf.random.Generator: x * keep / (1 - rate), keep =
    splitmix64_uniform(shape of x, key) >= rate, one uint64 key drawn from the generator per call.

    Keras' Dropout keeps its seed state in a variable of its own that a checkpoint of the model does not hold
    and that the model's variable list (the polyak pairs) would include; the brain's generator is checkpointed
    with the run, so a resumed run draws the same masks.
    """

    def __init__(self, rate: float, noise: tf.random.Generator, **kwargs) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        # a partial of the generator's method: not tracked by Keras, so the generator stays the brain's
        self._draw_key = functools.partial(noise.uniform_full_int, [], tf.uint64)

    def call(self, x: tf.Tensor) -> tf.Tensor:
        keep = splitmix64_uniform(tf.shape(x), self._draw_key()) >= self.rate
        return tf.where(keep, x / (1.0 - self.rate), tf.zeros_like(x))

    def compute_output_shape(self, input_shape):
        return input_shape


SPLITMIX64_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment, 2^64 / the golden ratio, odd


def splitmix64_uniform(shape: tf.Tensor, key: tf.Tensor) -> tf.Tensor:
    """Uniform float32 numbers in [0, 1) on a 2^-24 grid, of the given shape: element i (row-major, from 1) is the
    i-th output z_i of SplitMix64 (Steele, Lea & Flood 2014) started at the uint64 `key`, z_i = mix64(key + i * gamma),
    as its top 24 bits / 2^24.

    Why not tf.random: in an XLA-compiled K-step update on a CPU, TensorFlow's random kernels cost about 1.4 ms
    per 65,536 numbers (8 times this counter-based hash), which made DroQ's dropout masks cost more than the rest of
    its update; the hash is integer arithmetic, exact on either side of XLA. Two calls share numbers only if their
    keys are within a call's length of each other in steps of gamma: about n / 2^63 for random 64-bit keys.
    """
    def mix64(z: tf.Tensor) -> tf.Tensor:
        def shift_xor(z: tf.Tensor, bits: int) -> tf.Tensor:
            return tf.bitwise.bitwise_xor(z, tf.bitwise.right_shift(z, tf.constant(bits, tf.uint64)))
        z = shift_xor(z, 30) * tf.constant(0xBF58476D1CE4E5B9, tf.uint64)
        z = shift_xor(z, 27) * tf.constant(0x94D049BB133111EB, tf.uint64)
        return shift_xor(z, 31)

    counter = tf.cast(tf.reshape(tf.range(1, tf.reduce_prod(shape) + 1, dtype=tf.int64), shape), tf.uint64)
    bits = mix64(key + counter * tf.constant(SPLITMIX64_GAMMA, tf.uint64))
    return tf.cast(tf.bitwise.right_shift(bits, tf.constant(40, tf.uint64)), tf.float32) * (1.0 / 2**24)


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
