"""SoftActorCriticBrain: each loss against a NumPy hand computation, whole updates against an independent
TensorFlow one (own tapes, Adam written out), the target update, learned alpha's direction, REINFORCE's actor
gradient against the reparametrized one, acting."""
import os
import shutil
import tempfile
import unittest
from unittest import mock

import keras
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_probability as tfp

from blocAndTools import ExperimentSpec, Minibatch, ReplayBuffer
from blocAndTools.nn_blocs import BatchRenorm
from SoftActorCritic import SoftActorCriticBrain
from SoftActorCritic.metrics import UPDATE_METRICS
from tests.helpers import FAST
from tests.test_networks import renorm_by_hand

OBS_DIM, ACT_DIM, BATCH = 3, 2, 5
TINY = dict(phi_nn_h_layer_topo=(4,), psi_nn_h_layer_topo=(4,), theta_nn_h_layer_topo=(4,),
            min_pool_size=8, batch_size_in_ts=8, reward_scaling=2.0, alpha=0.3, discount_factor=0.9)


def tiny_brain(**changes) -> SoftActorCriticBrain:
    return SoftActorCriticBrain(ExperimentSpec(**{**TINY, **changes}), OBS_DIM, ACT_DIM)


def filled_buffer(seed: int = 0, size: int = 100) -> ReplayBuffer:
    rng = np.random.default_rng(seed)
    buffer = ReplayBuffer(size, OBS_DIM, ACT_DIM, seed=seed)
    buffer.add_batch(rng.normal(size=(size, OBS_DIM)), rng.uniform(-1, 1, (size, ACT_DIM)), rng.normal(size=size),
                     rng.normal(size=(size, OBS_DIM)), rng.uniform(size=size) < 0.3)
    return buffer


def chained_buffer(seed: int = 0, size: int = 100) -> ReplayBuffer:
    """Episodes of 10 transitions that follow one another (next_obs = the next obs), a few terminated: its n-step
    rows sum several rewards."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(size + 1, OBS_DIM))
    next_obs = states[1:].copy()
    next_obs[9::10] = rng.normal(size=(size // 10, OBS_DIM))  # each episode's end: the next obs is a reset obs
    buffer = ReplayBuffer(size, OBS_DIM, ACT_DIM, seed=seed)
    buffer.add_batch(states[:-1], rng.uniform(-1, 1, (size, ACT_DIM)), rng.normal(size=size), next_obs,
                     rng.uniform(size=size) < 0.05)
    return buffer


def checkpointed_values(brain: SoftActorCriticBrain) -> dict[str, np.ndarray]:
    """Every value a checkpoint of the brain holds (weights, Adam moments, counters, noise state), by name."""
    values = {}
    for key, trackable in brain.trackables().items():
        if isinstance(trackable, tf.random.Generator):
            values[key] = trackable.state.numpy()
        else:
            for i, variable in enumerate([trackable] if isinstance(trackable, tf.Variable) else trackable.variables):
                values[f"{key}/{i}"] = variable.numpy()
    return values


def restored_copy(test: unittest.TestCase, brain: SoftActorCriticBrain) -> SoftActorCriticBrain:
    """A new brain of the same spec with `brain`'s checkpoint (every trackable) restored into it."""
    folder = tempfile.mkdtemp()
    test.addCleanup(shutil.rmtree, folder)
    path = tf.train.Checkpoint(**brain.trackables()).write(os.path.join(folder, "ckpt"))
    restored = SoftActorCriticBrain(brain.spec, brain.obs_dim, brain.act_dim)
    tf.train.Checkpoint(**restored.trackables()).read(path).assert_existing_objects_matched()
    return restored


def assert_same_step(brain: SoftActorCriticBrain, other: SoftActorCriticBrain, minibatch: Minibatch) -> None:
    """A train_step on `minibatch` gives the same metrics, bit for bit, in both brains."""
    expected, got = brain.train_step(minibatch), other.train_step(minibatch)
    for key in expected:
        np.testing.assert_array_equal(got[key].numpy(), expected[key].numpy(), err_msg=key)


def random_batch(rng: np.random.Generator, size: int = BATCH) -> Minibatch:
    f32 = np.float32
    return Minibatch(obs=rng.normal(size=(size, OBS_DIM)).astype(f32),
                     act=rng.uniform(-1, 1, size=(size, ACT_DIM)).astype(f32),
                     rew=rng.normal(size=size).astype(f32),
                     next_obs=rng.normal(size=(size, OBS_DIM)).astype(f32),
                     terminated=(rng.uniform(size=size) < 0.4).astype(f32))


# ---------------------------------------------------------------- NumPy reference, written from the paper
def mlp(weights, x):
    """Forward pass of Dense(relu)... Dense(linear) given Keras' [kernel, bias, ...] weight list."""
    for i in range(0, len(weights) - 2, 2):
        x = np.maximum(x @ weights[i] + weights[i + 1], 0.0)
    return x @ weights[-2] + weights[-1]


