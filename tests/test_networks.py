"""Squashed Gaussian math, the MLP builder and its kernel initializers, BatchRenorm, polyak_update and FusedAdam."""
import unittest

import keras
import numpy as np
import tensorflow as tf

from blocAndTools import ExperimentSpec, UserInputError, build_mlp, polyak_update
from blocAndTools.nn_blocs import BatchRenorm, FusedAdam, splitmix64_uniform
from SoftActorCritic import SoftActorCriticBrain
from SoftActorCritic.networks import build_gaussian_policy, squashed_log_prob, squashed_sample


def analytic_log_prob(u, mu, std):
    """float64 log N(u; mu, std) - sum log(1 - tanh(u)^2), with log(1 - tanh^2 u) = log sech^2 u
    = log 4 - 2|u| - 2 log(1 + exp(-2|u|)): finite even where tanh(u) rounds to +-1."""
    log_normal = -0.5 * ((u - mu) / std) ** 2 - np.log(std) - 0.5 * np.log(2 * np.pi)
    log_sech2 = np.log(4.0) - 2 * np.abs(u) - 2 * np.log1p(np.exp(-2 * np.abs(u)))
    return np.sum(log_normal - log_sech2, axis=-1)


class SquashedGaussianTest(unittest.TestCase):
    def test_log_prob_is_finite_and_exact_for_large_means(self):
        eps = np.random.default_rng(0).normal(size=(64, 2))
        for mu_value in (-50.0, -5.0, 0.0, 5.0, 50.0):
            mu = np.full((64, 2), mu_value)
            log_std = np.full((64, 2), -0.5)
            action, log_pi = squashed_sample(tf.constant(mu, tf.float32), tf.constant(log_std, tf.float32),
                                             tf.constant(eps, tf.float32))
            self.assertTrue(np.all(np.isfinite(log_pi.numpy())), mu_value)
            self.assertTrue(np.all(np.abs(action.numpy()) <= 1.0))
            if abs(mu_value) == 50.0:  # tanh(u) is exactly +-1 in float32: atanh would be infinite
                self.assertTrue(np.all(np.abs(action.numpy()) == 1.0))
            u = mu + np.exp(log_std) * eps.astype(np.float32)
            expected = analytic_log_prob(u, mu, np.exp(log_std))
            np.testing.assert_allclose(log_pi.numpy(), expected, rtol=1e-5, atol=1e-5)

    def test_log_prob_matches_textbook_formula_where_tanh_is_not_saturated(self):
        rng = np.random.default_rng(1)
        u, mu, log_std = rng.normal(size=(32, 3)), rng.normal(size=(32, 3)), rng.uniform(-1, 0.5, (32, 3))
        expected = np.sum(-0.5 * ((u - mu) / np.exp(log_std)) ** 2 - log_std - 0.5 * np.log(2 * np.pi)
                          - np.log(1 - np.tanh(u) ** 2), axis=-1)
        eps = (u - mu) / np.exp(log_std)
        got = squashed_log_prob(*(tf.constant(x, tf.float32) for x in (u, eps, log_std)))
        np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)

    def test_log_prob_is_exact_at_the_log_std_floor(self):
        # std = exp(-20) = 2e-9: u = mu + std * eps rounds to mu in float32, but log N must still be -0.5 eps^2 + ...
        eps = np.array([[1.5], [-0.3], [2.5]])
        mu, log_std = np.full((3, 1), 0.7), np.full((3, 1), -20.0)
        expected = analytic_log_prob(mu + np.exp(log_std) * eps, mu, np.exp(log_std))
        for reparametrize in (True, False):
            _, log_pi = squashed_sample(*(tf.constant(x, tf.float32) for x in (mu, log_std, eps)), reparametrize)
            np.testing.assert_allclose(log_pi.numpy(), expected, rtol=1e-6, err_msg=f"{reparametrize=}")

    def check_reinforce_score(self, log_std_value: float):
        """With u held fixed, d log pi / d mu = eps / std and d log pi / d log_std = eps^2 - 1 (the score)."""
        eps = tf.constant([[1.5, -0.5]])
        mu, log_std = tf.Variable([[0.7, -0.2]]), tf.Variable([[log_std_value, log_std_value]])
        with tf.GradientTape() as tape:
            _, log_pi = squashed_sample(mu, log_std, eps, reparametrize=False)
        d_mu, d_log_std = tape.gradient(log_pi, [mu, log_std])
        std = np.exp(np.float64(log_std_value))
        np.testing.assert_allclose(d_mu.numpy(), eps.numpy() / std, rtol=1e-5)
        np.testing.assert_allclose(d_log_std.numpy(), eps.numpy() ** 2 - 1, rtol=1e-5)

    def test_reinforce_score_is_exact(self):
        self.check_reinforce_score(-0.5)

    def test_reinforce_score_is_not_zero_at_the_log_std_floor(self):
        self.check_reinforce_score(-20.0)

    def test_log_std_is_clipped_to_paper_range(self):
        phi = build_gaussian_policy(3, 2, (8,), "relu")
        phi.get_layer("policy_log_std").set_weights([np.full((8, 2), 100.0, np.float32),
                                                     np.full(2, 100.0, np.float32)])
        _, log_std = phi(np.ones((1, 3), np.float32))
        np.testing.assert_array_equal(log_std.numpy(), 2.0)
        phi.get_layer("policy_log_std").set_weights([np.full((8, 2), -100.0, np.float32),
                                                     np.full(2, -100.0, np.float32)])
        _, log_std = phi(np.ones((1, 3), np.float32))
        np.testing.assert_array_equal(log_std.numpy(), -20.0)


