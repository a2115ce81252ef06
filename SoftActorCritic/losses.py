"""The SAC losses, one pure function per quantity: tensors in, one tensor out, no network and no state.

Notation (README "Architecture"): s obs, a act, r rew, d terminated, s' next_obs, a~ ~ pi(.|s) fresh
actions, a' ~ pi(.|s'), eta reward_scaling, gamma discount_factor, alpha the temperature. Q, V and
log pi values have shape (batch,), or (num_actor_samples * batch,) for the fresh actions a~, whose
rows are ordered (sample k, state i). The brain (SoftActorCriticBrain.compute_losses) evaluates the
networks and composes these functions; gradients flow where the formulas say, stop_grad elsewhere.
"""
from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf


def q_backup(q_values: Sequence[tf.Tensor], rule: str, in_subset: tf.Tensor | None = None) -> list[tf.Tensor]:
    """The value each critic learns from, by the spec's q_backup rule, given Q_1..Q_N at the same (s, a):

    single: [Q_1];  double: [Q_2, Q_1] (each critic learns from the other);
    clipped: [min_i Q_i] for every critic, the min over the critics in_subset (a boolean (N,), REDQ) when given.
    """
    if rule == "single":
        return [q_values[0]]
    if rule == "double":
        return [q_values[1], q_values[0]]
    q = tf.stack(q_values)
    if in_subset is not None:
        q = tf.where(in_subset[:, None], q, tf.constant(float("inf")))
    return [tf.reduce_min(q, axis=0)] * len(q_values)


def policy_value(q_values: Sequence[tf.Tensor], rule: str, in_subset: tf.Tensor | None = None) -> tf.Tensor:
    """Q(s, a~), the value the actor judges a~ by: Q_1 (single), min_i Q_i (clipped), and the mean of all the
    critics with double (of Q_1, Q_2) or with a REDQ subset (in_subset given: its min is for the targets only)."""
    if rule == "double" or in_subset is not None:
        return tf.add_n(list(q_values)) / len(q_values)
    return q_backup(q_values, rule)[0]


def random_subset(uniform: tf.Tensor, size: int) -> tf.Tensor:
    """REDQ's random subset: a boolean (N,), True for the `size` critics whose uniform draws (N,) are the
    smallest, i.e. a subset drawn uniformly among those of that size."""
    return uniform <= tf.sort(uniform)[size - 1]


def soft_value(q: tf.Tensor, log_pi: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    """The soft state value of one sampled action: V(s) = Q(s, a) - alpha * log pi(a|s)."""
    return q - alpha * log_pi


def q_target(rew: tf.Tensor, terminated: tf.Tensor, next_value: tf.Tensor, reward_scaling: float,
             discount_factor: float | tf.Tensor) -> tf.Tensor:
    """y = stop_grad(eta * r + discount * (1 - d) * V'(s')): only `terminated` stops the bootstrap (a time-limit
    truncation still bootstraps). V'(s') is frozen_V_psi(s') in v1, soft_value(Q'(s', a'), log pi(a'|s')) in v2.

    discount_factor: gamma (one-step rows), or the per-row gamma^k of n-step rows, whose r is then the discounted
    sum of k rewards and s' the k-th next state (ReplayBuffer.sample with n_step)."""
    return tf.stop_gradient(reward_scaling * rew + discount_factor * (1.0 - terminated) * next_value)


def critic_loss(q: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """J_Q(theta_i) = 0.5 * mean((Q_theta_i(s, a) - y)^2), a from the buffer."""
    return 0.5 * tf.reduce_mean(tf.square(q - y))


def value_loss(v: tf.Tensor, q_new: tf.Tensor, log_pi: tf.Tensor, alpha: tf.Tensor,
               num_actor_samples: int) -> tf.Tensor:
    """J_V(psi) = 0.5 * mean((V_psi(s) - stop_grad(mean_k[Q(s, a~_k) - alpha * log pi(a~_k|s)]))^2).

    a~ from the current policy, not the buffer; the mean runs over the num_actor_samples actions of each state.
    """
    v_target = tf.reduce_mean(tf.reshape(soft_value(q_new, log_pi, alpha), [num_actor_samples, -1]), axis=0)
    return 0.5 * tf.reduce_mean(tf.square(v - tf.stop_gradient(v_target)))


def actor_loss(log_pi: tf.Tensor, q_new: tf.Tensor | None, alpha: tf.Tensor, reparametrize: bool) -> tf.Tensor:
    """J_pi(phi) with f = alpha * log pi(a~|s) - Q(s, a~)   (q_new None, the entropy_only actor: f = alpha * log pi).

    reparametrize: mean(f), the gradient flowing through a~ = tanh(mu + std * eps);
    REINFORCE: mean(log pi(a~|s) * stop_grad(f)), whose gradient is the score-function estimate.
    """
    f = alpha * log_pi if q_new is None else alpha * log_pi - q_new
    if reparametrize:
        return tf.reduce_mean(f)
    return tf.reduce_mean(log_pi * tf.stop_gradient(f))


def temperature_loss(log_alpha: tf.Tensor, log_pi: tf.Tensor, target_entropy: float) -> tf.Tensor:
    """J(alpha) = -mean(log_alpha * stop_grad(log pi(a~|s) + target_entropy)): alpha rises while the policy's
    entropy -log pi is below the target, and falls while it is above."""
    return -tf.reduce_mean(log_alpha * tf.stop_gradient(log_pi + target_entropy))