def policy(brain, obs, eps, heads=None):
    """(a, log pi(a|s)) in float64 with the textbook formula log N(u) - sum log(1 - tanh(u)^2).

    heads: {"policy_mu" or "policy_log_std": [kernel, bias]} used instead of phi's weights of that layer."""
    def layer(name):
        if heads is not None and name in heads:
            return [np.asarray(v, np.float64) for v in heads[name]]
        return [v.astype(np.float64) for v in brain.phi.get_layer(name).get_weights()]
    trunk, mu_head, log_std_head = layer("phi_mlp"), layer("policy_mu"), layer("policy_log_std")
    hidden = np.maximum(obs @ trunk[0] + trunk[1], 0.0)
    mu, log_std = hidden @ mu_head[0] + mu_head[1], np.clip(hidden @ log_std_head[0] + log_std_head[1], -20, 2)
    u = mu + np.exp(log_std) * eps
    log_normal = -0.5 * ((u - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    log_pi = np.sum(log_normal - np.log(1 - np.tanh(u) ** 2), axis=-1)
    return np.tanh(u), log_pi


def q_value(model, obs, act):
    return mlp([v.astype(np.float64) for v in model.get_weights()], np.concatenate([obs, act], axis=1))[:, 0]


def v_value(model, obs):
    return mlp([v.astype(np.float64) for v in model.get_weights()], obs)[:, 0]


def reference_losses(brain, batch, eps, next_eps, heads=None, subset=None, discount=None):
    """Every loss of one step, and mean log pi, in float64 (heads: phi's head weights to use, see policy();
    subset: the indices of REDQ's critics for the targets' min; discount: the per-row gamma^k of n-step rows,
    None: the spec's gamma)."""
    spec, alpha = brain.spec, float(brain.alpha)
    obs, act, rew, next_obs, d = (np.asarray(x, np.float64) for x in batch)
    n_samples = spec.num_actor_samples  # eps holds n_samples blocks of one action per state
    obs_k = np.tile(obs, (n_samples, 1))
    new_act, log_pi = policy(brain, obs_k, eps, heads)
    q_new = [q_value(c, obs_k, new_act) for c in brain.critics]
    chosen = range(len(q_new)) if subset is None else subset
    q_min = np.min([q_new[i] for i in chosen], axis=0) if spec.q_backup == "clipped" else None
    q_backup = q_new[0] if spec.q_backup == "single" else q_min  # v1's V target
    q_pi = np.mean(q_new, axis=0) if spec.q_backup == "double" or subset is not None else q_backup  # the actor's
    objective = alpha * log_pi - (q_pi if spec.actor_loss == "soft_q" else 0.0)
    if spec.actor_gradient == "reinforce":  # the surrogate whose gradient is the score-function estimate
        objective = log_pi * objective
    out = {"pi_loss": np.mean(objective), "log_pi_mean": np.mean(log_pi)}
    if spec.variant == "v1":
        v_next = [v_value(brain.frozen_V_psi, next_obs)] * len(brain.critics)
        v = v_value(brain.V_psi, obs)
        v_target = np.mean((q_backup - alpha * log_pi).reshape(n_samples, -1), axis=0)
        out["v_loss"] = 0.5 * np.mean((v - v_target) ** 2)
    else:
        next_act, next_log_pi = policy(brain, next_obs, next_eps, heads)
        q_next = [q_value(f, next_obs, next_act) for f in brain.frozen_critics]
        if spec.q_backup == "double":
            q_next = q_next[::-1]
        elif spec.q_backup == "clipped":
            q_next = [np.min([q_next[i] for i in chosen], axis=0)] * len(q_next)
        v_next = [q - alpha * next_log_pi for q in q_next]
    for i, critic in enumerate(brain.critics):
        gamma = spec.discount_factor if discount is None else np.asarray(discount, np.float64)
        y = spec.reward_scaling * rew + gamma * (1 - d) * v_next[i]
        out[f"q{i + 1}_loss"] = 0.5 * np.mean((q_value(critic, obs, act) - y) ** 2)
    return out


def reference_metrics(brain, batch, eps, next_eps):
    """reference_losses and the monitoring metrics of a step, in float64: mean Q_theta_i(s, a), mean V_psi(s) and
    mean frozen_V_psi(s') (v1), alpha, and J(alpha) = -log_alpha * mean(log pi + target_entropy) when learned."""
    spec = brain.spec
    out = reference_losses(brain, batch, eps, next_eps)
    obs, act, _, next_obs, _ = (np.asarray(x, np.float64) for x in batch)
    for i, critic in enumerate(brain.critics):
        out[f"q{i + 1}_mean"] = np.mean(q_value(critic, obs, act))
    if spec.variant == "v1":
        out["v_mean"] = np.mean(v_value(brain.V_psi, obs))
        out["frozen_v_mean"] = np.mean(v_value(brain.frozen_V_psi, next_obs))
    if spec.learns_alpha:
        log_alpha = float(brain.log_alpha.numpy())
        out["alpha"] = np.exp(log_alpha)
        out["alpha_loss"] = -log_alpha * (out["log_pi_mean"] + brain_target_entropy(spec, brain.act_dim))
    else:
        out["alpha"] = spec.alpha
    return out


class LossesMatchHandComputationTest(unittest.TestCase):
    def check(self, subset_uniform=None, subset=None, **changes):
        brain = tiny_brain(**changes)
        rng = np.random.default_rng(3)
        for model in [brain.phi, *brain.critics, *[f for _, f in brain.target_pairs]] + \
                ([brain.V_psi] if brain.spec.variant == "v1" else []):
            model.set_weights([rng.normal(scale=0.7, size=w.shape).astype(np.float32) for w in model.get_weights()])
        batch = random_batch(rng)
        eps = rng.normal(size=(BATCH * brain.spec.num_actor_samples, ACT_DIM)).astype(np.float32)
        next_eps = rng.normal(size=(BATCH, ACT_DIM)).astype(np.float32)
        got = brain.compute_losses(*batch, eps, next_eps, subset_uniform)
        for key, expected in reference_losses(brain, batch, eps, next_eps, subset=subset).items():
            self.assertAlmostEqual(float(got[key]), expected, delta=1e-4 * max(1.0, abs(expected)), msg=key)
        return got

    def test_v1_clipped_losses(self):
        got = self.check()
        self.assertEqual(set(got) >= {"v_loss", "q1_loss", "q2_loss", "pi_loss"}, True)

    def test_v1_single_q_losses(self):
        got = self.check(q_backup="single")
        self.assertNotIn("q2_loss", got)

    def test_v2_clipped_losses(self):
        self.check(variant="v2")

    def test_v2_double_q_losses(self):
        self.check(variant="v2", q_backup="double")

    def test_v2_ensemble_of_four_takes_the_min_of_all(self):
        got = self.check(variant="v2", num_critics=4)
        self.assertEqual({f"q{i}_loss" for i in range(1, 5)} <= set(got), True)

    def test_v2_redq_subset_min_targets_and_mean_actor(self):
        """uniform draws 0.7, 0.1, 0.9, 0.3, 0.5 pick critics 1 and 3 (0-based), the two smallest."""
        self.check(subset_uniform=np.float32([0.7, 0.1, 0.9, 0.3, 0.5]), subset=[1, 3], variant="v2",
                   num_critics=5, critic_subset=2)

    def test_v2_redq_evaluates_only_the_subsets_frozen_critics(self):
        """The critics outside the subset are left out of the min: their frozen copies are not run at all."""
        brain, calls = tiny_brain(variant="v2", num_critics=5, critic_subset=2), []

        def counted(index, frozen):
            def call(inputs):
                calls.append(index)
                return frozen(inputs)
            return call

        brain.frozen_critics = [counted(index, frozen) for index, frozen in enumerate(brain.frozen_critics)]
        rng = np.random.default_rng(3)
        eps, next_eps = (rng.normal(size=(BATCH, ACT_DIM)).astype(np.float32) for _ in range(2))
        got = brain.compute_losses(*random_batch(rng), eps, next_eps, np.float32([0.7, 0.1, 0.9, 0.3, 0.5]))
        self.assertEqual(sorted(calls), [1, 3])
        self.assertTrue(np.isfinite([float(got[f"q{i}_loss"]) for i in range(1, 6)]).all())

    def test_v1_redq_subset_min_value_target_and_mean_actor(self):
        self.check(subset_uniform=np.float32([0.2, 0.8, 0.4]), subset=[0], num_critics=3, critic_subset=1)

    def test_reinforce_surrogate_with_several_actor_samples(self):
        self.check(actor_gradient="reinforce", num_actor_samples=3)

    def test_entropy_only_actor_loss(self):
        self.check(actor_loss="entropy_only")

    def test_learned_alpha_loss(self):
        brain = tiny_brain(alpha="auto", target_entropy=-1.5)
        brain.log_alpha.assign(0.4)
        rng = np.random.default_rng(0)
        batch, eps = random_batch(rng), rng.normal(size=(BATCH, ACT_DIM)).astype(np.float32)
        got = brain.compute_losses(*batch, eps, eps)
        _, log_pi = policy(brain, batch.obs.astype(np.float64), eps)
        self.assertAlmostEqual(float(got["alpha_loss"]), -0.4 * np.mean(log_pi - 1.5), places=4)
        self.assertAlmostEqual(float(got["alpha"]), np.exp(0.4), places=5)

    def test_terminated_alone_stops_the_bootstrap(self):
        brain = tiny_brain()
        obs, act, rew, next_obs, _ = random_batch(np.random.default_rng(1))
        batch = Minibatch(obs, act, rew, next_obs, terminated=np.ones(BATCH, np.float32))
        got = brain.compute_losses(*batch, np.zeros((BATCH, ACT_DIM), np.float32),
                                   np.zeros((BATCH, ACT_DIM), np.float32))
        q = q_value(brain.Q_theta_1, batch.obs, batch.act)
        self.assertAlmostEqual(float(got["q1_loss"]), 0.5 * np.mean((q - 2.0 * batch.rew) ** 2), places=4)


class NStepTargetTest(unittest.TestCase):
    """n_step > 1: each row's Q target bootstraps with its own discount gamma^k, the rows' last column."""

    def n_step_brain_and_batch(self, **changes) -> tuple[SoftActorCriticBrain, Minibatch]:
        """A brain with n_step 3 whose frozen values are far from 0 (V'(s') + 50), and 32 n-step rows."""
        brain = tiny_brain(n_step=3, **changes)
        for frozen in [f for _, f in brain.target_pairs]:
            kernel, bias = frozen.get_layer("value").get_weights()
            frozen.get_layer("value").set_weights([kernel, bias + 50.0])
        batch = chained_buffer().sample(32, n_step=3, discount_factor=brain.spec.discount_factor)
        np.testing.assert_allclose(np.unique(batch.discount), [0.729, 0.81, 0.9], rtol=1e-6)  # k = 3, 2, 1 drawn
        return brain, batch

    def expected_q_losses(self, brain: SoftActorCriticBrain, batch: Minibatch, eps, next_eps) -> dict:
        """q1_loss and q2_loss by the hand formula with each row's discount; they differ from gamma's."""
        expected = reference_losses(brain, batch, eps, next_eps, discount=batch.discount)
        one_step = reference_losses(brain, batch, eps, next_eps)  # gamma for every row
        for key in ("q1_loss", "q2_loss"):
            self.assertGreater(abs(expected[key] - one_step[key]), 0.01 * expected[key], key)  # not vacuous
        return {key: expected[key] for key in ("q1_loss", "q2_loss")}

    def assert_losses(self, got: dict, expected: dict) -> None:
        for key, value in expected.items():
            self.assertAlmostEqual(float(got[key]), value, delta=1e-4 * max(1.0, value), msg=key)

    def test_compute_losses_with_a_discount_per_row_equals_the_hand_formula(self):
        for variant in ("v1", "v2"):
            with self.subTest(variant=variant):
                brain, batch = self.n_step_brain_and_batch(variant=variant)
                rng = np.random.default_rng(2)
                eps, next_eps = (rng.normal(size=(32, ACT_DIM)).astype(np.float32) for _ in range(2))
                expected = self.expected_q_losses(brain, batch, eps, next_eps)
                self.assert_losses(brain.compute_losses(*batch, eps, next_eps, discount=batch.discount), expected)

    def test_train_step_reads_the_discount_column_of_n_step_rows(self):
        brain, batch = self.n_step_brain_and_batch()
        zeros = np.zeros((32, ACT_DIM), np.float32)  # v1's Q losses do not depend on the noise
        expected = self.expected_q_losses(brain, batch, zeros, zeros)  # the step's metrics are from before it
        self.assert_losses(brain.train_step(batch), expected)


class IndependentUpdate:
    """SAC updates written again from DESIGN.md's formulas, on copies of a brain's networks: each loss in its
    own GradientTape with the targets computed outside it, log pi from tfp's Normal, and Adam written out.
    The targets start as copies of the brain's online networks (psi_bar = psi, theta_bar_i = theta_i), not of
    its frozen ones: a brain whose frozen networks start elsewhere diverges from this reference.
    Draws its noise from a copy of the brain's generator, in the brain's order (eps, then next_eps)."""

    ADAM_BETA_1, ADAM_BETA_2, ADAM_EPSILON = 0.9, 0.999, 1e-7  # FusedAdam's defaults (beta_1: log_alpha's)

    def __init__(self, brain: SoftActorCriticBrain):
        def copy(model):
            clone = keras.models.clone_model(model)
            clone.set_weights(model.get_weights())
            return clone
        self.spec, self.act_dim = brain.spec, brain.act_dim
        self.phi, self.critics = copy(brain.phi), [copy(critic) for critic in brain.critics]
        if self.spec.variant == "v1":
            self.V_psi, self.frozen_V_psi = copy(brain.V_psi), copy(brain.V_psi)
            self.target_pairs = [(self.V_psi, self.frozen_V_psi)]
        else:
            self.frozen_critics = [copy(critic) for critic in brain.critics]
            self.target_pairs = list(zip(self.critics, self.frozen_critics, strict=True))
        self.log_alpha = tf.Variable(float(brain.log_alpha)) if self.spec.learns_alpha else None
        self.adam: dict[str, dict] = {}  # per loss: step count t and the moments m, v of each variable
        self.steps = 0
        self.last_actor_losses: dict[str, float] = {}  # the actor's losses at its last update

    def alpha(self) -> float:
        return float(tf.exp(self.log_alpha)) if self.log_alpha is not None else self.spec.alpha

    def sample(self, obs, eps, reparametrize=True):
        """a = tanh(u), u = mu + std * eps; log pi = log N(u; mu, std) - sum log(1 - tanh(u)^2)."""
        mu, log_std = self.phi(obs)
        u = mu + tf.exp(log_std) * eps
        if not reparametrize:
            u = tf.stop_gradient(u)
        log_normal = tf.reduce_sum(tfp.distributions.Normal(mu, tf.exp(log_std)).log_prob(u), axis=-1)
        log_det = tf.reduce_sum(2.0 * (np.log(2.0) - u - tf.nn.softplus(-2.0 * u)), axis=-1)  # log(1 - tanh(u)^2)
        return tf.tanh(u), log_normal - log_det

    def backup(self, q_values):
        return {"single": lambda: q_values[0], "clipped": lambda: tf.minimum(*q_values),
                "double": lambda: (q_values[0] + q_values[1]) / 2}[self.spec.q_backup]()

    def step(self, batch, noise: tf.random.Generator) -> dict[str, float]:
        """One update: every gradient at the current weights, then Adam on each loss's network, then polyak."""
        spec, alpha = self.spec, self.alpha()
        obs, act, rew, next_obs, d = (tf.constant(x) for x in batch)
        k, n = spec.num_actor_samples, len(batch.rew)
        eps, next_eps = noise.normal([k * n, self.act_dim]), noise.normal([n, self.act_dim])
        obs_k = tf.tile(obs, [k, 1])
        reparametrize = spec.actor_gradient == "reparametrize"
        gradients, losses = {}, {}

        def minimise(name, variables, loss_fn):
            with tf.GradientTape() as tape:
                losses[name] = loss_fn()
            gradients[name] = (variables, tape.gradient(losses[name], variables))

        # Q targets y = eta r + gamma (1 - d) V'(s'), outside any tape
        if spec.variant == "v1":
            next_values = [self.frozen_V_psi(next_obs)[:, 0]] * len(self.critics)
        else:
            next_act, next_log_pi = self.sample(next_obs, next_eps)
            frozen_q = [frozen([next_obs, next_act])[:, 0] for frozen in self.frozen_critics]
            frozen_q = {"single": frozen_q, "double": frozen_q[::-1],
                        "clipped": [tf.minimum(*frozen_q)] * 2}[spec.q_backup]
            next_values = [q - alpha * next_log_pi for q in frozen_q]
        for i, critic in enumerate(self.critics):
            y = spec.reward_scaling * rew + spec.discount_factor * (1.0 - d) * next_values[i]
            minimise(f"q{i + 1}_loss", critic.trainable_variables,
                     lambda critic=critic, y=y: 0.5 * tf.reduce_mean((critic([obs, act])[:, 0] - y) ** 2))

        new_act, log_pi = self.sample(obs_k, eps)
        q_new = self.backup([critic([obs_k, new_act])[:, 0] for critic in self.critics])
        if spec.variant == "v1":
            v_target = tf.reduce_mean(tf.reshape(q_new - alpha * log_pi, [k, n]), axis=0)
            minimise("v_loss", self.V_psi.trainable_variables,
                     lambda: 0.5 * tf.reduce_mean((self.V_psi(obs)[:, 0] - v_target) ** 2))

        def pi_loss():
            new_act, log_pi = self.sample(obs_k, eps, reparametrize)
            q = self.backup([critic([obs_k, new_act])[:, 0] for critic in self.critics])
            objective = alpha * log_pi - (q if spec.actor_loss == "soft_q" else 0.0)
            if reparametrize:
                return tf.reduce_mean(objective)
            return tf.reduce_mean(log_pi * weights)  # REINFORCE: weights held constant

        weights = alpha * log_pi - (q_new if spec.actor_loss == "soft_q" else 0.0)
        if spec.actor_loss != "none":
            minimise("pi_loss", self.phi.trainable_variables, pi_loss)
        if self.log_alpha is not None:
            entropy_gap = log_pi + brain_target_entropy(spec, self.act_dim)
            minimise("alpha_loss", [self.log_alpha], lambda: -tf.reduce_mean(self.log_alpha * entropy_gap))

        actor_due = self.steps % spec.actor_update_interval == 0  # updates 0, interval, 2 interval, ...
        self.steps += 1
        for name, (variables, grads) in gradients.items():
            if name in ("pi_loss", "alpha_loss") and not actor_due:
                continue  # the actor and the temperature move on every actor_update_interval-th step only
            self.adam_step(name, variables, grads, self.learning_rate(name))
        actor_losses = {name: losses[name] for name in ("pi_loss", "alpha_loss") if name in losses}
        if actor_due:
            self.last_actor_losses = actor_losses
        elif spec.variant != "v1":  # v2 computes the actor's losses when the actor moves, and repeats them between
            losses.update(self.last_actor_losses)
        if self.steps % spec.target_update_interval == 0:
            tau = spec.target_smoothing_coefficient
            for online, frozen in self.target_pairs:
                for source, target in zip(online.weights, frozen.weights, strict=True):
                    target.assign(tau * source + (1 - tau) * target)
        return {name: float(loss) for name, loss in losses.items()}

    def learning_rate(self, loss: str) -> float:
        return {"pi_loss": self.spec.actor_learning_rate,
                "alpha_loss": self.spec.alpha_learning_rate}.get(loss, self.spec.critic_learning_rate)

    def adam_step(self, name, variables, grads, lr):
        """m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
        w <- w - lr sqrt(1 - b2^t) / (1 - b1^t) m / (sqrt(v) + eps); b1 the spec's adam_beta1 but for log_alpha."""
        b1, b2 = self.ADAM_BETA_1 if name == "alpha_loss" else self.spec.adam_beta1, self.ADAM_BETA_2
        state = self.adam.setdefault(name, {"t": 0, "m": [np.zeros(v.shape) for v in variables],
                                            "v": [np.zeros(v.shape) for v in variables]})
        state["t"] += 1
        t = state["t"]
        for i, (variable, g) in enumerate(zip(variables, grads, strict=True)):
            g = np.asarray(g, np.float64)
            state["m"][i] = b1 * state["m"][i] + (1 - b1) * g
            state["v"][i] = b2 * state["v"][i] + (1 - b2) * g ** 2
            lr_t = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
            variable.assign((variable.numpy() - lr_t * state["m"][i] / (np.sqrt(state["v"][i]) + self.ADAM_EPSILON))
                            .astype(np.float32))


def brain_target_entropy(spec, act_dim: int) -> float:
    return float(-act_dim if spec.target_entropy is None else spec.target_entropy)


class TrainStepTest(unittest.TestCase):
    def check_against_independent_update(self, steps: int = 3, **changes):
        """Every network (and log_alpha, and the targets) after `steps` train_steps equals the independent update."""
        brain = tiny_brain(phi_nn_h_layer_topo=(8,), psi_nn_h_layer_topo=(8,), theta_nn_h_layer_topo=(8,),
                           actor_learning_rate=1e-2, critic_learning_rate=5e-3, alpha_learning_rate=2e-2,
                           target_smoothing_coefficient=0.3, **changes)
        reference = IndependentUpdate(brain)
        rng = np.random.default_rng(0)
        for _ in range(steps):
            batch = random_batch(rng, 16)
            noise = tf.random.Generator.from_state(brain.noise.state.numpy(), brain.noise.algorithm)
            expected_losses = reference.step(batch, noise)
            metrics = brain.train_step(batch)
            for name, expected in expected_losses.items():
                self.assertAlmostEqual(float(metrics[name]), expected, delta=1e-5 * max(1.0, abs(expected)), msg=name)
        pairs = [(brain.phi, reference.phi)] + list(zip(brain.critics, reference.critics, strict=True))
        target_pairs = list(zip(brain.target_pairs, reference.target_pairs, strict=True))
        pairs += [(online, copy) for (online, _), (copy, _) in target_pairs]
        pairs += [(frozen, copy) for (_, frozen), (_, copy) in target_pairs]
        for model, copy in pairs:
            moved = max(np.abs(w - w0).max() for w, w0 in zip(model.get_weights(), copy.get_weights(), strict=True))
            for got, expected in zip(model.get_weights(), copy.get_weights(), strict=True):
                np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6, err_msg=f"{model.name} {moved}")
        if brain.spec.learns_alpha:
            self.assertAlmostEqual(float(brain.log_alpha), float(reference.log_alpha), delta=1e-6)

    def test_v1_update_equals_the_independent_update(self):
        self.check_against_independent_update()

    def test_v1_reinforce_update_equals_the_independent_update(self):
        self.check_against_independent_update(actor_gradient="reinforce", num_actor_samples=3)

    def test_v2_double_q_learned_alpha_update_equals_the_independent_update(self):
        self.check_against_independent_update(variant="v2", q_backup="double", alpha="auto", target_update_interval=2)

    def test_delayed_actor_and_adam_beta1_updates_equal_the_independent_update(self):
        """phi and log_alpha move on updates 1 and 3 only (1 and 4 in v1), with the networks' Adam at beta_1 0.5;
        v2 reports the actor's losses of update 1 at update 2 (those of 3 at 4)."""
        self.check_against_independent_update(steps=4, variant="v2", alpha="auto", actor_update_interval=2,
                                              adam_beta1=0.5)
        self.check_against_independent_update(steps=6, actor_update_interval=3, adam_beta1=0.5)

    def test_v1_single_q_entropy_only_update_equals_the_independent_update(self):
        self.check_against_independent_update(q_backup="single", actor_loss="entropy_only")

    def test_target_moves_only_every_interval(self):
        brain = tiny_brain(target_update_interval=3)
        rng = np.random.default_rng(0)
        frozen = [brain.frozen_V_psi.get_weights()[0].copy()]
        for _ in range(6):
            brain.train_step(random_batch(rng, 16))
            frozen.append(brain.frozen_V_psi.get_weights()[0].copy())
        moved = [not np.array_equal(a, b) for a, b in zip(frozen, frozen[1:], strict=False)]
        self.assertEqual(moved, [False, False, True, False, False, True])

    def test_frozen_networks_start_as_copies_of_the_online_ones(self):
        # psi_bar = psi (v1), theta_bar_i = theta_i (v2) before any step: other networks of their own, not
        # trained, holding the same weights.
        for changes in ({}, {"variant": "v2"}, {"variant": "v2", "q_backup": "single"}):
            brain = tiny_brain(**changes)
            if brain.spec.variant == "v1":
                pairs = [(brain.V_psi, brain.frozen_V_psi)]
            else:
                pairs = list(zip(brain.critics, brain.frozen_critics, strict=True))
                self.assertEqual(len(pairs), 1 if brain.spec.q_backup == "single" else 2)
            for online, frozen in pairs:
                with self.subTest(**changes, frozen=frozen.name):
                    self.assertIsNot(frozen, online)
                    self.assertEqual(frozen.trainable_variables, [])
                    weights = frozen.get_weights()
                    self.assertEqual(len(weights), len(online.get_weights()))
                    for got, expected in zip(weights, online.get_weights(), strict=True):
                        np.testing.assert_array_equal(got, expected)

    def test_v2_frozen_critics_track_the_critics(self):
        brain = tiny_brain(variant="v2", target_smoothing_coefficient=1.0)
        brain.train_step(random_batch(np.random.default_rng(0), 16))
        for critic, frozen in zip(brain.critics, brain.frozen_critics, strict=True):
            for a, b in zip(critic.get_weights(), frozen.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)

    def test_frozen_actor_is_not_updated(self):
        brain = tiny_brain(actor_loss="none")
        before = [w.copy() for w in brain.phi.get_weights()]
        brain.train_step(random_batch(np.random.default_rng(0), 16))
        for a, b in zip(before, brain.phi.get_weights(), strict=True):
            np.testing.assert_array_equal(a, b)

    def test_actor_gradient_of_the_mu_and_log_std_heads_equals_finite_differences(self):
        # d pi_loss / d (kernel, bias) of each head against central differences of the float64 hand computation:
        # a gradient cut anywhere on a path to a head (through u = mu + std * eps, tanh's Jacobian, Q(s, a~) or
        # log N) changes it. The float32 gradient and the float64 differences agree to about 1e-6 relative here.
        brain = tiny_brain()
        batch = random_batch(np.random.default_rng(0), 16)
        eps = np.random.default_rng(1).normal(size=(16, ACT_DIM)).astype(np.float32)
        with tf.GradientTape() as tape:
            pi_loss = brain.compute_losses(*batch, eps, eps)["pi_loss"]
        variables = brain.phi.trainable_variables
        gradients = dict(zip([v.path for v in variables], tape.gradient(pi_loss, variables), strict=True))
        step = 1e-6
        for head in ("policy_mu", "policy_log_std"):
            weights = [w.astype(np.float64) for w in brain.phi.get_layer(head).get_weights()]
            for index, (name, weight) in enumerate(zip(("kernel", "bias"), weights, strict=True)):
                numeric = np.zeros_like(weight)
                for position in np.ndindex(weight.shape):
                    losses = []
                    for sign in (1.0, -1.0):
                        moved = [w.copy() for w in weights]
                        moved[index][position] += sign * step
                        losses.append(reference_losses(brain, batch, eps, eps, heads={head: moved})["pi_loss"])
                    numeric[position] = (losses[0] - losses[1]) / (2 * step)
                self.assertGreater(np.abs(numeric).max(), 1e-3, f"{head}/{name}")  # the head does move the loss
                got = gradients[f"{head}/{name}"].numpy()
                np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-6 * np.abs(numeric).max(),
                                           err_msg=f"{head}/{name}")

    def test_train_step_traces_the_update_once_at_its_first_call(self):
        # The losses' Python code runs only while the update is traced: not when the brain is built, once at the
        # first train_step, never again whatever the batch size (an eager or retracing train_step would run it on
        # every call).
        calls = []
        compute_losses = SoftActorCriticBrain.compute_losses

        def counted(brain, *args, **kwargs):
            calls.append(1)
            return compute_losses(brain, *args, **kwargs)

        with mock.patch.object(SoftActorCriticBrain, "compute_losses", counted):
            brain = tiny_brain()
            self.assertEqual(len(calls), 0)
            rng = np.random.default_rng(0)
            for size in (16, 17, 32, 5, 16):
                brain.train_step(random_batch(rng, size))
        self.assertEqual(len(calls), 1)

    def test_metrics_are_the_variants_losses_and_means_before_the_step(self):
        """Exactly the variant's metrics, each a scalar named in UPDATE_METRICS (progress.csv's columns) and equal
        to its hand computation at the weights before the step, with the noise the step draws."""
        v1 = {"q1_loss", "q2_loss", "q1_mean", "q2_mean", "v_loss", "v_mean", "frozen_v_mean", "pi_loss",
              "log_pi_mean", "alpha"}
        v2_learned_alpha = {"q1_loss", "q2_loss", "q1_mean", "q2_mean", "pi_loss", "alpha_loss", "log_pi_mean",
                            "alpha"}
        for changes, names in (({}, v1), ({"variant": "v2", "alpha": "auto"}, v2_learned_alpha),
                               ({"variant": "v2", "alpha": "auto", "actor_update_interval": 2}, v2_learned_alpha),
                               ({"actor_gradient": "reinforce", "num_actor_samples": 4}, v1)):
            with self.subTest(**changes):
                brain = tiny_brain(**changes)
                if brain.spec.learns_alpha:
                    brain.log_alpha.assign(0.4)  # alpha and its loss away from their values at log_alpha = 0
                batch = random_batch(np.random.default_rng(0), 16)
                noise = tf.random.Generator.from_state(brain.noise.state.numpy(), brain.noise.algorithm)
                eps = noise.normal([brain.spec.num_actor_samples * 16, ACT_DIM]).numpy()
                next_eps = noise.normal([16, ACT_DIM]).numpy()
                expected = reference_metrics(brain, batch, eps, next_eps)
                metrics = brain.train_step(batch)
                self.assertEqual(set(metrics), names | {"all_finite"})
                self.assertLessEqual(names, set(UPDATE_METRICS))
                self.assertIs(bool(metrics["all_finite"]), True)
                for key in names:
                    self.assertEqual(metrics[key].shape, (), key)
                    self.assertAlmostEqual(float(metrics[key]), expected[key],
                                           delta=1e-4 * max(1.0, abs(expected[key])), msg=key)