class BuildMlpTest(unittest.TestCase):
    def test_hidden_layers_follow_topology_and_activation(self):
        mlp = build_mlp((5, 7), "tanh", name="trunk")
        out = mlp(np.ones((2, 3), np.float32))
        self.assertEqual(out.shape, (2, 7))
        self.assertTrue(np.all(np.abs(out.numpy()) <= 1.0))
        self.assertEqual([layer.units for layer in mlp.layers], [5, 7])

    def test_layer_norm_normalises_each_hidden_layer_before_its_activation(self):
        mlp = build_mlp((4, 3), "relu", name="trunk", layer_norm=True)
        x = np.random.default_rng(0).normal(size=(5, 2)).astype(np.float32)
        mlp(x)  # builds the weights
        rng = np.random.default_rng(1)
        for layer in mlp.layers:  # random gamma and beta too, so a missing scale or shift shows
            layer.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in layer.get_weights()])
        h = x.astype(np.float64)
        for i in range(2):  # by hand: relu(gamma * (h W + b - mean) / sqrt(var + 1e-3) + beta)
            (kernel, bias), (gamma, beta) = mlp.layers[3 * i].get_weights(), mlp.layers[3 * i + 1].get_weights()
            z = h @ kernel + bias
            z = gamma * (z - z.mean(axis=1, keepdims=True)) / np.sqrt(z.var(axis=1, keepdims=True) + 1e-3) + beta
            h = np.maximum(z, 0.0)
        np.testing.assert_allclose(mlp(x).numpy(), h, rtol=1e-4, atol=1e-5)

    def test_critics_with_layer_norm_start_as_copies_in_the_brain(self):
        from blocAndTools.experiment_spec import ExperimentSpec
        from SoftActorCritic.brain import SoftActorCriticBrain

        for variant in ("v1", "v2"):
            brain = SoftActorCriticBrain(ExperimentSpec(variant=variant, critic_layer_norm=True,
                                                        theta_nn_h_layer_topo=(8, 8), psi_nn_h_layer_topo=(8, 8),
                                                        phi_nn_h_layer_topo=(8, 8)), obs_dim=3, act_dim=1)
            for online, frozen in brain.target_pairs:
                norm_variables = [v for v in online.trainable_variables if "layer_norm" in v.path]
                self.assertEqual(len(norm_variables), 4)  # gamma and beta of 2 hidden layers
                for source, target in zip(online.trainable_variables, frozen.variables, strict=True):
                    np.testing.assert_array_equal(source.numpy(), target.numpy())

    def test_dropout_masks_come_from_the_given_generator_before_the_layer_norm(self):
        """relu(LayerNorm(Dropout(x W + b))) with the masks of a copy of the generator: keep = u >= rate, kept
        units scaled by 1 / (1 - rate); a new mask at every call."""
        noise = tf.random.Generator.from_seed(7)
        mlp = build_mlp((6,), "relu", name="trunk", layer_norm=True, dropout=0.5, dropout_noise=noise)
        x = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
        mlp(x)  # builds the weights
        copy = tf.random.Generator.from_state(noise.state.numpy(), noise.algorithm)
        (kernel, bias), (gamma, beta) = mlp.layers[0].get_weights(), mlp.layers[2].get_weights()
        for _ in range(2):
            keep = splitmix64_uniform(tf.constant([4, 6]), copy.uniform_full_int([], tf.uint64)).numpy() >= 0.5
            z = np.where(keep, (x @ kernel + bias) / 0.5, 0.0)
            z = gamma * (z - z.mean(axis=1, keepdims=True)) / np.sqrt(z.var(axis=1, keepdims=True) + 1e-3) + beta
            np.testing.assert_allclose(mlp(x).numpy(), np.maximum(z, 0.0), rtol=1e-4, atol=1e-5)

    def test_splitmix64_uniform_is_the_published_sequence(self):
        """SplitMix64 from 1234567 gives 6457827717110365317, 3203168211198807973, ... (the reference values of
        its C code, also xoshiro's seeding); the uniforms are their top 24 bits / 2^24, in row-major order."""
        outputs = [6457827717110365317, 3203168211198807973, 9817491932198370423, 4593380528125082431,
                   16408922859458223821]
        expected = np.float32([value >> 40 for value in outputs]) / 2**24
        got = splitmix64_uniform(tf.constant([5]), tf.constant(1234567, tf.uint64)).numpy()
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(
            splitmix64_uniform(tf.constant([2, 2]), tf.constant(1234567, tf.uint64)).numpy().ravel(), expected[:4])
        xla = tf.function(lambda: splitmix64_uniform(tf.constant([5]), tf.constant(1234567, tf.uint64)),
                          jit_compile=True)
        np.testing.assert_array_equal(xla().numpy(), expected)  # the same numbers inside XLA

    def test_dropout_keeps_the_mean_and_drops_the_rate(self):
        mlp = build_mlp((20_000,), "relu", name="trunk", dropout=0.25, dropout_noise=tf.random.Generator.from_seed(1))
        x = np.ones((1, 1), np.float32)
        mlp(x)
        mlp.layers[0].set_weights([np.ones((1, 20_000), np.float32), np.zeros(20_000, np.float32)])
        out = mlp(x).numpy()
        self.assertAlmostEqual(float(np.mean(out == 0.0)), 0.25, delta=0.015)  # 5 sigma of a binomial(20000, 0.25)
        self.assertAlmostEqual(float(np.mean(out)), 1.0, delta=0.03)
        np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75], rtol=1e-6)

    def test_unknown_activation_names_the_allowed_ones(self):
        with self.assertRaisesRegex(UserInputError, "unknown activation 'sigmoidz'.*relu"):
            build_mlp((4,), "sigmoidz", name="trunk")


