"""The SAC networks and the squashed Gaussian policy math.

phi:         s -> (mu, log_std), log_std clipped to [-20, 2]         (the Gaussian actor)
V_psi:       s -> V(s)                                                (soft state value, SAC v1)
Q_theta_i:   (s, a) -> Q(s, a)                                        (the N soft Q functions, twins by default)
(crossq: phi and the Q_theta with batch renormalisation, see blocAndTools.nn_blocs.build_mlp)
"""
from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from blocAndTools.nn_blocs import BatchRenorm, build_mlp, kernel_initializer
from SoftActorCritic.numpy_policy import LOG_STD_MAX, LOG_STD_MIN

LOG_2 = float(np.log(2.0))
HALF_LOG_2PI = float(0.5 * np.log(2.0 * np.pi))


def build_gaussian_policy(obs_dim: int, act_dim: int, hidden_layer_topo: Sequence[int],
                          activation: str, name: str = "phi", batch_renorm: bool = False) -> keras.Model:
    """phi: a trunk MLP with two linear heads, mu and log_std (clipped to [LOG_STD_MIN, LOG_STD_MAX]);
    batch_renorm: see build_mlp."""
    obs = keras.Input(shape=(obs_dim,), name="obs")
    features = build_mlp(hidden_layer_topo, activation, name=f"{name}_mlp", batch_renorm=batch_renorm)(obs)
    init = kernel_initializer(batch_renorm)
    mu = keras.layers.Dense(act_dim, kernel_initializer=init, name="policy_mu")(features)
    log_std = keras.layers.Dense(act_dim, kernel_initializer=init, name="policy_log_std")(features)
    log_std = keras.ops.clip(log_std, LOG_STD_MIN, LOG_STD_MAX)
    return keras.Model(obs, [mu, log_std], name=name)


def actor_weights(phi: keras.Model) -> list[tf.Tensor]:
    """phi's Dense kernels and biases in the order NumpyActor.from_arrays reads them (trunk layers, then policy_mu,
    policy_log_std), in evaluation mode: each BatchRenorm is folded into the Dense layer(s) after it.

    In evaluation mode a BatchRenorm is y = scale * x + shift per unit (BatchRenorm.scale_and_shift), so the next
    Dense layer computes y W + b = x (scale[:, None] * W) + (shift W + b): NumpyActor, the policy file and the
    export need no normalisation layer. Without batch renormalisation these are phi's variables themselves.
    """
    weights, before = [], None  # before: the (scale, shift) of the BatchRenorm the next Dense layer absorbs
    for layer in phi.get_layer(f"{phi.name}_mlp").layers:
        if isinstance(layer, BatchRenorm):
            before = layer.scale_and_shift()
        elif isinstance(layer, keras.layers.Dense):
            weights, before = weights + _folded(layer, before), None
    for head in ("policy_mu", "policy_log_std"):  # the trunk's last BatchRenorm feeds both heads
        weights += _folded(phi.get_layer(head), before)
    return weights


def _folded(dense: keras.layers.Dense, before: tuple[tf.Tensor, tf.Tensor] | None) -> list:
    """[kernel, bias] of `dense`, absorbing the affine map y = scale * x + shift before it when given."""
    if before is None:
        return [dense.kernel, dense.bias]
    scale, shift = before
    kernel = tf.convert_to_tensor(dense.kernel)
    return [scale[:, None] * kernel, tf.tensordot(shift, kernel, axes=1) + dense.bias]


def build_state_value(obs_dim: int, hidden_layer_topo: Sequence[int], activation: str,
                      name: str, layer_norm: bool = False) -> keras.Model:
    """V_psi (and frozen_V_psi): s -> V, shape (batch, 1); layer_norm: see build_mlp."""
    obs = keras.Input(shape=(obs_dim,), name="obs")
    features = build_mlp(hidden_layer_topo, activation, name=f"{name}_mlp", layer_norm=layer_norm)(obs)
    return keras.Model(obs, keras.layers.Dense(1, name="value")(features), name=name)


def build_state_action_value(obs_dim: int, act_dim: int, hidden_layer_topo: Sequence[int], activation: str, name: str,
                             layer_norm: bool = False, dropout: float = 0.0,
                             dropout_noise: tf.random.Generator | None = None, batch_renorm: bool = False
                             ) -> keras.Model:
    """Q_theta_i: [s, a] -> Q, shape (batch, 1); s and a are concatenated at the input; layer_norm, dropout,
    batch_renorm: see build_mlp."""
    obs = keras.Input(shape=(obs_dim,), name="obs")
    act = keras.Input(shape=(act_dim,), name="act")
    features = build_mlp(hidden_layer_topo, activation, name=f"{name}_mlp", layer_norm=layer_norm, dropout=dropout,
                         dropout_noise=dropout_noise, batch_renorm=batch_renorm)(keras.layers.Concatenate()([obs, act]))
    value = keras.layers.Dense(1, kernel_initializer=kernel_initializer(batch_renorm), name="value")(features)
    return keras.Model([obs, act], value, name=name)


def tanh_log_det_jacobian(u: tf.Tensor) -> tf.Tensor:
    """sum_j log(1 - tanh(u_j)^2), in the stable form 2 * (log 2 - u - softplus(-2u)).

    Computed from the pre-squash u, never from a = tanh(u): atanh(+-1) is infinite.
    """
    return tf.reduce_sum(2.0 * (LOG_2 - u - tf.nn.softplus(-2.0 * u)), axis=-1)


def squashed_log_prob(u: tf.Tensor, eps: tf.Tensor, log_std: tf.Tensor) -> tf.Tensor:
    """log pi(a|s) for a = tanh(u), u = mu + std * eps:  log N(u; mu, std) - sum log(1 - tanh(u)^2).

    log N(u; mu, std) = sum(-0.5 * eps^2 - log_std - 0.5 * log(2 pi)), from eps = (u - mu) / std itself:
    at the log_std floor (std = 2e-9) u rounds to mu in float32, and (u - mu) / std would be 0.
    """
    gaussian = tf.reduce_sum(-0.5 * tf.square(eps) - log_std - HALF_LOG_2PI, axis=-1)
    return gaussian - tanh_log_det_jacobian(u)


def squashed_sample(mu: tf.Tensor, log_std: tf.Tensor, eps: tf.Tensor,
                    reparametrize: bool = True) -> tuple[tf.Tensor, tf.Tensor]:
    """(a, log pi(a|s)) with u = mu + std * eps and a = tanh(u).

    reparametrize=False stops the gradient at u, as the REINFORCE estimator needs: the
    gradient then reaches phi only through log pi's dependence on mu and log_std.
    """
    std = tf.exp(log_std)
    u = mu + std * eps
    if not reparametrize:
        # u is a constant sample, so eps = (u - mu) / std depends on mu and log_std: the score
        # d log N / d mu = eps / std, d log N / d log_std = eps^2 - 1. The added terms are exactly 0 and
        # give eps that gradient, d eps = -(d mu) / std - eps * d log_std, without computing u - mu.
        u = tf.stop_gradient(u)
        eps = eps + (tf.stop_gradient(mu) - mu) / std + eps * (tf.stop_gradient(log_std) - log_std)
    return tf.tanh(u), squashed_log_prob(u, eps, log_std)
