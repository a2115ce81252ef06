"""`play --record`: the NumPy actor matches Keras, and videos are written by a TensorFlow-free child process.

MuJoCo's EGL rendering segfaults in a process with TensorFlow loaded, so recording happens in
SoftActorCritic.record_video, which acts with SoftActorCritic.numpy_policy.
"""
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np

from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ACTIVATION_NAMES, ExperimentSpec
from blocAndTools import nn_blocs
from SoftActorCritic.brain import SoftActorCriticBrain
from SoftActorCritic.networks import save_actor_weights
from SoftActorCritic.numpy_policy import ACTIVATIONS as NUMPY_ACTIVATIONS, NumpyActor
from tests.test_experiment_runner import TINY_SPEC, run_cli

REPO = Path(__file__).resolve().parent.parent
CHILD_ENV = dict(os.environ, PYTHONPATH=str(REPO))


def tiny_brain(obs_dim: int, act_dim: int, activation: str = "relu", seed: int = 0) -> SoftActorCriticBrain:
    spec = ExperimentSpec(hidden_activation=activation, seed=seed, phi_nn_h_layer_topo=(8, 8),
                          psi_nn_h_layer_topo=(8,), theta_nn_h_layer_topo=(8,))
    return SoftActorCriticBrain(spec, obs_dim, act_dim)


def record(spec_path: Path, weights: Path, out_dir: Path, episodes: int = 1) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SoftActorCritic.record_video", "--spec", str(spec_path),
                           "--weights", str(weights), "--episodes", str(episodes), "--out-dir", str(out_dir),
                           "--seed", "0"], capture_output=True, text=True, env=CHILD_ENV, cwd=REPO, timeout=120)


class NumpyPolicyTest(unittest.TestCase):
    def test_activation_tables_cover_the_spec_names(self):
        self.assertEqual(set(nn_blocs.ACTIVATIONS), set(ACTIVATION_NAMES))
        self.assertEqual(set(NUMPY_ACTIVATIONS), set(ACTIVATION_NAMES))

    def test_numpy_policy_equals_keras_for_every_activation(self):
        obs = np.random.default_rng(0).normal(scale=2.0, size=(64, 5)).astype(np.float32)
        with tempfile.TemporaryDirectory() as folder:
            for activation in ACTIVATION_NAMES:
                with self.subTest(activation=activation):
                    brain = tiny_brain(5, 3, activation, seed=ACTIVATION_NAMES.index(activation))
                    for variable in brain.phi.trainable_variables:  # non-zero biases; tanh mostly unsaturated
                        variable.assign(np.random.default_rng(1).normal(scale=0.5, size=variable.shape))
                    path = Path(folder) / f"{activation}.npz"
                    save_actor_weights(brain.phi, path)
                    policy = NumpyActor.load(path)
                    mu, log_std = (tensor.numpy() for tensor in brain.phi(obs))
                    np.testing.assert_allclose(policy(obs), np.tanh(mu), atol=1e-5)
                    np.testing.assert_allclose(policy(obs[0]), np.tanh(mu[0]), atol=1e-5)
                    np.testing.assert_allclose(policy.mu_log_std(obs)[1], log_std, atol=1e-5)

    def test_a_bad_weights_file_is_one_line_user_error(self):
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "bad.npz"
            path.write_bytes(b"not an npz")
            for bad in (path, Path(folder) / "missing.npz"):
                with self.assertRaises(UserInputError) as caught:
                    NumpyActor.load(bad)
                self.assertNotIn("\n", str(caught.exception))


class RecordVideoTest(unittest.TestCase):
    def test_record_video_module_never_imports_tensorflow(self):
        code = ("import sys, SoftActorCritic.record_video; "
                "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=CHILD_ENV,
                                cwd=REPO, timeout=60)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])

    def test_play_record_on_a_tiny_pendulum_run_writes_a_video(self):
        with tempfile.TemporaryDirectory() as folder:
            spec_path, run_dir = Path(folder) / "tiny.yaml", Path(folder) / "run"
            spec_path.write_text(TINY_SPEC)
            status, _, err = run_cli("train", "--spec", str(spec_path), "--run-dir", str(run_dir),
                                     "--set", "max_epoch=1")
            self.assertEqual(status, 0, err)
            status, _, err = run_cli("play", "--run-dir", str(run_dir), "--record")
            self.assertEqual(status, 0, err)
            video = run_dir / "videos" / "episode-0.mp4"
            self.assertGreater(video.stat().st_size, 10_000)

    def test_half_cheetah_records_in_the_tensorflow_free_child(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            brain = tiny_brain(17, 6)
            save_actor_weights(brain.phi, root / "phi.npz")
            ExperimentSpec(env_id="HalfCheetah-v5", max_trj_steps=20).to_yaml(root / "spec.yaml")
            result = record(root / "spec.yaml", root / "phi.npz", root / "videos")
            if result.returncode < 0 and not self._egl_renders_without_tensorflow():
                self.skipTest("MuJoCo EGL rendering fails on this machine even without TensorFlow")
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertIn("episode 0: return", result.stdout)
            self.assertGreater((root / "videos" / "episode-0.mp4").stat().st_size, 1_000)

    def test_record_video_exits_2_with_one_line_on_bad_weights(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            ExperimentSpec().to_yaml(root / "spec.yaml")
            (root / "bad.npz").write_text("nope")
            result = record(root / "spec.yaml", root / "bad.npz", root / "videos")
            self.assertEqual(result.returncode, 2)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)

    @staticmethod
    def _egl_renders_without_tensorflow() -> bool:
        code = ("from blocAndTools.gym_playground import GymPlayground; "
                "p = GymPlayground('HalfCheetah-v5', render_mode='rgb_array'); p.reset(); p.env.render()")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, env=CHILD_ENV, cwd=REPO,
                              timeout=60).returncode == 0


if __name__ == "__main__":
    unittest.main()
