"""SoftActorCriticBrain: each loss against a NumPy hand computation, the update step, the target update."""
import os
import shutil
import tempfile
import unittest

import numpy as np
import tensorflow as tf

from blocAndTools import ExperimentSpec, Minibatch
from SoftActorCritic import SoftActorCriticBrain

OBS_DIM, ACT_DIM, BATCH = 3, 2, 5
TINY = dict(phi_nn_h_layer_topo=(4,), psi_nn_h_layer_topo=(4,), theta_nn_h_layer_topo=(4,),
            min_pool_size=8, batch_size_in_ts=8, reward_scaling=2.0, alpha=0.3, discount_factor=0.9)


def tiny_brain(**changes) -> SoftActorCriticBrain:
    return SoftActorCriticBrain(ExperimentSpec(**{**TINY, **changes}), OBS_DIM, ACT_DIM)


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


def policy(brain, obs, eps):
    """(a, log pi(a|s)) in float64 with the textbook formula log N(u) - sum log(1 - tanh(u)^2)."""
    def layer(name):
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


def reference_losses(brain, batch, eps, next_eps):
    spec, alpha = brain.spec, float(brain.alpha)
    obs, act, rew, next_obs, d = (np.asarray(x, np.float64) for x in batch)
    n_samples = spec.num_actor_samples  # eps holds n_samples blocks of one action per state
    obs_k = np.tile(obs, (n_samples, 1))
    new_act, log_pi = policy(brain, obs_k, eps)
    q_new = [q_value(c, obs_k, new_act) for c in brain.critics]
    q_pi = {"single": q_new[0], "clipped": np.minimum(*q_new) if len(q_new) == 2 else None,
            "double": np.mean(q_new, axis=0)}[spec.q_backup]
    objective = alpha * log_pi - (q_pi if spec.actor_loss == "soft_q" else 0.0)
    if spec.actor_gradient == "reinforce":  # the surrogate whose gradient is the score-function estimate
        objective = log_pi * objective
    out = {"pi_loss": np.mean(objective), "log_pi_mean": np.mean(log_pi)}
    if spec.variant == "v1":
        v_next = [v_value(brain.frozen_V_psi, next_obs)] * len(brain.critics)
        v = v_value(brain.V_psi, obs)
        v_target = np.mean((q_pi - alpha * log_pi).reshape(n_samples, -1), axis=0)
        out["v_loss"] = 0.5 * np.mean((v - v_target) ** 2)
    else:
        next_act, next_log_pi = policy(brain, next_obs, next_eps)
        q_next = [q_value(f, next_obs, next_act) for f in brain.frozen_critics]
        if spec.q_backup == "double":
            q_next = q_next[::-1]
        elif spec.q_backup == "clipped":
            q_next = [np.minimum(*q_next)] * 2
        v_next = [q - alpha * next_log_pi for q in q_next]
    for i, critic in enumerate(brain.critics):
        y = spec.reward_scaling * rew + spec.discount_factor * (1 - d) * v_next[i]
        out[f"q{i + 1}_loss"] = 0.5 * np.mean((q_value(critic, obs, act) - y) ** 2)
    return out


class LossesMatchHandComputationTest(unittest.TestCase):
    def check(self, **changes):
        brain = tiny_brain(**changes)
        rng = np.random.default_rng(3)
        for model in [brain.phi, *brain.critics, *[f for _, f in brain.target_pairs]] + \
                ([brain.V_psi] if brain.spec.variant == "v1" else []):
            model.set_weights([rng.normal(scale=0.7, size=w.shape).astype(np.float32) for w in model.get_weights()])
        batch = random_batch(rng)
        eps = rng.normal(size=(BATCH * brain.spec.num_actor_samples, ACT_DIM)).astype(np.float32)
        next_eps = rng.normal(size=(BATCH, ACT_DIM)).astype(np.float32)
        got = brain.compute_losses(*batch, eps, next_eps)
        for key, expected in reference_losses(brain, batch, eps, next_eps).items():
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
        batch = random_batch(np.random.default_rng(1))._replace(terminated=np.ones(BATCH, np.float32))
        got = brain.compute_losses(*batch, np.zeros((BATCH, ACT_DIM), np.float32),
                                   np.zeros((BATCH, ACT_DIM), np.float32))
        q = q_value(brain.Q_theta_1, batch.obs, batch.act)
        self.assertAlmostEqual(float(got["q1_loss"]), 0.5 * np.mean((q - 2.0 * batch.rew) ** 2), places=4)


