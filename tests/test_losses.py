"""SoftActorCritic.losses: each loss function alone, on hand-made values, against its formula in NumPy."""
import unittest

import numpy as np
import tensorflow as tf

from SoftActorCritic import losses

Q1 = np.array([1.0, -2.0, 3.0], np.float32)
Q2 = np.array([0.5, -1.0, 4.0], np.float32)
LOG_PI = np.array([-1.0, 0.5, -0.25], np.float32)


class QBackupTest(unittest.TestCase):
    def test_single_uses_the_first_critic(self):
        np.testing.assert_array_equal(losses.q_backup([Q1], "single")[0], Q1)
        np.testing.assert_array_equal(losses.policy_value([Q1], "single"), Q1)

    def test_clipped_gives_both_critics_the_minimum(self):
        for value in losses.q_backup([Q1, Q2], "clipped"):
            np.testing.assert_array_equal(value, np.minimum(Q1, Q2))
        np.testing.assert_array_equal(losses.policy_value([Q1, Q2], "clipped"), np.minimum(Q1, Q2))

    def test_double_gives_each_critic_the_other_and_the_policy_their_mean(self):
        first, second = losses.q_backup([Q1, Q2], "double")
        np.testing.assert_array_equal(first, Q2)
        np.testing.assert_array_equal(second, Q1)
        np.testing.assert_allclose(losses.policy_value([Q1, Q2], "double"), (Q1 + Q2) / 2)


class LossFormulaTest(unittest.TestCase):
    def test_q_target_bootstraps_unless_terminated(self):
        rew, terminated, next_value = np.float32([1.0, 2.0]), np.float32([0.0, 1.0]), np.float32([10.0, 10.0])
        y = losses.q_target(rew, terminated, next_value, reward_scaling=5.0, discount_factor=0.9)
        np.testing.assert_allclose(y, [5.0 + 9.0, 10.0])

    def test_q_target_takes_a_discount_per_row(self):
        # n-step rows: r already sums k rewards, and each row bootstraps with its own gamma^k
        rew, terminated = np.float32([1.0, 2.0, 3.0]), np.float32([0.0, 0.0, 1.0])
        next_value, discount = np.float32([10.0, 10.0, 10.0]), np.float32([0.9, 0.729, 0.81])
        y = losses.q_target(rew, terminated, next_value, reward_scaling=5.0, discount_factor=tf.constant(discount))
        np.testing.assert_allclose(y, [5.0 + 9.0, 10.0 + 7.29, 15.0], rtol=1e-6)

    def test_q_target_has_no_gradient(self):
        next_value = tf.Variable([3.0])
        with tf.GradientTape() as tape:
            y = losses.q_target(tf.constant([1.0]), tf.constant([0.0]), next_value * 1.0, 1.0, 0.9)
        self.assertIsNone(tape.gradient(y, next_value))

    def test_soft_value(self):
        np.testing.assert_allclose(losses.soft_value(Q1, LOG_PI, 0.2), Q1 - 0.2 * LOG_PI)

    def test_critic_loss_is_half_the_mean_squared_error(self):
        np.testing.assert_allclose(losses.critic_loss(Q1, Q2), 0.5 * np.mean((Q1 - Q2) ** 2), rtol=1e-6)

    def test_value_loss_averages_the_soft_value_over_the_actor_samples(self):
        v = np.float32([0.3, -0.7])
        q_new = np.float32([1.0, 2.0, 3.0, 4.0])  # 2 samples x 2 states, rows ordered (sample, state)
        log_pi = np.float32([-1.0, 0.0, 1.0, 2.0])
        target = np.mean((q_new - 0.5 * log_pi).reshape(2, 2), axis=0)
        np.testing.assert_allclose(losses.value_loss(v, q_new, log_pi, 0.5, num_actor_samples=2),
                                   0.5 * np.mean((v - target) ** 2), rtol=1e-6)

    def test_value_loss_trains_v_alone(self):
        v, q_new = tf.Variable([0.0, 1.0]), tf.Variable([2.0, 3.0])
        with tf.GradientTape() as tape:
            loss = losses.value_loss(v * 1.0, q_new * 1.0, tf.constant([0.1, 0.2]), 0.5, 1)
        v_gradient, q_gradient = tape.gradient(loss, [v, q_new])
        self.assertIsNotNone(v_gradient)
        self.assertIsNone(q_gradient)

    def test_reparametrized_actor_loss(self):
        np.testing.assert_allclose(losses.actor_loss(LOG_PI, Q1, 0.2, reparametrize=True),
                                   np.mean(0.2 * LOG_PI - Q1), rtol=1e-6)

    def test_entropy_only_actor_loss_ignores_q(self):
        np.testing.assert_allclose(losses.actor_loss(LOG_PI, None, 0.2, reparametrize=True), np.mean(0.2 * LOG_PI),
                                   rtol=1e-6)

    def test_reinforce_surrogate_value_and_gradient(self):
        log_pi = tf.Variable(LOG_PI)
        with tf.GradientTape() as tape:
            loss = losses.actor_loss(log_pi * 1.0, Q1, 0.2, reparametrize=False)
        f = 0.2 * LOG_PI - Q1
        np.testing.assert_allclose(loss, np.mean(LOG_PI * f), rtol=1e-6)
        np.testing.assert_allclose(tape.gradient(loss, log_pi), f / len(f), rtol=1e-6)  # f held constant

    def test_temperature_loss_and_its_direction(self):
        log_alpha = tf.Variable(0.4)
        with tf.GradientTape() as tape:
            loss = losses.temperature_loss(log_alpha, tf.constant(LOG_PI), target_entropy=-3.0)
        np.testing.assert_allclose(loss, -0.4 * np.mean(LOG_PI - 3.0), rtol=1e-6)
        # entropy -log pi (about 0.25) is above the target -3: the gradient step lowers log_alpha
        self.assertGreater(float(tape.gradient(loss, log_alpha)), 0.0)


if __name__ == "__main__":
    unittest.main()
