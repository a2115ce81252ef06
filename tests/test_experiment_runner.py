"""The experiment runner CLI end to end on a tiny Pendulum spec, and its answers to bad input."""
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pandas as pd

from blocAndTools.run_logging import PROGRESS_COLUMNS
from SoftActorCritic.experiment_runner import main

REPO = Path(__file__).resolve().parent.parent
TINY_SPEC = """\
description: two short epochs on Pendulum, for tests
env_id: Pendulum-v1
max_epoch: 2
timestep_per_epoch: 200
max_trj_steps: 100
min_pool_size: 100
batch_size_in_ts: 32
pool_capacity: 1000
max_eval_trj: 1
phi_nn_h_layer_topo: [16, 16]
psi_nn_h_layer_topo: [16, 16]
theta_nn_h_layer_topo: [16, 16]
seed: 3
"""


def run_cli(*args: str) -> tuple[int, str, str]:
    """main() in this process, returning (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit_:  # argparse errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


class TrainEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.root = Path(cls.folder.name)
        cls.spec_path = cls.root / "tiny.yaml"
        cls.spec_path.write_text(TINY_SPEC)
        cls.run_dir = cls.root / "run"
        env = dict(os.environ, PYTHONPATH=str(REPO))
        cls.result = subprocess.run([sys.executable, "-m", "SoftActorCritic", "train", "--spec", str(cls.spec_path),
                                     "--run-dir", str(cls.run_dir)], capture_output=True, text=True, env=env,
                                    cwd=cls.root, timeout=300)

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def test_train_exits_zero_and_prints_one_row_per_epoch(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr[-2000:])
        rows = [line for line in self.result.stdout.splitlines() if line.startswith("epoch ")]
        self.assertEqual(len(rows), 2, self.result.stdout)

    def test_run_folder_holds_spec_progress_tensorboard_and_checkpoints(self):
        progress = pd.read_csv(self.run_dir / "progress.csv")
        self.assertEqual(list(progress.columns), list(PROGRESS_COLUMNS))
        self.assertEqual(progress["epoch"].tolist(), [1, 2])
        self.assertEqual(progress["env_steps"].tolist(), [200, 400])
        self.assertTrue(progress["q1_loss"].notna().all() and progress["eval_return_mean"].notna().all())
        self.assertTrue(list((self.run_dir / "tb").glob("events.out.tfevents.*")))
        self.assertTrue((self.run_dir / "checkpoints" / "checkpoint").is_file())
        self.assertTrue((self.run_dir / "spec.yaml").is_file())

    def test_spec_yaml_reruns_to_the_same_numbers(self):
        rerun_dir = self.root / "rerun"
        status, _, err = run_cli("train", "--spec", str(self.run_dir / "spec.yaml"), "--run-dir", str(rerun_dir))
        self.assertEqual(status, 0, err)
        first = pd.read_csv(self.run_dir / "progress.csv").drop(columns=["wall_time_s", "steps_per_s"])
        second = pd.read_csv(rerun_dir / "progress.csv").drop(columns=["wall_time_s", "steps_per_s"])
        pd.testing.assert_frame_equal(first, second)

    def test_eval_and_plot_work_on_the_run(self):
        status, out, err = run_cli("eval", "--run-dir", str(self.run_dir), "--episodes", "2")
        self.assertEqual(status, 0, err)
        self.assertIn("deterministic return over 2 episodes", out)
        image = self.root / "curves.png"
        status, out, err = run_cli("plot", str(self.run_dir), "--out", str(image))
        self.assertEqual(status, 0, err)
        self.assertGreater(image.stat().st_size, 1000)

    def test_existing_run_folder_is_refused_and_left_untouched(self):
        before = (self.run_dir / "progress.csv").read_bytes()
        status, _, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(self.run_dir))
        self.assertEqual(status, 2)
        self.assertIn("already holds a run", err)
        self.assertEqual((self.run_dir / "progress.csv").read_bytes(), before)


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        self.spec_path = self.root / "tiny.yaml"
        self.spec_path.write_text(TINY_SPEC)

    def tearDown(self):
        self.folder.cleanup()

    def assertRejected(self, expected: str, *args: str):
        status, out, err = run_cli("train", "--run-dir", str(self.root / "run"), *args)
        self.assertEqual(status, 2, out + err)
        self.assertIn(expected, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("Traceback", err)
        self.assertFalse((self.root / "run").exists())

    def test_each_bad_input_gets_one_line_and_status_2(self):
        self.assertRejected("does not exist", "--spec", str(self.root / "missing.yaml"))
        self.assertRejected("did you mean 'learning_rate'", "--spec", str(self.spec_path), "--set",
                            "learnig_rate=0.1")
        self.assertRejected("'learning_rate' = -0.1", "--spec", str(self.spec_path), "--set", "learning_rate=-0.1")
        self.assertRejected("'batch_size_in_ts' = 500: must be <= min_pool_size", "--spec", str(self.spec_path),
                            "--set", "batch_size_in_ts=500")
        self.assertRejected("unknown environment id 'NoSuchEnv-v0'", "--spec", str(self.spec_path), "--set",
                            "env_id=NoSuchEnv-v0")
        self.assertRejected("SAC needs a Box action space", "--spec", str(self.spec_path), "--set",
                            "env_id=CartPole-v1")

    def test_grid_and_reruns_make_one_run_per_point_and_seed(self):
        status, out, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(self.root / "grid"),
                                   "--reruns", "2", "--set", "reward_scaling=[1, 2]", "--set", "max_epoch=1",
                                   "--set", "timestep_per_epoch=100", "--set", "min_pool_size=50")
        self.assertEqual(status, 0, err)
        runs = sorted(p.parent.relative_to(self.root / "grid") for p in (self.root / "grid").rglob("spec.yaml"))
        self.assertEqual([(r.parts[0], r.parts[1].split("-")[-1]) for r in runs],
                         [("tiny-reward_scaling=1", "seed3"), ("tiny-reward_scaling=1", "seed4"),
                          ("tiny-reward_scaling=2", "seed3"), ("tiny-reward_scaling=2", "seed4")])
        status, out, err = run_cli("plot", str(self.root / "grid" / "tiny-reward_scaling=1"),
                                   "--out", str(self.root / "grid.png"))
        self.assertEqual(status, 0, err)
        self.assertIn("learning curves written", out)


class ListTest(unittest.TestCase):
    def test_list_shows_every_experiment_file_with_its_description(self):
        status, out, _ = run_cli("list")
        self.assertEqual(status, 0)
        self.assertIn("pendulum.yaml", out)
        self.assertEqual(len(out.strip().splitlines()), len(list((REPO / "experiments").rglob("*.yaml"))))


if __name__ == "__main__":
    unittest.main()
