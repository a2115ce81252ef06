"""SoftActorCriticBrain: the networks, their optimizers and ONE compiled update step.

Every variant of the spec (v1/v2/crossq, fixed or learned alpha, single/double/clipped Q
backup over 2 or N critics (REDQ's random subset), critic dropout and layer norm (DroQ),
reparametrized or REINFORCE actor gradient, entropy-only or frozen actor, delayed actor updates) is a
branch taken once, when the update is traced; the step itself stays one `tf.function`
(train_step), and K steps on K minibatches are one call of another (train_steps). The loss
formulas are the pure functions of SoftActorCritic/losses.py.

Notation: s obs, a act, r rew, d terminated, s' next_obs, a~ ~ pi(.|s) fresh actions,
eta reward_scaling, gamma discount_factor, tau target_smoothing_coefficient.
"""
from __future__ import annotations

import functools
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.nn_blocs import FusedAdam, polyak_update, variable_name
from blocAndTools.replay_buffer import Minibatch, row_width, transition_columns
from blocAndTools.seeding import stream_seed
from SoftActorCritic import losses
from SoftActorCritic.networks import (
    actor_weights,
    build_gaussian_policy,
    build_state_action_value,
    build_state_value,
    squashed_sample,
)
from SoftActorCritic.numpy_policy import NumpyActor