class TrainStepsTest(unittest.TestCase):
    """train_steps: K gradient steps in one compiled call are K train_step calls on the same minibatches and
    noise: bit for bit on TensorFlow's executor, to float32 rounding when XLA compiles the K steps."""

    def check_equals_single_steps(self, jit_compile_steps: bool, num_batches: int = 5, **changes):
        spec = ExperimentSpec(**{**TINY, **changes})
        singles = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM)  # same seed: same weights and noise
        fused = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM, jit_compile_steps=jit_compile_steps)
        minibatches = (chained_buffer() if spec.n_step > 1 else filled_buffer()).sample(
            16, num_batches=num_batches, n_step=spec.n_step, discount_factor=spec.discount_factor)
        single_metrics = [singles.train_step(minibatches[k]) for k in range(num_batches)]
        metrics = fused.train_steps(minibatches)

        def assert_equal(got, expected, name):
            if jit_compile_steps:
                # float32 rounding: each element within 1e-5 of its value or of the tensor's largest magnitude (an
                # element near zero is a sum of larger terms and carries their rounding, e.g. Adam's moments)
                scale = float(np.max(np.abs(expected), initial=0.0))
                np.testing.assert_allclose(got, expected, rtol=1e-5, atol=max(1e-7, 1e-5 * scale), err_msg=name)
            else:
                np.testing.assert_array_equal(got, expected, err_msg=name)

        expected, got = checkpointed_values(singles), checkpointed_values(fused)
        self.assertEqual(list(got), list(expected))
        for name in expected:
            assert_equal(got[name], expected[name], name)
        self.assertEqual(set(metrics), set(single_metrics[0]))
        for key in set(metrics) - {"all_finite"}:
            total = np.float32(0.0)
            for step in single_metrics:  # the order train_steps sums them in, in float32
                total = np.float32(total + step[key].numpy())
            assert_equal(metrics[key].numpy(), total / np.float32(num_batches), key)
        self.assertTrue(bool(metrics["all_finite"]))
        obs = np.random.default_rng(1).normal(size=(4, OBS_DIM)).astype(np.float32)
        assert_equal(fused.numpy_actor()(obs), singles.numpy_actor()(obs), "numpy_actor")

    def test_v1_k_steps_equal_k_train_steps_bit_for_bit(self):
        self.check_equals_single_steps(jit_compile_steps=False, target_update_interval=2)

    def test_v2_learned_alpha_k_steps_equal_k_train_steps_bit_for_bit(self):
        self.check_equals_single_steps(jit_compile_steps=False, variant="v2", alpha="auto", q_backup="double")

    @pytest.mark.slow  # traces two ensemble updates with dropout: about 15 seconds
    def test_redq_and_dropout_k_steps_equal_k_train_steps_bit_for_bit(self):
        """The subset's draws and the dropout masks come in train_step's order."""
        self.check_equals_single_steps(jit_compile_steps=False, variant="v2", num_critics=3, critic_subset=2,
                                       critic_dropout=0.2, critic_layer_norm=True)

    def test_n_step_k_steps_equal_k_train_steps_bit_for_bit(self):
        self.check_equals_single_steps(jit_compile_steps=False, n_step=3)

    @pytest.mark.slow  # XLA compiles
    def test_xla_k_steps_equal_k_train_steps(self):
        self.check_equals_single_steps(jit_compile_steps=True, target_update_interval=2, alpha="auto")

    @pytest.mark.slow  # XLA compiles
    def test_xla_reinforce_k_steps_equal_k_train_steps(self):
        self.check_equals_single_steps(jit_compile_steps=True, variant="v2", actor_gradient="reinforce",
                                       num_actor_samples=3)

    def test_one_minibatch_is_one_train_step(self):
        """train_steps on one minibatch (num_batches=1, or rows of shape (batch, width)) is train_step on that
        minibatch, bit for bit: metrics, weights, Adam moments, noise state; and the NumPy actor the agent acts
        with (built before the update, as the agent's acting builds it) follows phi."""
        spec = ExperimentSpec(**TINY)
        brain, reference = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM), SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM)
        buffer = filled_buffer()
        obs = np.random.default_rng(1).normal(size=(4, OBS_DIM)).astype(np.float32)
        one, single = buffer.sample(16, num_batches=1), buffer.sample(16)
        for minibatches, minibatch in ((one, one[0]), (single, single)):
            for acting in (brain, reference):
                acting.numpy_actor()  # the agent acts between two updates: its NumPy actor is built by now
            metrics, expected = brain.train_steps(minibatches), reference.train_step(minibatch)
            self.assertEqual(set(metrics), set(expected))
            for key in expected:
                np.testing.assert_array_equal(metrics[key].numpy(), expected[key].numpy(), err_msg=key)
            values, expected_values = checkpointed_values(brain), checkpointed_values(reference)
            self.assertEqual(list(values), list(expected_values))
            for name in expected_values:
                np.testing.assert_array_equal(values[name], expected_values[name], err_msg=name)
            np.testing.assert_allclose(brain.numpy_actor()(obs), np.tanh(brain.phi(obs)[0].numpy()), atol=1e-6)
        self.assertEqual(int(brain.updates), 2)

    @pytest.mark.slow  # XLA compiles
    def test_any_non_finite_step_clears_all_finite(self):
        brain = tiny_brain()
        minibatches = filled_buffer().sample(16, num_batches=4)
        minibatches.rows[2, 0, 0] = np.inf  # obs of one transition of the third minibatch
        self.assertFalse(bool(brain.train_steps(minibatches)["all_finite"]))
        self.assertEqual(int(brain.updates), 4)