def renorm_by_hand(x, gamma, beta, mean, var, r_max=3.0, d_max=5.0, eps=1e-3, warmed_up=True):
    """float64 batch renormalisation in training mode (Ioffe 2017): (the output, r, d, mean_B, var_B)."""
    batch_mean, batch_var = x.mean(axis=0), x.var(axis=0)
    batch_sigma, sigma = np.sqrt(batch_var + eps), np.sqrt(var + eps)
    r = np.clip(batch_sigma / sigma, 1 / r_max, r_max) if warmed_up else np.ones_like(sigma)
    d = np.clip((batch_mean - mean) / sigma, -d_max, d_max) if warmed_up else np.zeros_like(sigma)
    return gamma * ((x - batch_mean) / batch_sigma * r + d) + beta, r, d, batch_mean, batch_var


class BatchRenormTest(unittest.TestCase):
    """BatchRenorm against a float64 hand computation: batch statistics corrected by r and d (clipped, held
    constant for the gradient) in training mode, running statistics in evaluation mode, the momentum update."""

    UNITS = 6

    def layer(self, warmup_steps=2, steps=0, mean=None, var=None):
        """A built layer with random gamma, beta and the given running statistics and training-call count."""
        rng = np.random.default_rng(5)
        layer = BatchRenorm(warmup_steps=warmup_steps)
        layer.build((None, self.UNITS))
        layer.gamma.assign(rng.uniform(0.5, 2.0, self.UNITS).astype(np.float32))
        layer.beta.assign(rng.normal(size=self.UNITS).astype(np.float32))
        layer.moving_mean.assign(np.zeros(self.UNITS, np.float32) if mean is None else np.float32(mean))
        layer.moving_variance.assign(np.ones(self.UNITS, np.float32) if var is None else np.float32(var))
        layer.steps.assign(steps)
        return layer

    def batch(self):
        # unit j has mean 2 j - 3 and std 0.5 + j: against a running N(0, 1) some r and d clip, others do not
        rng = np.random.default_rng(6)
        return (rng.normal(size=(64, self.UNITS)) * (0.5 + np.arange(self.UNITS)) + 2 * np.arange(self.UNITS)
                - 3).astype(np.float32)

    def weights64(self, layer):
        return (layer.gamma.numpy().astype(np.float64), layer.beta.numpy().astype(np.float64),
                layer.moving_mean.numpy().astype(np.float64), layer.moving_variance.numpy().astype(np.float64))

    def test_training_mode_after_the_warm_up_corrects_the_batch_statistics_by_clipped_r_and_d(self):
        mean, var = np.float32([0.5, -0.2, 0.0, 3.0, 0.1, 5.0]), np.float32([1.0, 0.5, 2.0, 1.0, 40.0, 0.2])
        layer, x = self.layer(warmup_steps=3, steps=3, mean=mean, var=var), self.batch()
        gamma, beta, mean64, var64 = self.weights64(layer)
        expected, r, d, _, _ = renorm_by_hand(x.astype(np.float64), gamma, beta, mean64, var64)
        self.assertTrue(np.any(r == 3.0) and np.any((r > 1 / 3) & (r < 3.0)), r)  # some r clip, some do not
        self.assertTrue(np.any(np.abs(d) == 5.0) and np.any(np.abs(d) < 5.0), d)
        np.testing.assert_allclose(layer(x, training=True).numpy(), expected, rtol=1e-4, atol=1e-4)

    def test_training_mode_during_the_warm_up_is_batch_norm(self):
        layer = self.layer(warmup_steps=3, steps=2, mean=np.full(self.UNITS, 4.0), var=np.full(self.UNITS, 9.0))
        x = self.batch()
        gamma, beta, mean64, var64 = self.weights64(layer)
        expected = renorm_by_hand(x.astype(np.float64), gamma, beta, mean64, var64, warmed_up=False)[0]
        np.testing.assert_allclose(layer(x, training=True).numpy(), expected, rtol=1e-4, atol=1e-4)

    def test_each_training_call_moves_the_running_statistics_by_the_momentum_and_counts_itself(self):
        # small variances beside eps = 1e-3: a running variance that took eps in would show
        layer = self.layer(warmup_steps=0, mean=np.full(self.UNITS, 0.3), var=np.full(self.UNITS, 1e-4))
        x = self.batch() * np.float32(0.01)
        for step in (1, 2):
            _, _, mean, var = self.weights64(layer)
            layer(x, training=True)
            x64 = x.astype(np.float64)
            np.testing.assert_allclose(layer.moving_mean.numpy(), 0.99 * mean + 0.01 * x64.mean(axis=0), rtol=1e-5)
            np.testing.assert_allclose(layer.moving_variance.numpy(), 0.99 * var + 0.01 * x64.var(axis=0), rtol=1e-5)
            self.assertEqual(int(layer.steps), step)

    def test_evaluation_mode_uses_the_running_statistics_and_moves_nothing(self):
        layer, x = self.layer(mean=np.linspace(-1, 1, self.UNITS), var=np.linspace(0.2, 3.0, self.UNITS)), self.batch()
        gamma, beta, mean, var = self.weights64(layer)
        expected = gamma * (x.astype(np.float64) - mean) / np.sqrt(var + 1e-3) + beta
        for training in (False, None):
            np.testing.assert_allclose(layer(x, training=training).numpy(), expected, rtol=1e-5, atol=1e-5)
        scale, shift = layer.scale_and_shift()
        np.testing.assert_allclose(x * scale.numpy() + shift.numpy(), expected, rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(layer.moving_mean.numpy(), np.float32(mean))
        np.testing.assert_array_equal(layer.moving_variance.numpy(), np.float32(var))
        self.assertEqual(int(layer.steps), 0)

    def test_the_gradient_holds_r_and_d_constant_and_flows_through_the_batch_statistics(self):
        """d sum(w * y) / dx against central differences of the hand formula with r and d frozen at their values."""
        mean, var = np.float32([0.5, -0.2, 0.0, 3.0, 0.1, 5.0]), np.float32([1.0, 0.5, 2.0, 1.0, 40.0, 0.2])
        layer = self.layer(warmup_steps=0, mean=mean, var=var)
        x = self.batch()[:8]
        w = np.random.default_rng(7).normal(size=x.shape)
        gamma, beta, mean64, var64 = self.weights64(layer)
        _, r, d, _, _ = renorm_by_hand(x.astype(np.float64), gamma, beta, mean64, var64)
        self.assertTrue(np.any((r > 1 / 3) & (r < 3.0)) and np.any(np.abs(d) < 5.0))  # unclipped units exist

        def objective(x64):
            batch_mean, batch_sigma = x64.mean(axis=0), np.sqrt(x64.var(axis=0) + 1e-3)
            return np.sum(w * (gamma * ((x64 - batch_mean) / batch_sigma * r + d) + beta))

        numeric, step = np.zeros(x.shape), 1e-6
        for position in np.ndindex(x.shape):
            moved = [x.astype(np.float64) for _ in range(2)]
            moved[0][position] += step
            moved[1][position] -= step
            numeric[position] = (objective(moved[0]) - objective(moved[1])) / (2 * step)
        x_variable = tf.Variable(x)
        with tf.GradientTape() as tape:
            y = layer(x_variable, training=True)
            total = tf.reduce_sum(tf.constant(w, tf.float32) * y)
        np.testing.assert_allclose(tape.gradient(total, x_variable).numpy(), numeric, rtol=1e-3, atol=1e-3)

    def test_running_statistics_are_variables_but_not_trainable(self):
        layer = self.layer()
        self.assertEqual({v.name for v in layer.trainable_variables}, {"gamma", "beta"})
        self.assertEqual({v.name for v in layer.non_trainable_variables}, {"moving_mean", "moving_variance", "steps"})

    def test_batch_renorm_mlp_orders_its_layers_as_sbx_and_passes_the_training_flag(self):
        mlp = build_mlp((4, 3), "tanh", name="trunk", batch_renorm=True)
        self.assertEqual([type(layer).__name__ for layer in mlp.layers],
                         ["BatchRenorm", "Dense", "Activation", "BatchRenorm", "Dense", "Activation", "BatchRenorm"])
        obs = keras.Input(shape=(2,))
        model = keras.Model(obs, mlp(obs))
        x = np.random.default_rng(0).normal(size=(16, 2)).astype(np.float32)
        model(x)
        self.assertEqual([int(layer.steps) for layer in mlp.layers if isinstance(layer, BatchRenorm)], [0, 0, 0])
        tf.function(lambda x: model(x, training=True))(x)
        self.assertEqual([int(layer.steps) for layer in mlp.layers if isinstance(layer, BatchRenorm)], [1, 1, 1])

    def test_crossq_networks_start_from_lecun_normal_kernels_and_the_others_from_glorot_uniform(self):
        """sbx's (flax's) LeCun normal, std sqrt(1 / fan_in), in every Dense layer of crossq's phi and critics; Keras'
        Glorot uniform, std sqrt(2 / (fan_in + fan_out)), elsewhere. The first layers (2 or 3 inputs, 256 units) and
        the heads (256 inputs, 1 unit) tell them apart: 0.58-0.71 against 0.09, 0.06 against 0.09."""
        for variant, glorot in (("crossq", False), ("v2", True)):
            spec = ExperimentSpec(variant=variant, phi_nn_h_layer_topo=(256, 256), theta_nn_h_layer_topo=(256, 256))
            brain = SoftActorCriticBrain(spec, obs_dim=2, act_dim=1)
            kernels = [v for model in (brain.phi, *brain.critics) for v in model.trainable_variables
                       if v.name == "kernel"]
            self.assertEqual(len(kernels), 4 + 3 * len(brain.critics))
            for kernel in kernels:
                fan_in, fan_out = kernel.shape
                expected = np.sqrt(2.0 / (fan_in + fan_out)) if glorot else np.sqrt(1.0 / fan_in)
                with self.subTest(variant=variant, kernel=kernel.path):
                    self.assertAlmostEqual(float(np.std(kernel.numpy())) / expected, 1.0, delta=0.15)


class PolyakUpdateTest(unittest.TestCase):
    def test_target_moves_by_tau(self):
        source = [tf.Variable([1.0, 2.0]), tf.Variable([[3.0]])]
        target = [tf.Variable([0.0, 0.0]), tf.Variable([[1.0]])]
        polyak_update(source, target, 0.25)
        np.testing.assert_allclose(target[0].numpy(), [0.25, 0.5])
        np.testing.assert_allclose(target[1].numpy(), [[1.5]])

    def test_tau_one_is_a_hard_copy_inside_tf_function(self):
        source, target = [tf.Variable([1.0, -2.0])], [tf.Variable([5.0, 5.0])]
        tf.function(lambda: polyak_update(source, target, 1.0))()
        np.testing.assert_array_equal(target[0].numpy(), [1.0, -2.0])

    def test_mismatched_lists_are_rejected(self):
        with self.assertRaisesRegex(ValueError, "2 source variables but 1 target"):
            polyak_update([tf.Variable(1.0), tf.Variable(2.0)], [tf.Variable(1.0)], 0.5)
        with self.assertRaisesRegex(ValueError, "shape mismatch"):
            polyak_update([tf.Variable([1.0, 2.0])], [tf.Variable([1.0])], 0.5)



class FusedAdamTest(unittest.TestCase):
    def test_same_trajectory_as_keras_adam(self):
        rng = np.random.default_rng(0)
        initial = [rng.normal(size=(5, 3)).astype(np.float32), rng.normal(size=3).astype(np.float32),
                   np.float32(0.5)]
        keras_vars, fused_vars = [tf.Variable(x) for x in initial], [tf.Variable(x) for x in initial]
        keras_adam, fused_adam = keras.optimizers.Adam(1e-2), FusedAdam(fused_vars, 1e-2)
        keras_adam.build(keras_vars)

        @tf.function
        def step(gradients):
            keras_adam.apply_gradients(zip(gradients, keras_vars, strict=True))
            fused_adam.apply_gradients(zip(gradients, fused_vars, strict=True))

        for _ in range(50):
            step([tf.constant(rng.normal(1.0, size=np.shape(x)).astype(np.float32)) for x in initial])  # a drift
        for keras_var, fused_var, start in zip(keras_vars, fused_vars, initial, strict=True):
            self.assertGreater(np.abs(keras_var.numpy() - start).max(), 0.05)  # both moved
            np.testing.assert_allclose(fused_var.numpy(), keras_var.numpy(), atol=1e-5)
        self.assertEqual(int(fused_adam.iterations.numpy()), 50)

    def test_other_variables_are_rejected(self):
        adam = FusedAdam([tf.Variable(tf.zeros(3))], 1e-3)
        with self.assertRaisesRegex(ValueError, "differ"):
            adam.apply_gradients([(tf.ones(4), tf.Variable(tf.zeros(4)))])


if __name__ == "__main__":
    unittest.main()
