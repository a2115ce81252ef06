"""The SAC family: the homework's sanity signals, REINFORCE's estimator, and a short learning run per variant.

The learning runs use a fast configuration (64x64 networks, learning rate 1e-3, batch 128,
500 random steps) so that each takes about 20 seconds on two cores; seeded, so a run
either always passes or always fails on a given machine. They are marked `slow`
(`pytest -m "not slow"` skips them).
"""
import unittest
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from blocAndTools import ExperimentSpec, Minibatch
from blocAndTools.run_logging import ConsoleView
from SoftActorCritic import SoftActorCriticBrain
from SoftActorCritic.agent import SoftActorCriticAgent
from SoftActorCritic.networks import squashed_sample

EXPERIMENTS = Path(__file__).resolve().parent.parent / "experiments"
FAST = dict(env_id="Pendulum-v1", timestep_per_epoch=1000, min_pool_size=500, batch_size_in_ts=128,
            reward_scaling=1.0, alpha=0.2, learning_rate=1e-3, critic_learning_rate=1e-3,
            phi_nn_h_layer_topo=(64, 64), psi_nn_h_layer_topo=(64, 64), theta_nn_h_layer_topo=(64, 64))


def train(spec: ExperimentSpec) -> list[dict]:
    agent = SoftActorCriticAgent(spec)
    try:
        return agent.train(ConsoleView())
    finally:
        agent.close()


@pytest.mark.slow
class HomeworkSanityTest(unittest.TestCase):
    def test_critic_only_mean_q_settles_near_minus_700(self):
        # sanity_pendulum_1 with hard target copies every 10 steps: the same fixed point, reached in 8k steps.
        spec = ExperimentSpec.from_yaml(EXPERIMENTS / "sac" / "sanity_pendulum_1.yaml").replace(
            max_epoch=8, min_pool_size=500, max_eval_trj=1, learning_rate=1e-3, critic_learning_rate=1e-3,
            target_smoothing_coefficient=1.0, target_update_interval=10)
        q_means = [row["q1_mean"] for row in train(spec)]
        self.assertTrue(all(-1000 < q < -550 for q in q_means[-3:]), q_means)  # large negative, above -1000
        self.assertLess(abs(q_means[-1] - q_means[-2]), 0.05 * abs(q_means[-2]), q_means)  # settled

    def test_entropy_only_policy_entropy_rises_to_log_2(self):
        spec = ExperimentSpec.from_yaml(EXPERIMENTS / "sac" / "sanity_pendulum_2.yaml").replace(
            max_epoch=2, min_pool_size=500, max_eval_trj=1)
        agent = SoftActorCriticAgent(spec)
        log_std_head = agent.brain.phi.get_layer("policy_log_std")
        kernel, bias = log_std_head.get_weights()
        log_std_head.set_weights([kernel, bias - 2.0])  # start from a narrow policy: entropy well below 0
        agent.brain.actor_weights_changed()
        space, rng = agent.playground.observation_space, np.random.default_rng(0)
        obs = rng.uniform(space.low, space.high, (2000, *space.shape)).astype(np.float32)
        mu, log_std = agent.brain.phi(obs)
        eps = rng.standard_normal(mu.shape, dtype=np.float32)
        initial_entropy = -float(np.mean(squashed_sample(mu, log_std, eps)[1]))
        entropy = -agent.train(ConsoleView())[-1]["log_pi_mean"]
        agent.close()
        self.assertLess(initial_entropy, 0.0)
        self.assertGreater(entropy, 0.6, initial_entropy)
        self.assertLess(entropy, np.log(2) + 0.03)  # the uniform distribution on [-1, 1] is the maximum


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
            for a, b in zip(brain.phi.get_weights(), self.brains["reinforce1"].phi.get_weights()):
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


@pytest.mark.slow
class EachVariantLearnsPendulumTest(unittest.TestCase):
    """Better than -400 (random: about -1200) within 5,000 steps, so a broken variant cannot pass."""

    def check_learns(self, **changes):
        rows = train(ExperimentSpec(**{**FAST, "max_epoch": 5, "max_eval_trj": 5, **changes}))
        best_late = max(row["eval_return_mean"] for row in rows[-2:])
        self.assertGreater(best_late, -400, [round(row["eval_return_mean"]) for row in rows])

    def test_v1_clipped_double_q(self):
        self.check_learns()

    def test_v1_single_q(self):
        self.check_learns(q_backup="single")

    def test_v2(self):
        self.check_learns(variant="v2")

    def test_v2_double_q(self):
        self.check_learns(variant="v2", q_backup="double")

    def test_learned_alpha(self):
        self.check_learns(alpha="auto")

    def test_hard_target_updates(self):
        self.check_learns(target_smoothing_coefficient=1.0, target_update_interval=100)


@pytest.mark.slow
class ReinforceLearnsInvertedPendulumTest(unittest.TestCase):
    """The homework's REINFORCE sanity task (sanity_invertedpendulum_reinforce.yaml), cut to 6,000 steps.

    On Pendulum, REINFORCE without a baseline needs far more than a few thousand steps (Q values of
    -100 to -700 multiply log pi); on InvertedPendulum (reward 1 per upright step) it learns quickly.
    The yardstick is measured in the same run: the same seed and networks with the actor frozen.
    Each score is the mean eval return of the last 3 epochs, 10 episodes each.
    """

    @staticmethod
    def late_return(**changes) -> float:
        spec = ExperimentSpec.from_yaml(EXPERIMENTS / "sac" / "sanity_invertedpendulum_reinforce.yaml").replace(
            max_epoch=6, min_pool_size=1000, max_eval_trj=10, phi_nn_h_layer_topo=(64, 64),
            theta_nn_h_layer_topo=(64, 64), **changes)
        return float(np.mean([row["eval_return_mean"] for row in train(spec)[-3:]]))

    @classmethod
    def setUpClass(cls):
        cls.frozen_actor = cls.late_return(actor_loss="none")

    def test_reinforce_1_learns(self):
        self.assertGreater(self.late_return(num_actor_samples=1), 2 * self.frozen_actor)

    def test_reinforce_10_learns(self):
        self.assertGreater(self.late_return(num_actor_samples=10), 2 * self.frozen_actor)


if __name__ == "__main__":
    unittest.main()