class CriticEnsembleTest(unittest.TestCase):
    def test_num_critics_builds_that_many_critics_each_with_its_optimizer_and_frozen_copy(self):
        brain = tiny_brain(variant="v2", num_critics=4)
        self.assertEqual([c.name for c in brain.critics], [f"Q_theta_{i}" for i in range(1, 5)])
        self.assertEqual([f.name for f in brain.frozen_critics], [f"frozen_Q_theta_{i}" for i in range(1, 5)])
        self.assertEqual(sorted(k for k in brain.optimizers if k.startswith("q")), [f"q{i}_loss" for i in range(1, 5)])
        self.assertEqual(len(tiny_brain(q_backup="single").critics), 1)

    def test_dropout_critics_draw_new_masks_at_each_call_and_keep_the_polyak_pairs(self):
        brain = tiny_brain(variant="v2", critic_dropout=0.5)
        obs, act = np.ones((64, OBS_DIM), np.float32), np.ones((64, ACT_DIM), np.float32)
        first, second = brain.Q_theta_1([obs, act]).numpy(), brain.Q_theta_1([obs, act]).numpy()
        self.assertFalse(np.array_equal(first, second))
        for online, frozen in brain.target_pairs:  # no seed-state variable beside the weights
            self.assertEqual(len(online.variables), len(online.trainable_variables))
            self.assertEqual(len(frozen.variables), len(online.trainable_variables))

    def test_a_restored_brain_continues_the_dropout_masks(self):
        """The masks' generator is in the checkpoint: the step after a restore is the uninterrupted run's."""
        spec = ExperimentSpec(**{**TINY, "variant": "v2", "critic_dropout": 0.3})
        minibatches = filled_buffer().sample(16, num_batches=2)
        brain = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM)
        brain.train_step(minibatches[0])
        restored = restored_copy(self, brain)
        assert_same_step(brain, restored, minibatches[1])