class TrainStepTest(unittest.TestCase):
    def test_every_network_changes_and_frozen_v_moves_by_tau(self):
        brain = tiny_brain(target_smoothing_coefficient=0.1)
        before = {m.name: [w.copy() for w in m.get_weights()]
                  for m in (brain.phi, brain.V_psi, brain.Q_theta_1, brain.Q_theta_2, brain.frozen_V_psi)}
        brain.train_step(random_batch(np.random.default_rng(0), 16))
        for name in ("phi", "V_psi", "Q_theta_1", "Q_theta_2"):
            model = getattr(brain, name)
            self.assertTrue(any(not np.array_equal(a, b) for a, b in zip(before[name], model.get_weights())), name)
        for new_v, old_frozen, frozen in zip(brain.V_psi.get_weights(), before["frozen_V_psi"],
                                             brain.frozen_V_psi.get_weights()):
            np.testing.assert_allclose(frozen, 0.1 * new_v + 0.9 * old_frozen, atol=1e-6)

    def test_target_moves_only_every_interval(self):
        brain = tiny_brain(target_update_interval=3)
        rng = np.random.default_rng(0)
        frozen = [brain.frozen_V_psi.get_weights()[0].copy()]
        for _ in range(6):
            brain.train_step(random_batch(rng, 16))
            frozen.append(brain.frozen_V_psi.get_weights()[0].copy())
        moved = [not np.array_equal(a, b) for a, b in zip(frozen, frozen[1:])]
        self.assertEqual(moved, [False, False, True, False, False, True])

    def test_v2_frozen_critics_track_the_critics(self):
        brain = tiny_brain(variant="v2", target_smoothing_coefficient=1.0)
        brain.train_step(random_batch(np.random.default_rng(0), 16))
        for critic, frozen in zip(brain.critics, brain.frozen_critics):
            for a, b in zip(critic.get_weights(), frozen.get_weights()):
                np.testing.assert_array_equal(a, b)

    def test_frozen_actor_is_not_updated(self):
        brain = tiny_brain(actor_loss="none")
        before = [w.copy() for w in brain.phi.get_weights()]
        brain.train_step(random_batch(np.random.default_rng(0), 16))
        for a, b in zip(before, brain.phi.get_weights()):
            np.testing.assert_array_equal(a, b)

    def test_gradients_reach_mu_and_log_std_heads(self):
        brain = tiny_brain()
        batch = random_batch(np.random.default_rng(0), 16)
        eps = np.random.default_rng(1).normal(size=(16, ACT_DIM)).astype(np.float32)
        with tf.GradientTape() as tape:
            pi_loss = brain.compute_losses(*batch, eps, eps)["pi_loss"]
        variables = brain.phi.trainable_variables
        for variable, gradient in zip(variables, tape.gradient(pi_loss, variables)):
            if "policy_mu" in variable.path or "policy_log_std" in variable.path:
                self.assertGreater(float(tf.reduce_max(tf.abs(gradient))), 0.0, variable.path)

    def test_train_step_is_traced_once(self):
        brain = tiny_brain()
        rng = np.random.default_rng(0)
        for _ in range(100):
            brain.train_step(random_batch(rng, 16))
        self.assertEqual(brain._update_function.experimental_get_tracing_count(), 1)

    def test_metrics_are_finite_scalars(self):
        for changes in ({}, {"variant": "v2", "alpha": "auto"}, {"actor_gradient": "reinforce",
                                                                 "num_actor_samples": 4}):
            metrics = tiny_brain(**changes).train_step(random_batch(np.random.default_rng(0), 16))
            for key, value in metrics.items():
                self.assertEqual(value.shape, (), key)
                self.assertTrue(np.isfinite(float(value)), f"{changes} {key}")


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
