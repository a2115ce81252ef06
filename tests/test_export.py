"""`sac export`: a SavedModel (and its TFLite twin) that acts like load_policy in a process without this project."""
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import tensorflow as tf

from blocAndTools.atomic_files import temporary_name
from SoftActorCritic.export import TFLITE_FILE, export_saved_model
from SoftActorCritic.numpy_policy import Policy, checkpoint_policy_path
from tests.helpers import random_actor, run_cli

# Run in a fresh interpreter where importing this project fails: the SavedModel must need none of it.
CONSUMER = """
import json, sys
sys.modules["SoftActorCritic"] = None
sys.modules["blocAndTools"] = None
import tensorflow as tf
model = tf.saved_model.load(sys.argv[1])
serve = model.signatures["serving_default"]
obs = tf.constant(json.loads(sys.argv[2]), tf.float32)
spec = serve.structured_input_signature[1]["obs"]
lite = tf.lite.Interpreter(model_path=sys.argv[1] + "/policy.tflite").get_signature_runner("serving_default")
print(json.dumps({"action": serve(obs=obs)["action"].numpy().tolist(), "obs_shape": spec.shape.as_list(),
                  "outputs": sorted(serve.structured_outputs),
                  "tflite_action": lite(obs=obs.numpy())["action"].tolist()}))
"""


@pytest.mark.slow  # a training, then SavedModels in other processes
class ExportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.run_dir = Path(cls.folder.name) / "run"
        actor = random_actor(obs_dim=3, act_dim=2, seed=7)
        cls.policy = Policy(actor, [0.0, -1.0], [1.0, 3.0], "Whatever-v0")
        cls.policy.save(checkpoint_policy_path(cls.run_dir, 1000))

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def test_saved_model_gives_load_policy_actions_without_the_project(self):
        out = Path(self.folder.name) / "model"
        status, stdout, err = run_cli("export", "--run-dir", str(self.run_dir), "--out", str(out))
        self.assertEqual(status, 0, err)
        self.assertIn("policy-1000.npz", stdout)
        obs = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
        result = subprocess.run([sys.executable, "-c", CONSUMER, str(out), json.dumps(obs.tolist())],
                                capture_output=True, text=True, cwd=Path(self.folder.name), timeout=120)
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        served = json.loads(result.stdout.strip().splitlines()[-1])
        self.assertEqual((served["obs_shape"], served["outputs"]), ([None, 3], ["action"]))
        np.testing.assert_allclose(served["action"], self.policy(obs), atol=1e-5)
        np.testing.assert_allclose(served["tflite_action"], self.policy(obs), atol=1e-5)

    def test_existing_out_is_refused_and_left_untouched(self):
        out = Path(self.folder.name) / "taken"
        out.mkdir()
        (out / "keep.txt").write_text("mine")
        status, _, err = run_cli("export", "--run-dir", str(self.run_dir), "--out", str(out))
        self.assertEqual(status, 2)
        self.assertIn("already exists", err)
        self.assertEqual([p.name for p in out.iterdir()], ["keep.txt"])

    def test_an_export_that_fails_midway_leaves_no_partial_folder(self):
        """The SavedModel is written, then the TFLite conversion fails: neither the folder nor its temporary is
        left; a second export then writes the whole folder."""
        out = Path(self.folder.name) / "direct"
        with mock.patch.object(tf.lite.TFLiteConverter, "from_saved_model", side_effect=RuntimeError("conversion")):
            with self.assertRaisesRegex(RuntimeError, "conversion"):
                export_saved_model(self.policy, out)
        self.assertFalse(out.exists())
        self.assertFalse(temporary_name(out).exists())
        export_saved_model(self.policy, out)
        self.assertEqual(sorted(path.name for path in out.iterdir()),
                         sorted(["saved_model.pb", "variables", "assets", "fingerprint.pb", TFLITE_FILE]))


if __name__ == "__main__":
    unittest.main()