class SoftActorCriticBrain:
    """The five SAC v1 networks (phi, V_psi, frozen_V_psi, Q_theta_1, Q_theta_2), or those of a variant.

    v1 with q_backup single has no Q_theta_2, num_critics N > 2 adds Q_theta_3..N; v2 has no V_psi / frozen_V_psi
    but frozen_Q_theta_1..N; crossq has neither, no frozen network at all, and batch renormalisation in phi and the
    Q_theta (its running statistics are non-trainable variables of those models). Seeds the initial weights and the
    noises from spec.seed's streams (blocAndTools.seeding).
    """

    def __init__(self, spec: ExperimentSpec, obs_dim: int, act_dim: int, jit_compile_steps: bool = True) -> None:
        """jit_compile_steps: train_steps runs its K steps compiled by XLA (faster, see README "Benchmarks");
        False runs them on TensorFlow's executor, bit-equal to K train_step calls (XLA rounds differently)."""
        self.spec, self.obs_dim, self.act_dim = spec, obs_dim, act_dim
        keras.utils.set_random_seed(stream_seed(spec.seed, "networks"))
        topo, activation, norm = spec.theta_nn_h_layer_topo, spec.hidden_activation, spec.critic_layer_norm
        crossq = spec.variant == "crossq"  # batch renormalisation in phi and the critics, no frozen networks
        n_critics = 1 if spec.q_backup == "single" else spec.num_critics
        # the keys of the critics' dropout masks (DroQ), checkpointed; None without dropout
        self.dropout_noise = (tf.random.Generator.from_seed(stream_seed(spec.seed, "critic_dropout"))
                              if spec.critic_dropout else None)

        def build_critic(name: str) -> keras.Model:
            return build_state_action_value(obs_dim, act_dim, topo, activation, name, norm, spec.critic_dropout,
                                            self.dropout_noise, batch_renorm=crossq)

        self.phi = build_gaussian_policy(obs_dim, act_dim, spec.phi_nn_h_layer_topo, activation, batch_renorm=crossq)
        self.critics = [build_critic(f"Q_theta_{i + 1}") for i in range(n_critics)]
        self.Q_theta_1 = self.critics[0]
        self.Q_theta_2 = self.critics[1] if n_critics >= 2 else None
        if spec.variant == "v1":
            self.V_psi = build_state_value(obs_dim, spec.psi_nn_h_layer_topo, activation, "V_psi", norm)
            self.frozen_V_psi = build_state_value(obs_dim, spec.psi_nn_h_layer_topo, activation, "frozen_V_psi", norm)
            self.target_pairs = [(self.V_psi, self.frozen_V_psi)]
        elif spec.variant == "v2":
            self.frozen_critics = [build_critic(f"frozen_Q_theta_{i + 1}") for i in range(n_critics)]
            self.target_pairs = list(zip(self.critics, self.frozen_critics, strict=True))
        else:  # crossq: the critics are their own targets
            self.target_pairs = []
        for online, frozen in self.target_pairs:
            frozen.trainable = False
            polyak_update(online.trainable_variables, frozen.variables, tau=1.0)  # start as a hard copy

        if spec.learns_alpha:
            self.log_alpha = tf.Variable(0.0, name="log_alpha")  # alpha starts at 1
            self.target_entropy = float(-act_dim if spec.target_entropy is None else spec.target_entropy)

        # Each loss trains its own network with its own Adam, as in the paper's Algorithm 1.
        self.trained_by_loss: dict[str, list[tf.Variable]] = {
            f"q{i + 1}_loss": critic.trainable_variables for i, critic in enumerate(self.critics)}
        if spec.variant == "v1":
            self.trained_by_loss["v_loss"] = self.V_psi.trainable_variables
        if spec.actor_loss != "none":
            self.trained_by_loss["pi_loss"] = self.phi.trainable_variables
        if spec.learns_alpha:
            self.trained_by_loss["alpha_loss"] = [self.log_alpha]
        # With a delayed actor, v2 and crossq compute the actor's losses only on the updates that move it (v1's V
        # target needs the fresh actions on every update); the other updates report the values last computed.
        self.actor_skippable = spec.variant != "v1" and spec.actor_update_interval > 1
        if self.actor_skippable:
            self.actor_metric_names = ["pi_loss", *(["alpha_loss"] if spec.learns_alpha else []), "log_pi_mean"]
            self.last_actor_metrics = tf.Variable(tf.zeros(len(self.actor_metric_names)), trainable=False,
                                                  name="last_actor_metrics")
        # Adam's beta_1 is the spec's for the networks; log_alpha's keeps 0.9, as in sbx's CrossQ
        self.optimizers = {loss: FusedAdam(variables, self._learning_rate(loss),
                                           0.9 if loss == "alpha_loss" else spec.adam_beta1, name=f"adam_{loss}")
                           for loss, variables in self.trained_by_loss.items()}

        # Acting goes through a NumPy copy of phi: a TensorFlow call per action costs far more than the
        # forward pass. The update returns phi's new weights flat, so refreshing the copy costs one read.
        self.action_rng = np.random.default_rng(stream_seed(spec.seed, "action_noise"))  # eps of acting; checkpointed
        self._actor_shapes = [tuple(weight.shape) for weight in actor_weights(self.phi)]
        self._actor_splits = np.cumsum([int(np.prod(shape)) for shape in self._actor_shapes])[:-1]
        self._actor: NumpyActor | None = None  # None: rebuild before the next action
        self._new_actor_weights: tf.Tensor | None = None  # phi's weights flat, from the last train_step

        self._read_actor_weights = tf.function(self._actor_weights_flat, input_signature=[]).get_concrete_function()

        self.noise = tf.random.Generator.from_seed(stream_seed(spec.seed, "update_noise"))  # eps of the update
        self.updates = tf.Variable(0, dtype=tf.int64, name="updates")  # _update calls so far: progress.csv's updates
        # The update's one input is the minibatch's rows as the buffer stores them: binding and converting
        # one array costs less than five. Both updates are traced at their first call; the K steps of
        # train_steps run in one XLA cluster, faster than the same loop on TensorFlow's executor, while a
        # single step gains nothing from XLA: its launch costs what the fusion saves (README, "Benchmarks").
        self._row_width = row_width(obs_dim, act_dim, spec.n_step)  # n_step > 1: one more column, gamma^k
        self._compiled_train_steps = tf.function(self._train_steps_fn, input_signature=[
            tf.TensorSpec([None, None, self._row_width], tf.float32)])
        self._steps_function = tf.function(self._steps_fn, jit_compile=jit_compile_steps)

    @functools.cached_property
    def _compiled_train_step(self):
        """The single step as a concrete function (called without tf.function's dispatch), traced at its first
        call: a brain that never trains (a restore target, an exported policy's) never pays the trace."""
        return tf.function(self._train_step_fn, input_signature=[
            tf.TensorSpec([None, self._row_width], tf.float32)]).get_concrete_function()

    def _learning_rate(self, loss: str) -> float:
        return {"pi_loss": self.spec.actor_learning_rate,
                "alpha_loss": self.spec.alpha_learning_rate}.get(loss, self.spec.critic_learning_rate)

    # ----------------------------------------------------------------- acting
    @property
    def alpha(self) -> tf.Tensor:
        """Temperature: exp(log_alpha) when learned, else the spec's constant."""
        return tf.exp(self.log_alpha) if self.spec.learns_alpha else tf.constant(self.spec.alpha)

    def sample_action(self, obs: np.ndarray) -> np.ndarray:
        """Stochastic action a = tanh(mu + std * eps) in [-1, 1] from phi's current weights, eps from action_rng.

        One observation or a batch. Reads phi's weights at each call (one compiled read), so any
        write to phi (set_weights, a checkpoint restore) is seen; the training loop acts with
        numpy_actor() instead, whose copy train_step keeps current.
        """
        return self._current_actor().sample(obs, self.action_rng)

    def deterministic_action(self, obs: np.ndarray) -> np.ndarray:
        """tanh(mu) from phi's current weights: the action used for evaluation and deployment; one obs or a batch."""
        return self._current_actor()(obs)

    def _current_actor(self) -> NumpyActor:
        self._actor, self._new_actor_weights = None, self._read_actor_weights()
        return self.numpy_actor()

    def numpy_actor(self) -> NumpyActor:
        """phi in NumPy as of the last train_step (or actor_weights_changed()): the training loop's fast path.

        Rebuilt lazily from the weights train_step returned; code that writes phi in another way
        calls actor_weights_changed() (the agent does after a restore).
        """
        if self._actor is None:
            if self._new_actor_weights is None:
                self._new_actor_weights = self._read_actor_weights()
            flat = self._new_actor_weights.numpy()
            arrays = [part.reshape(shape) for part, shape in zip(np.split(flat, self._actor_splits),
                                                                 self._actor_shapes, strict=True)]
            self._actor, self._new_actor_weights = NumpyActor.from_arrays(arrays, self.spec.hidden_activation), None
        return self._actor

    def actor_weights_changed(self) -> None:
        """Call after writing phi's weights other than by train_step, before acting with numpy_actor()."""
        self._actor = self._new_actor_weights = None

    def non_finite_variables(self) -> list[str]:
        """The names of the variables a checkpoint holds (networks, optimizer moments, log_alpha) that hold a NaN
        or an infinity: a checkpoint or policy is written only when this is empty."""
        bad = []
        for key, trackable in self.trackables().items():
            for variable in [trackable] if isinstance(trackable, tf.Variable) else getattr(trackable, "variables", []):
                if tf.as_dtype(variable.dtype).is_floating and not np.isfinite(variable.numpy()).all():
                    name = variable_name(variable)
                    bad.append(name if name.startswith(key) else f"{key}/{name}")  # e.g. optimizer_q1_loss/m:0
        return bad

    # --------------------------------------------------------------- learning
    def train_step(self, minibatch: Minibatch) -> dict[str, tf.Tensor]:
        """One gradient step on every trained network, then the polyak target update when it is due.

        Returns the losses and metrics of the step as scalar tensors, and `all_finite`: False
        when any of them is NaN or infinite.
        """
        metrics, all_finite, self._new_actor_weights = self._compiled_train_step(minibatch.rows)
        self._actor = None
        return {**metrics, "all_finite": all_finite}

    def train_steps(self, minibatches: Minibatch) -> dict[str, tf.Tensor]:
        """K gradient steps in one compiled call, one per minibatch of `minibatches` (rows (K, batch, width),
        ReplayBuffer.sample(batch, num_batches=K)): the same as K train_step calls on minibatches[0], ...

        Returns the metrics averaged over the K steps, and `all_finite`: False when any metric of any step
        was NaN or infinite. One minibatch (K = 1, or rows of shape (batch, width)) is one train_step.
        """
        if minibatches.num_batches in (None, 1):
            return self.train_step(minibatches if minibatches.num_batches is None else minibatches[0])
        metrics, all_finite, self._new_actor_weights = self._compiled_train_steps(minibatches.rows)
        self._actor = None
        return {**metrics, "all_finite": all_finite}

    def _train_step_fn(self, rows: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """train_step's compiled body: (metrics, all_finite, phi's weights flat for the NumPy actor)."""
        metrics = self._update(rows, self._draw_noise(tf.shape(rows)[0]))
        return metrics, all_finite(metrics), self._actor_weights_flat()

    def _train_steps_fn(self, rows: tf.Tensor) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """train_steps' compiled body: the noise of the K steps, drawn in train_step's order (outside XLA, whose
        random kernels give other numbers), then the K steps."""
        num_steps, batch_size = tf.shape(rows)[0], tf.shape(rows)[1]
        draws = [tf.TensorArray(tf.float32, size=num_steps).write(0, noise) for noise in self._draw_noise(batch_size)]
        for k in tf.range(1, num_steps):
            draws = [draw.write(k, noise) for draw, noise in zip(draws, self._draw_noise(batch_size), strict=True)]
        return self._steps_function(rows, tuple(draw.stack() for draw in draws))

    def _steps_fn(self, rows: tf.Tensor,
                  noise: tuple[tf.Tensor, ...]) -> tuple[dict[str, tf.Tensor], tf.Tensor, tf.Tensor]:
        """K gradient steps in a loop, step k on rows[k] with the noise of step k (each of `noise` indexed by k);
        returns the metrics summed in step order and divided by K, all_finite over the K steps, and phi's weights
        flat."""
        metrics = self._update(rows[0], tuple(draw[0] for draw in noise))
        finite = all_finite(metrics)

        def next_step(k, sums, finite):
            step = self._update(rows[k], tuple(draw[k] for draw in noise))
            return k + 1, {key: sums[key] + step[key] for key in sums}, tf.logical_and(finite, all_finite(step))

        num_steps = tf.shape(rows)[0]
        _, sums, finite = tf.while_loop(lambda k, *_: k < num_steps, next_step, (tf.constant(1), metrics, finite))
        count = tf.cast(num_steps, tf.float32)
        return {key: total / count for key, total in sums.items()}, finite, self._actor_weights_flat()

    def _draw_noise(self, batch_size: tf.Tensor) -> tuple[tf.Tensor, ...]:
        """The update's noise, in this order: eps of a~ ~ pi(.|s) (num_actor_samples * batch, act_dim), next_eps of
        a' ~ pi(.|s') (batch, act_dim), and with critic_subset the uniform draws (N,) that pick REDQ's subset."""
        eps = self.noise.normal([self.spec.num_actor_samples * batch_size, self.act_dim])
        next_eps = self.noise.normal([batch_size, self.act_dim])
        if self.spec.critic_subset is None:
            return eps, next_eps
        return eps, next_eps, self.noise.uniform([len(self.critics)])

    def _update(self, rows: tf.Tensor, noise: tuple[tf.Tensor, ...]) -> dict[str, tf.Tensor]:
        """One SAC update on the minibatch `rows` (batch, width) with the given noise (_draw_noise's): a gradient step
        on every trained network (on phi and log_alpha only when the update's number is a multiple of
        actor_update_interval, counting from 0), then the target update when it is due; counts itself in `updates`,
        returns its metrics (every loss at the weights before the update, the delayed ones too)."""
        obs, act, rew, next_obs, terminated = transition_columns(rows, self.obs_dim, self.act_dim)
        discount = rows[:, -1] if self.spec.n_step > 1 else None  # n-step rows: gamma^k per row
        actor_due = self.updates % self.spec.actor_update_interval == 0
        if self.actor_skippable:
            metrics = self._update_skipping_the_actor(obs, act, rew, next_obs, terminated, noise, discount, actor_due)
        else:
            with tf.GradientTape(persistent=True) as tape:
                metrics = self.compute_losses(obs, act, rew, next_obs, terminated, *noise, discount=discount)
            for loss, variables in self.trained_by_loss.items():
                descend = functools.partial(self._descend, tape, loss, metrics[loss], variables)
                if loss in ACTOR_LOSSES and self.spec.actor_update_interval > 1:
                    tf.cond(actor_due, descend, lambda: None)  # v1: only the backward pass waits
                else:
                    descend()
            del tape

        # Targets move every target_update_interval steps; tau = 0 on the other steps leaves them exactly
        # as they are, and keeps the graph free of control flow.
        step = self.updates.assign_add(1)
        tau = tf.where(step % self.spec.target_update_interval == 0, self.spec.target_smoothing_coefficient, 0.0)
        for online, frozen in self.target_pairs:
            polyak_update(online.trainable_variables, frozen.variables, tau)
        return metrics

    def _update_skipping_the_actor(self, obs, act, rew, next_obs, terminated, noise, discount,
                                   actor_due: tf.Tensor) -> dict[str, tf.Tensor]:
        """_update's gradient steps with a delayed actor (v2, crossq): the actor's losses are computed only when it
        moves (its forward pass through phi and every critic is a third of a step's work); on the other updates
        they repeat their last values, as sbx does. The losses are the same as compute_losses', at the weights
        before the update: a' and alpha are read before the actor moves, the critics move after."""
        eps, next_eps, *subset_uniform = noise
        in_subset = self._subset(*subset_uniform)
        alpha = self.alpha
        next_act, next_log_pi = self._next_action(next_obs, next_eps)

        def actor_step() -> dict[str, tf.Tensor]:
            with tf.GradientTape(persistent=True) as tape:
                metrics = self._actor_losses(obs, eps, in_subset, alpha)[0]
            for loss in ACTOR_LOSSES:
                if loss in self.trained_by_loss:
                    self._descend(tape, loss, metrics[loss], self.trained_by_loss[loss])
            self.last_actor_metrics.assign(tf.stack([metrics[key] for key in self.actor_metric_names]))
            return metrics

        def last_values() -> dict[str, tf.Tensor]:
            return dict(zip(self.actor_metric_names, tf.unstack(self.last_actor_metrics), strict=True))

        actor_metrics = tf.cond(actor_due, actor_step, last_values)
        with tf.GradientTape(persistent=True) as tape:
            metrics = self._critic_losses(obs, act, rew, next_obs, terminated, next_act, next_log_pi, in_subset,
                                          discount, alpha)
        for loss, variables in self.trained_by_loss.items():
            if loss not in ACTOR_LOSSES:
                self._descend(tape, loss, metrics[loss], variables)
        del tape
        return {**metrics, **actor_metrics, "alpha": alpha}

    def _descend(self, tape: tf.GradientTape, loss: str, value: tf.Tensor, variables: list[tf.Variable]) -> None:
        """One step of the loss's Adam on its variables, along the gradient of its value recorded on tape."""
        gradients = tape.gradient(value, variables)
        self.optimizers[loss].apply_gradients(zip(gradients, variables, strict=True))

    def _actor_weights_flat(self) -> tf.Tensor:
        """phi's weights as one flat vector, in NumpyActor.from_arrays' order (one read instead of one per variable);
        crossq: its batch renormalisation folded in (networks.actor_weights), phi in evaluation mode."""
        return tf.concat([tf.reshape(weight, [-1]) for weight in actor_weights(self.phi)], 0)

    def compute_losses(self, obs: tf.Tensor, act: tf.Tensor, rew: tf.Tensor, next_obs: tf.Tensor,
                       terminated: tf.Tensor, eps: tf.Tensor, next_eps: tf.Tensor,
                       subset_uniform: tf.Tensor | None = None, discount: tf.Tensor | None = None
                       ) -> dict[str, tf.Tensor]:
        """Every loss of one gradient step (keys of `trained_by_loss`) and the scalar metrics, from given noise:
        eps (num_actor_samples * batch, act_dim) for a~ ~ pi(.|s), next_eps (batch, act_dim) for a' ~ pi(.|s'),
        and with critic_subset the uniform draws (N,) that pick the critics of the targets' min.
        discount: the bootstrap discount per row, gamma^k of n-step rows (batch,); None: the spec's gamma.

        The networks are evaluated here; the formulas are the pure functions of SoftActorCritic/losses.py.
        crossq: a network called in training mode (batch statistics) moves its running statistics; each network is
        evaluated with its running statistics (evaluation mode) before that, so every loss sees the same ones.
        """
        obs, act, rew, next_obs, terminated = (tf.convert_to_tensor(x, tf.float32)
                                                for x in (obs, act, rew, next_obs, terminated))
        in_subset, alpha = self._subset(subset_uniform), self.alpha
        next_act, next_log_pi = self._next_action(next_obs, next_eps) if self.spec.variant != "v1" else (None, None)
        actor_metrics, log_pi, q_fresh = self._actor_losses(obs, eps, in_subset, alpha)
        metrics = self._critic_losses(obs, act, rew, next_obs, terminated, next_act, next_log_pi, in_subset,
                                      discount, alpha)
        if self.spec.variant == "v1":
            # J_V(psi) = 0.5 * mean((V_psi(s) - mean_k[Q(s, a~) - alpha * log pi(a~|s)])^2), Q the backup value
            v = self.V_psi(obs)[:, 0]
            q_backup = losses.q_backup(q_fresh, self.spec.q_backup, in_subset)[0]
            metrics["v_loss"] = losses.value_loss(v, q_backup, log_pi, alpha, self.spec.num_actor_samples)
            metrics["v_mean"] = tf.reduce_mean(v)
        return {**metrics, **actor_metrics, "alpha": alpha}

    def _subset(self, subset_uniform: tf.Tensor | None = None) -> tf.Tensor | None:
        """REDQ's critics of this update's target min (a boolean mask (N,)), from its uniform draws; None: all."""
        return None if subset_uniform is None else losses.random_subset(subset_uniform, self.spec.critic_subset)

    def _next_action(self, next_obs: tf.Tensor, next_eps: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """a' ~ pi(.|s') and log pi(a'|s') for the v2 and crossq targets (crossq: phi in evaluation mode, as sbx)."""
        next_mu, next_log_std = self.phi(next_obs)
        return squashed_sample(next_mu, next_log_std, next_eps)

    def _actor_losses(self, obs: tf.Tensor, eps: tf.Tensor, in_subset: tf.Tensor | None, alpha: tf.Tensor
                      ) -> tuple[dict[str, tf.Tensor], tf.Tensor, list[tf.Tensor]]:
        """The actor's and the temperature's losses on num_actor_samples fresh actions a~ ~ pi(.|s) per state (rows
        ordered (sample k, state i)), with log pi(a~|s) and every critic's Q(s, a~) (v1's V target needs them).
        crossq: phi in training mode (batch statistics of s), the critics in evaluation mode, as sbx."""
        spec, n_samples = self.spec, self.spec.num_actor_samples
        mu, log_std = self.phi(obs, training=spec.variant == "crossq")
        new_act, log_pi = squashed_sample(tf.tile(mu, [n_samples, 1]), tf.tile(log_std, [n_samples, 1]), eps,
                                          reparametrize=spec.actor_gradient == "reparametrize")
        obs_k = tf.tile(obs, [n_samples, 1])
        q_fresh = [critic([obs_k, new_act])[:, 0] for critic in self.critics]
        q_new = losses.policy_value(q_fresh, spec.q_backup, in_subset)  # the actor's judge of a~
        # J_pi(phi) = mean(alpha * log pi(a~|s) - Q(s, a~))   (REINFORCE: its score-function surrogate)
        metrics = {"pi_loss": losses.actor_loss(log_pi, q_new if spec.actor_loss == "soft_q" else None, alpha,
                                                reparametrize=spec.actor_gradient == "reparametrize")}
        if spec.learns_alpha:
            # J(alpha) = -mean(log_alpha * (log pi(a~|s) + target_entropy))
            metrics["alpha_loss"] = losses.temperature_loss(self.log_alpha, log_pi, self.target_entropy)
        metrics["log_pi_mean"] = tf.reduce_mean(log_pi)
        return metrics, log_pi, q_fresh

    def _critic_losses(self, obs: tf.Tensor, act: tf.Tensor, rew: tf.Tensor, next_obs: tf.Tensor,
                       terminated: tf.Tensor, next_act: tf.Tensor | None, next_log_pi: tf.Tensor | None,
                       in_subset: tf.Tensor | None, discount: tf.Tensor | None, alpha: tf.Tensor
                       ) -> dict[str, tf.Tensor]:
        """Each critic's loss against its target y_i, and its mean Q; v1: frozen V's mean too."""
        spec, crossq, metrics = self.spec, self.spec.variant == "crossq", {}
        discount = spec.discount_factor if discount is None else tf.convert_to_tensor(discount, tf.float32)
        # V'(s') of each critic's target: frozen_V_psi(s') (v1), or Q'(s', a') - alpha * log pi(a'|s') with Q' the
        # frozen critics (v2) or the critics themselves (crossq)
        if spec.variant == "v1":
            frozen_v = self.frozen_V_psi(next_obs)[:, 0]
            next_values = [frozen_v] * len(self.critics)
            metrics["frozen_v_mean"] = tf.reduce_mean(frozen_v)
        else:
            if crossq:
                # CrossQ: each critic evaluates (s, a) and (s', a') in ONE training-mode forward pass, so its batch
                # renormalisation normalises both with the statistics of the joint batch; the target half goes
                # into y, which q_target stops the gradient of
                joint_obs, joint_act = tf.concat([obs, next_obs], 0), tf.concat([act, next_act], 0)
                q_data, next_q = zip(*(tf.split(critic([joint_obs, joint_act], training=True)[:, 0], 2)
                                       for critic in self.critics), strict=True)
            elif in_subset is None:
                next_q = [frozen([next_obs, next_act])[:, 0] for frozen in self.frozen_critics]
            else:  # REDQ: only the subset's frozen critics run (M of N); q_backup masks the others out of the min
                skipped = tf.fill(tf.shape(rew), float("inf"))
                next_q = [tf.cond(in_subset[i], lambda frozen=frozen: frozen([next_obs, next_act])[:, 0],
                                  lambda: skipped) for i, frozen in enumerate(self.frozen_critics)]
            next_values = [losses.soft_value(q, next_log_pi, alpha)
                           for q in losses.q_backup(next_q, spec.q_backup, in_subset)]

        # J_Q(theta_i) = 0.5 * mean((Q_theta_i(s, a) - y_i)^2),  y_i = eta * r + gamma * (1 - d) * V'_i(s')
        # (n-step rows: r the discounted sum of k rewards, gamma^k in place of gamma, s' the k-th next state)
        for i, critic in enumerate(self.critics):
            y = losses.q_target(rew, terminated, next_values[i], spec.reward_scaling, discount)
            q = q_data[i] if crossq else critic([obs, act])[:, 0]
            metrics[f"q{i + 1}_loss"] = losses.critic_loss(q, y)
            metrics[f"q{i + 1}_mean"] = tf.reduce_mean(q)
        return metrics

    # -------------------------------------------------------------- checkpoint
    def trackables(self) -> dict[str, Any]:
        """Everything of the brain a tf.train.Checkpoint must hold to resume exactly."""
        # `updates` keeps the key "gradient_step", its name when the first checkpoints were written: they still restore
        objects: dict[str, Any] = {"phi": self.phi, "noise": self.noise, "gradient_step": self.updates}
        for online, frozen in self.target_pairs:
            objects[online.name], objects[frozen.name] = online, frozen
        for critic in self.critics:
            objects[critic.name] = critic
        objects.update({f"optimizer_{loss}": optimizer for loss, optimizer in self.optimizers.items()})
        if self.dropout_noise is not None:
            objects["critic_dropout_noise"] = self.dropout_noise
        if self.spec.learns_alpha:
            objects["log_alpha"] = self.log_alpha
        if self.actor_skippable:
            objects["last_actor_metrics"] = self.last_actor_metrics
        return objects


ACTOR_LOSSES = ("pi_loss", "alpha_loss")  # the losses that wait for actor_update_interval
# trackables that the checkpoints of older versions lack: such a checkpoint still restores (RunCheckpointer)
ADDED_LATER = ("last_actor_metrics",)


def all_finite(metrics: dict[str, tf.Tensor]) -> tf.Tensor:
    """The divergence guard's input: one boolean, False when any metric is NaN or infinite (cheap to read back)."""
    return tf.reduce_all([tf.math.is_finite(value) for value in metrics.values()])
