"""The TensorFlow-free policy: NumpyActor equals Keras' phi, Policy acts in the environment's bounds, policy files."""
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import gymnasium
import numpy as np
from gymnasium.spaces import Box
from gymnasium.wrappers import RescaleAction

from blocAndTools import nn_blocs
from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ACTIVATION_NAMES
from SoftActorCritic.networks import actor_weights, build_gaussian_policy
from SoftActorCritic.numpy_policy import ACTIVATIONS as NUMPY_ACTIVATIONS
from SoftActorCritic.numpy_policy import NumpyActor, Policy, checkpoint_policy_path, load_policy
from tests.helpers import REPO, random_actor


class AsymmetricBounds(gymnasium.Env):
    """Only its action space matters: bounds that differ per component and are not centred on 0."""
    observation_space = Box(-1.0, 1.0, shape=(3,), dtype=np.float32)
    action_space = Box(np.array([0.0, -1.0], np.float32), np.array([1.0, 3.0], np.float32))


class NumpyActorTest(unittest.TestCase):
    def test_activation_tables_cover_the_spec_names(self):
        self.assertEqual(set(nn_blocs.ACTIVATIONS), set(ACTIVATION_NAMES))
        self.assertEqual(set(NUMPY_ACTIVATIONS), set(ACTIVATION_NAMES))

    def test_numpy_actor_equals_keras_phi_for_every_activation(self):
        obs = np.random.default_rng(0).normal(scale=2.0, size=(64, 5)).astype(np.float32)
        for activation in ACTIVATION_NAMES:
            with self.subTest(activation=activation):
                phi = build_gaussian_policy(5, 3, (8, 8), activation)
                for variable in phi.trainable_variables:  # non-zero biases; tanh mostly unsaturated
                    variable.assign(np.random.default_rng(1).normal(scale=0.5, size=variable.shape))
                actor = NumpyActor.from_arrays([np.asarray(weight) for weight in actor_weights(phi)], activation)
                mu, log_std = (tensor.numpy() for tensor in phi(obs))
                np.testing.assert_allclose(actor(obs), np.tanh(mu), atol=1e-5)
                np.testing.assert_allclose(actor(obs[0]), np.tanh(mu[0]), atol=1e-5)
                np.testing.assert_allclose(actor.mu_log_std(obs)[1], log_std, atol=1e-5)


class PolicyTest(unittest.TestCase):
    def setUp(self):
        self.env = RescaleAction(AsymmetricBounds(), np.full(2, -1.0, np.float32), np.full(2, 1.0, np.float32))
        self.space = self.env.unwrapped.action_space
        self.policy = Policy(random_actor(), self.space.low, self.space.high, "AsymmetricBounds-v0")
        self.obs = np.random.default_rng(2).normal(size=(16, 3)).astype(np.float32)

    def test_action_is_what_the_training_wrapper_sent_to_the_environment(self):
        unit_actions = self.policy.actor(self.obs)  # what the agent acted with, in [-1, 1]
        expected = np.stack([self.env.action(a) for a in unit_actions])  # RescaleAction's own mapping
        np.testing.assert_allclose(self.policy(self.obs), expected, atol=1e-6)
        np.testing.assert_allclose(self.policy(self.obs[3]), expected[3], atol=1e-6)
        self.assertEqual(self.policy(self.obs[3]).shape, (2,))

    def test_sample_stays_in_bounds_and_follows_its_generator(self):
        actions = self.policy.sample(np.repeat(self.obs[:1], 2000, axis=0), np.random.default_rng(0))
        self.assertTrue(np.all(actions >= self.space.low) and np.all(actions <= self.space.high))
        self.assertGreater(actions.std(axis=0).min(), 1e-3)  # stochastic, not tanh(mu)
        np.testing.assert_array_equal(self.policy.sample(self.obs, np.random.default_rng(5)),
                                      self.policy.sample(self.obs, np.random.default_rng(5)))

    def test_policy_file_round_trip(self):
        with tempfile.TemporaryDirectory() as folder:
            self.policy.env_kwargs, self.policy.env_steps, self.policy.eval_return = {"continuous": True}, 1200, -3.5
            path = Path(folder) / "policy.npz"
            self.policy.save(path)
            loaded = Policy.load(path)
            np.testing.assert_array_equal(loaded(self.obs), self.policy(self.obs))
            self.assertEqual((loaded.env_id, loaded.env_kwargs, loaded.env_steps, loaded.eval_return),
                             ("AsymmetricBounds-v0", {"continuous": True}, 1200, -3.5))
            self.assertEqual(loaded.actor.activation_name, "tanh")
            self.assertEqual([p.name for p in Path(folder).iterdir()], ["policy.npz"])  # no temporary file left

    def test_non_finite_weights_are_detected(self):
        self.assertTrue(self.policy.all_finite())
        self.policy.actor.mu[1][0] = np.nan
        self.assertFalse(self.policy.all_finite())


class LoadPolicyTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.run_dir = Path(self.folder.name)
        self.obs = np.ones((1, 3), np.float32)

    def tearDown(self):
        self.folder.cleanup()

    def _write(self, path: Path, seed: int) -> Policy:
        policy = Policy(random_actor(seed=seed), [-2.0, -2.0], [2.0, 2.0], "Pendulum-v1")
        policy.save(path)
        return policy

    def test_newest_checkpoint_or_best(self):
        for steps, seed in ((200, 1), (1000, 2), (400, 3)):
            self._write(checkpoint_policy_path(self.run_dir, steps), seed)
        best = self._write(self.run_dir / "best_policy" / "policy.npz", 4)
        newest = load_policy(self.run_dir)
        self.assertEqual(newest.path.name, "policy-1000.npz")  # by number, not by name order
        np.testing.assert_array_equal(load_policy(self.run_dir, best=True)(self.obs), best(self.obs))
        np.testing.assert_array_equal(load_policy(newest.path)(self.obs), newest(self.obs))

    def test_bad_input_is_one_line(self):
        damaged = self.run_dir / "damaged.npz"
        damaged.write_bytes(b"not a zip")
        incomplete = self.run_dir / "incomplete.npz"
        np.savez(incomplete, mu_kernel=np.zeros((2, 2)))
        for target, best in ((self.run_dir, False), (self.run_dir, True), (self.run_dir / "missing", False),
                             (damaged, False), (incomplete, False)):
            with self.subTest(target=target.name, best=best), self.assertRaises(UserInputError) as caught:
                load_policy(target, best)
            self.assertNotIn("\n", str(caught.exception))
        self.assertEqual(damaged.read_bytes(), b"not a zip")  # nothing touched


class NoTensorFlowTest(unittest.TestCase):
    def test_load_policy_and_acting_never_import_tensorflow(self):
        code = ("import sys; from SoftActorCritic import load_policy, Policy; import SoftActorCritic.record_video; "
                "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])


if __name__ == "__main__":
    unittest.main()