# ---------------------------------------------------------------- crossq: NumPy reference with batch renormalisation
def forward64(layers, x, training: bool):
    """float64 forward pass through Keras layers (linear Dense, relu Activation, BatchRenorm): training, each
    BatchRenorm normalises with the batch's statistics (renorm_by_hand: r and d once its warm-up is over), else
    with its running statistics."""
    for layer in layers:
        if isinstance(layer, BatchRenorm):
            gamma, beta, mean, var = (v.numpy().astype(np.float64) for v in
                                      (layer.gamma, layer.beta, layer.moving_mean, layer.moving_variance))
            if training:
                x = renorm_by_hand(x, gamma, beta, mean, var, warmed_up=int(layer.steps) >= layer.warmup_steps)[0]
            else:
                x = gamma * (x - mean) / np.sqrt(var + 1e-3) + beta
        elif isinstance(layer, keras.layers.Dense):
            assert layer.get_config()["activation"] == "linear", layer.name
            x = x @ layer.kernel.numpy().astype(np.float64) + layer.bias.numpy().astype(np.float64)
        else:
            assert isinstance(layer, keras.layers.Activation), layer.name
            x = np.maximum(x, 0.0)
    return x


def crossq_policy(brain, obs, eps, training: bool):
    """(a, log pi(a|s)) in float64 through phi with batch renormalisation (see forward64), and (mu, log_std)."""
    features = forward64(brain.phi.get_layer("phi_mlp").layers, obs, training)
    mu = forward64([brain.phi.get_layer("policy_mu")], features, training)
    log_std = np.clip(forward64([brain.phi.get_layer("policy_log_std")], features, training), -20, 2)
    u = mu + np.exp(log_std) * eps
    log_normal = -0.5 * ((u - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
    return np.tanh(u), np.sum(log_normal - np.log(1 - np.tanh(u) ** 2), axis=-1), (mu, log_std)


def crossq_q_value(critic, obs, act, training: bool):
    layers = critic.get_layer(f"{critic.name}_mlp").layers + [critic.get_layer("value")]
    return forward64(layers, np.concatenate([obs, act], axis=1), training)[:, 0]


def crossq_reference_losses(brain, batch, eps, next_eps, joint: bool = True):
    """CrossQ's losses of one step in float64 (Bhatt et al. 2024, as sbx): a' from phi in evaluation mode; each
    critic on the joint batch (s, a) + (s', a') in training mode, y = eta r + gamma (1 - d) (min_i Q_i(s', a') -
    alpha log pi(a'|s')); the actor's a~ from phi in training mode, judged by the critics in evaluation mode.
    joint=False: two separate training-mode passes, (s, a) then (s', a') (what CrossQ must not do)."""
    spec, alpha = brain.spec, float(brain.alpha)
    obs, act, rew, next_obs, d = (np.asarray(x, np.float64) for x in batch)
    next_act, next_log_pi, _ = crossq_policy(brain, next_obs, next_eps, training=False)
    new_act, log_pi, _ = crossq_policy(brain, obs, eps, training=True)
    q_new = np.min([crossq_q_value(c, obs, new_act, training=False) for c in brain.critics], axis=0)
    out = {"pi_loss": np.mean(alpha * log_pi - q_new), "log_pi_mean": np.mean(log_pi)}
    if joint:
        halves = [np.split(crossq_q_value(c, np.concatenate([obs, next_obs]), np.concatenate([act, next_act]),
                                          training=True), 2) for c in brain.critics]
    else:
        halves = [(crossq_q_value(c, obs, act, training=True), crossq_q_value(c, next_obs, next_act, training=True))
                  for c in brain.critics]
    y = spec.reward_scaling * rew + spec.discount_factor * (1 - d) * (
        np.min([q_next for _, q_next in halves], axis=0) - alpha * next_log_pi)
    for i, (q_data, _) in enumerate(halves):
        out[f"q{i + 1}_loss"] = 0.5 * np.mean((q_data - y) ** 2)
        out[f"q{i + 1}_mean"] = np.mean(q_data)
    return out


def crossq_brain(warmed_up: bool = False, seed: int = 3, **changes) -> SoftActorCriticBrain:
    """A crossq brain with random trainable weights (gamma and beta too) and random running statistics; warmed_up:
    every BatchRenorm's training calls past its warm-up, so r and d correct the batch statistics."""
    brain = tiny_brain(variant="crossq", phi_nn_h_layer_topo=(6, 5), theta_nn_h_layer_topo=(7, 6), **changes)
    rng = np.random.default_rng(seed)
    for model in [brain.phi, *brain.critics]:
        for variable in model.trainable_variables:
            variable.assign(rng.normal(scale=0.7, size=variable.shape).astype(np.float32)
                            + (1.0 if variable.name == "gamma" else 0.0))
        for layer in batch_renorm_layers(model):
            layer.moving_mean.assign(rng.normal(scale=0.5, size=layer.moving_mean.shape).astype(np.float32))
            layer.moving_variance.assign(rng.uniform(0.3, 2.0, layer.moving_variance.shape).astype(np.float32))
            layer.steps.assign(layer.warmup_steps if warmed_up else 0)
    brain.actor_weights_changed()
    return brain


def batch_renorm_layers(model: keras.Model) -> list[BatchRenorm]:
    return [layer for layer in model.get_layer(f"{model.name}_mlp").layers if isinstance(layer, BatchRenorm)]


class CrossQTest(unittest.TestCase):
    """variant crossq: no frozen networks; its losses against the float64 reference, with the joint batch's
    statistics; running statistics checkpointed; K steps in one call; the folded NumPy actor."""

    def losses_and_reference(self, warmed_up: bool, **changes):
        brain = crossq_brain(warmed_up, **changes)
        rng = np.random.default_rng(4)
        obs, act, rew, _, terminated = random_batch(rng, 16)
        # s' distributed unlike s (as states a policy moves towards): the joint batch's statistics differ from s's
        batch = Minibatch(obs, act, rew, (1.5 * obs + 1.0).astype(np.float32), terminated)
        eps, next_eps = (rng.normal(size=(16, ACT_DIM)).astype(np.float32) for _ in range(2))
        expected = crossq_reference_losses(brain, batch, eps, next_eps)  # before compute_losses moves the statistics
        separate = crossq_reference_losses(brain, batch, eps, next_eps, joint=False)
        return brain, batch, brain.compute_losses(*batch, eps, next_eps), expected, separate

    def test_losses_equal_the_reference_with_the_joint_batch_statistics(self):
        for warmed_up in (False, True):
            with self.subTest(warmed_up=warmed_up):
                _, _, got, expected, separate = self.losses_and_reference(warmed_up, alpha="auto")
                self.assertEqual(set(got), set(expected) | {"alpha", "alpha_loss"})
                for key, value in expected.items():
                    self.assertAlmostEqual(float(got[key]), value, delta=1e-4 * max(1.0, abs(value)), msg=key)
                for key in ("q1_loss", "q2_loss"):  # two separate passes give losses farther off than the tolerance
                    self.assertGreater(abs(separate[key] - expected[key]), 20 * 1e-4 * expected[key], key)

    def test_an_update_that_moves_a_delayed_actor_reports_compute_losses_values(self):
        """actor_update_interval 2 (the actor's losses in their own branch, before the critics' pass): update 0's
        metrics are compute_losses' on the same batch and noise, every network still at its weights and statistics
        before the update."""
        brain, twin = (crossq_brain(warmed_up=True, alpha="auto", actor_update_interval=2) for _ in range(2))
        batch = random_batch(np.random.default_rng(4), 16)
        noise = tf.random.Generator.from_state(brain.noise.state.numpy(), brain.noise.algorithm)
        eps, next_eps = noise.normal([16, ACT_DIM]), noise.normal([16, ACT_DIM])
        expected = twin.compute_losses(*batch, eps, next_eps)
        got = brain.train_step(batch)
        self.assertEqual(set(got), set(expected) | {"all_finite"})
        for key, value in expected.items():
            self.assertAlmostEqual(float(got[key]), float(value), delta=1e-5 * max(1.0, abs(float(value))), msg=key)

    def test_the_critic_gradient_holds_the_target_half_constant(self):
        """d q1_loss / d theta_1 is that of 0.5 mean((Q_1(s, a) - y)^2) with y a constant, Q_1(s, a) the (s, a) half
        of the joint training-mode pass: gradient reaches theta_1 through the joint batch statistics, not through y."""
        brain = crossq_brain()  # in the warm-up: a training-mode pass does not read the running statistics it moves
        rng = np.random.default_rng(4)
        batch = random_batch(rng, 16)
        eps, next_eps = (rng.normal(size=(16, ACT_DIM)).astype(np.float32) for _ in range(2))
        next_act, next_log_pi, _ = crossq_policy(brain, np.float64(batch.next_obs), next_eps, training=False)
        variables = brain.Q_theta_1.trainable_variables
        with tf.GradientTape() as tape:
            q1_loss = brain.compute_losses(*batch, eps, next_eps)["q1_loss"]
        got = tape.gradient(q1_loss, variables)
        joint = [np.concatenate([batch.obs, batch.next_obs]), np.concatenate([batch.act, next_act]).astype(np.float32)]
        with tf.GradientTape() as tape:
            (q_data, q1_next), (_, q2_next) = (tf.split(critic(joint, training=True)[:, 0], 2)
                                               for critic in brain.critics)
            y = tf.constant(brain.spec.reward_scaling * batch.rew + brain.spec.discount_factor * (1 - batch.terminated)
                            * (np.minimum(q1_next.numpy(), q2_next.numpy()) - 0.3 * next_log_pi), tf.float32)
            loss = 0.5 * tf.reduce_mean(tf.square(q_data - y))
        self.assertAlmostEqual(float(loss), float(q1_loss), delta=1e-4 * float(loss))
        for got_gradient, expected in zip(got, tape.gradient(loss, variables), strict=True):
            np.testing.assert_allclose(got_gradient.numpy(), expected.numpy(), rtol=1e-3,
                                       atol=1e-4 * np.abs(expected.numpy()).max())

    def test_the_running_statistics_move_by_the_training_passes_only(self):
        """Each critic's input BatchRenorm moves by the joint batch [s, a; s', a'], phi's by s alone (a' comes from
        phi in evaluation mode), each once per compute_losses."""
        brain = crossq_brain()
        before = {model.name: (float(batch_renorm_layers(model)[0].moving_mean[0]), batch_renorm_layers(model)[0])
                  for model in (brain.phi, *brain.critics)}
        rng = np.random.default_rng(4)
        batch = random_batch(rng, 16)
        eps, next_eps = (rng.normal(size=(16, ACT_DIM)).astype(np.float32) for _ in range(2))
        next_act, _, _ = crossq_policy(brain, np.float64(batch.next_obs), next_eps, training=False)
        brain.compute_losses(*batch, eps, next_eps)
        joint_input = np.concatenate([np.concatenate([batch.obs, batch.act], 1),
                                      np.concatenate([batch.next_obs, next_act], 1)]).astype(np.float64)
        for name, (mean, layer) in before.items():
            inputs = batch.obs.astype(np.float64) if name == "phi" else joint_input
            self.assertAlmostEqual(float(layer.moving_mean[0]), 0.99 * mean + 0.01 * inputs[:, 0].mean(), places=6)
            self.assertEqual(int(layer.steps), 1, name)

    def test_a_delayed_actor_is_evaluated_only_on_the_updates_that_move_it(self):
        """actor_update_interval 3: phi's training pass (its statistics' count) runs on updates 0 and 3 only, the
        critics' on all five; pi_loss and alpha_loss of updates 1-2 repeat update 0's (sbx's delayed actor)."""
        brain = crossq_brain(alpha="auto", actor_update_interval=3)
        rng = np.random.default_rng(5)
        metrics = [brain.train_step(random_batch(rng, 16)) for _ in range(5)]
        self.assertEqual(int(batch_renorm_layers(brain.phi)[0].steps), 2)
        self.assertEqual([int(batch_renorm_layers(critic)[0].steps) for critic in brain.critics], [5, 5])
        for key in ("pi_loss", "alpha_loss", "log_pi_mean"):
            values = [float(step[key]) for step in metrics]
            self.assertEqual(values[:3], [values[0]] * 3, key)
            self.assertEqual(values[3:], [values[3]] * 2, key)
            self.assertNotEqual(values[3], values[0], key)
        q_losses = [float(step["q1_loss"]) for step in metrics]
        self.assertEqual(len(set(q_losses)), 5)

    def test_no_frozen_networks_and_no_polyak_update(self):
        brain = crossq_brain()
        self.assertEqual(brain.target_pairs, [])
        for name in ("V_psi", "frozen_V_psi", "frozen_critics"):
            self.assertFalse(hasattr(brain, name), name)
        self.assertEqual([key for key in brain.trackables() if "frozen" in key or "V_psi" in key], [])
        # the optimizers train gamma, beta and the Dense weights; never the running statistics
        for loss, model in (("q1_loss", brain.Q_theta_1), ("q2_loss", brain.Q_theta_2), ("pi_loss", brain.phi)):
            trained = {v.path for v in brain.trained_by_loss[loss]}
            self.assertEqual(trained, {v.path for v in model.trainable_variables})
            self.assertEqual({v.name for v in model.non_trainable_variables} - {"moving_mean", "moving_variance",
                                                                                  "steps"}, set())
            self.assertTrue(trained.isdisjoint(v.path for v in model.non_trainable_variables))

    def test_a_restored_brain_continues_the_running_statistics_bit_for_bit(self):
        """The running statistics and the warm-up counts are in the checkpoint: the step after a restore is the
        uninterrupted run's (the counts one step short of the warm-up's end, so the step after the checkpoint
        renormalises only if they were restored)."""
        spec = ExperimentSpec(**{**TINY, "variant": "crossq", "actor_update_interval": 2})
        minibatches = filled_buffer().sample(16, num_batches=3)
        brain = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM)
        for model in (brain.phi, *brain.critics):
            for layer in batch_renorm_layers(model):
                layer.steps.assign(layer.warmup_steps - 1)
        brain.train_step(minibatches[0])
        brain.train_step(minibatches[1])
        restored = restored_copy(self, brain)
        assert_same_step(brain, restored, minibatches[2])
        values, expected_values = checkpointed_values(restored), checkpointed_values(brain)
        for name in expected_values:
            np.testing.assert_array_equal(values[name], expected_values[name], err_msg=name)

    def test_the_numpy_actor_is_phi_in_evaluation_mode_with_the_batch_renorm_folded_in(self):
        brain = crossq_brain(seed=8)
        obs = np.random.default_rng(1).normal(size=(32, OBS_DIM)).astype(np.float32)
        for when in ("built", "after two train steps"):
            with self.subTest(when=when):
                mu, log_std = (x.numpy() for x in brain.phi(obs, training=False))
                _, _, (mu64, log_std64) = crossq_policy(brain, obs.astype(np.float64), 0.0, training=False)
                np.testing.assert_allclose(mu, mu64, rtol=1e-5, atol=1e-5)  # phi(s) is the reference's
                got_mu, got_log_std = brain.numpy_actor().mu_log_std(obs)
                np.testing.assert_allclose(got_mu, mu, rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(got_log_std, log_std, rtol=1e-5, atol=1e-5)
                np.testing.assert_allclose(brain.deterministic_action(obs), np.tanh(mu), atol=1e-6)
                for _ in range(2):
                    brain.train_step(filled_buffer().sample(16))

    def test_k_steps_equal_k_train_steps_bit_for_bit(self):
        TrainStepsTest().check_equals_single_steps(jit_compile_steps=False, variant="crossq", actor_update_interval=3,
                                                   adam_beta1=0.5, alpha="auto")

    @pytest.mark.slow  # traces two ensemble updates with dropout: about 15 seconds
    def test_an_ensemble_with_dropout_and_layer_norm_k_steps_equal_k_train_steps_bit_for_bit(self):
        TrainStepsTest().check_equals_single_steps(jit_compile_steps=False, num_batches=3, variant="crossq",
                                                   num_critics=3, critic_dropout=0.1, critic_layer_norm=True)

    @pytest.mark.slow  # XLA compiles
    def test_xla_k_steps_equal_k_train_steps(self):
        TrainStepsTest().check_equals_single_steps(jit_compile_steps=True, variant="crossq", actor_update_interval=3)

    def test_metrics_are_v2s(self):
        brain = crossq_brain(alpha="auto")
        metrics = brain.train_step(random_batch(np.random.default_rng(0), 16))
        self.assertEqual(set(metrics), {"q1_loss", "q2_loss", "q1_mean", "q2_mean", "pi_loss", "alpha_loss",
                                        "log_pi_mean", "alpha", "all_finite"})
        self.assertLessEqual(set(metrics) - {"all_finite"}, set(UPDATE_METRICS))


class UpdateCounterCheckpointTest(unittest.TestCase):
    def test_a_checkpoint_from_before_the_rename_restores_the_update_counter(self):
        """Checkpoints hold `updates` under "gradient_step", the counter's name when they were first written."""
        brain = tiny_brain()
        with tempfile.TemporaryDirectory() as folder:
            old = tf.train.Checkpoint(gradient_step=tf.Variable(7, dtype=tf.int64)).write(os.path.join(folder, "old"))
            tf.train.Checkpoint(**brain.trackables()).read(old).expect_partial()
        self.assertEqual(int(brain.updates), 7)


class LearnedAlphaTest(unittest.TestCase):
    """log_alpha follows -d/d log_alpha of J(alpha) = -mean(log_alpha * (log pi + target_entropy)): alpha rises
    while the policy's entropy -log pi is below the target, and falls while it is above."""

    def alphas(self, log_std: float, target_entropy: float, steps: int = 5) -> list[float]:
        brain = tiny_brain(alpha="auto", target_entropy=target_entropy, alpha_learning_rate=1e-2)
        head = brain.phi.get_layer("policy_log_std")
        kernel, bias = head.get_weights()
        head.set_weights([np.zeros_like(kernel), np.full_like(bias, log_std)])  # entropy set by log_std alone
        rng, alphas = np.random.default_rng(0), [float(brain.alpha)]
        for _ in range(steps):
            brain.train_step(random_batch(rng, 32))
            alphas.append(float(brain.alpha))
        return alphas

    def test_alpha_rises_while_entropy_is_below_the_target(self):
        alphas = self.alphas(log_std=-5.0, target_entropy=-1.0)  # entropy about 2 * (1.42 - 5) = -7
        self.assertTrue(all(b > a for a, b in zip(alphas, alphas[1:], strict=False)), alphas)

    def test_alpha_falls_while_entropy_is_above_the_target(self):
        alphas = self.alphas(log_std=1.0, target_entropy=-3.0)  # near uniform on [-1, 1]^2: entropy above 0
        self.assertTrue(all(b < a for a, b in zip(alphas, alphas[1:], strict=False)), alphas)


def actor_gradients(brain: SoftActorCriticBrain, batch: Minibatch, n_draws: int, seed: int) -> np.ndarray:
    """n_draws independent estimates of d pi_loss / d phi, flattened, one row per draw."""
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_draws):
        eps = rng.normal(size=(brain.spec.num_actor_samples * len(batch.rew), brain.act_dim)).astype(np.float32)
        with tf.GradientTape() as tape:
            pi_loss = brain.compute_losses(*batch, eps, eps[:len(batch.rew)])["pi_loss"]
        gradients = tape.gradient(pi_loss, brain.phi.trainable_variables)
        rows.append(np.concatenate([g.numpy().ravel() for g in gradients]))
    return np.array(rows)


class ActorGradientEstimatorTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        rng = np.random.default_rng(0)
        size, obs_dim, act_dim = 32, 3, 1
        cls.batch = Minibatch(obs=rng.normal(size=(size, obs_dim)).astype(np.float32),
                              act=rng.uniform(-1, 1, (size, act_dim)).astype(np.float32),
                              rew=rng.normal(size=size).astype(np.float32),
                              next_obs=rng.normal(size=(size, obs_dim)).astype(np.float32),
                              terminated=np.zeros(size, np.float32))
        tiny = dict(FAST, phi_nn_h_layer_topo=(16,), psi_nn_h_layer_topo=(16,), theta_nn_h_layer_topo=(16,))
        cls.brains = {name: SoftActorCriticBrain(ExperimentSpec(**tiny, **changes), obs_dim, act_dim)
                      for name, changes in (("reinforce1", dict(actor_gradient="reinforce")),
                                            ("reinforce10", dict(actor_gradient="reinforce", num_actor_samples=10)),
                                            ("reparametrize1000", dict(num_actor_samples=1000)),
                                            ("reinforce1000", dict(actor_gradient="reinforce",
                                                                   num_actor_samples=1000)))}

    def test_same_seed_gives_the_same_networks(self):
        for brain in self.brains.values():
            for a, b in zip(brain.phi.get_weights(), self.brains["reinforce1"].phi.get_weights(), strict=True):
                np.testing.assert_array_equal(a, b)

    @pytest.mark.slow  # hundreds of gradient estimates: about a minute
    def test_reinforce_10_has_lower_gradient_variance_than_reinforce_1(self):
        variance_1 = actor_gradients(self.brains["reinforce1"], self.batch, 200, seed=1).var(axis=0).sum()
        variance_10 = actor_gradients(self.brains["reinforce10"], self.batch, 200, seed=2).var(axis=0).sum()
        self.assertLess(variance_10, variance_1 / 4)  # about 1/10 expected: 10 independent samples per state

    def test_reinforce_and_reparametrize_estimate_the_same_gradient(self):
        # Both are unbiased estimates of grad E_a~pi[alpha log pi(a|s) - Q(s, a)].
        reinforce = actor_gradients(self.brains["reinforce1000"], self.batch, 20, seed=3).mean(axis=0)
        reparametrize = actor_gradients(self.brains["reparametrize1000"], self.batch, 20, seed=4).mean(axis=0)
        cosine = reinforce @ reparametrize / np.linalg.norm(reinforce) / np.linalg.norm(reparametrize)
        self.assertGreater(cosine, 0.95)
        self.assertAlmostEqual(np.linalg.norm(reinforce) / np.linalg.norm(reparametrize), 1.0, delta=0.15)


class ActingTest(unittest.TestCase):
    """Acting goes through a NumPy copy of phi: it must equal the Keras model, before and after phi changes."""

    def keras_mu_log_std(self, brain, obs):
        mu, log_std = brain.phi(np.atleast_2d(obs).astype(np.float32))
        return mu.numpy(), log_std.numpy()

    def test_deterministic_action_is_tanh_mu_of_phi(self):
        brain = tiny_brain()
        obs = np.random.default_rng(0).normal(size=(4, OBS_DIM)).astype(np.float32)
        mu, _ = self.keras_mu_log_std(brain, obs)
        np.testing.assert_allclose(brain.deterministic_action(obs), np.tanh(mu), atol=1e-6)
        np.testing.assert_allclose(brain.deterministic_action(obs[0]), np.tanh(mu[0]), atol=1e-6)

    def test_sample_action_is_the_squashed_gaussian_of_phi(self):
        brain = tiny_brain()
        obs = np.random.default_rng(0).normal(size=(50, OBS_DIM)).astype(np.float32) * 100  # saturates tanh
        eps = np.random.default_rng(7).standard_normal((50, ACT_DIM), dtype=np.float32)
        brain.action_rng = np.random.default_rng(7)
        actions = brain.sample_action(obs)
        mu, log_std = self.keras_mu_log_std(brain, obs)
        np.testing.assert_allclose(actions, np.tanh(mu + np.exp(log_std) * eps), atol=1e-5)
        self.assertTrue(np.all(np.abs(actions) <= 1.0))
        self.assertEqual(brain.sample_action(obs[0]).shape, (ACT_DIM,))

    def test_acting_follows_phi_after_every_train_step(self):
        brain = tiny_brain()
        obs = np.random.default_rng(0).normal(size=(8, OBS_DIM)).astype(np.float32)
        rng = np.random.default_rng(1)
        for _ in range(3):
            before = brain.deterministic_action(obs)
            brain.train_step(random_batch(rng, 16))
            after = brain.deterministic_action(obs)
            self.assertGreater(np.abs(after - before).max(), 1e-6)  # phi moved, and acting saw it
            np.testing.assert_allclose(after, np.tanh(self.keras_mu_log_std(brain, obs)[0]), atol=1e-6)

    def test_acting_follows_any_write_to_phi(self):
        brain = tiny_brain()
        obs = np.random.default_rng(0).normal(size=(8, OBS_DIM)).astype(np.float32)
        brain.train_step(random_batch(np.random.default_rng(1), 16))
        folder = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, folder)
        saved = tf.train.Checkpoint(phi=brain.phi).write(os.path.join(folder, "phi"))
        writes = {"assign": lambda: [v.assign(v * 0.5) for v in brain.phi.trainable_variables],
                  "set_weights": lambda: brain.phi.set_weights([w * -1.5 for w in brain.phi.get_weights()]),
                  "checkpoint restore": lambda: tf.train.Checkpoint(phi=brain.phi).read(saved).assert_consumed()}
        for name, write in writes.items():
            with self.subTest(write=name):
                before = brain.deterministic_action(obs)
                write()
                expected = np.tanh(self.keras_mu_log_std(brain, obs)[0])
                self.assertGreater(np.abs(expected - before).max(), 1e-4)  # the write changed the policy
                np.testing.assert_allclose(brain.deterministic_action(obs), expected, atol=1e-6)
                mu, log_std = self.keras_mu_log_std(brain, obs)
                rng_state = brain.action_rng.bit_generator.state
                actions = brain.sample_action(obs)
                brain.action_rng.bit_generator.state = rng_state
                noise = brain.action_rng.standard_normal(mu.shape, dtype=np.float32)
                np.testing.assert_allclose(actions, np.tanh(mu + np.exp(log_std) * noise), atol=1e-5)


if __name__ == "__main__":
    unittest.main()
