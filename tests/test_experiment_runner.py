"""The experiment runner CLI end to end on a tiny Pendulum spec: train, resume (after SIGKILL or SIGTERM, at an
epoch boundary), eval, plot, compare, and its answers to bad input and to corrupt run files."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from blocAndTools import buffer_files
from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.statistics import format_interval
from SoftActorCritic import compare, load_policy
from SoftActorCritic.agent import SoftActorCriticAgent
from SoftActorCritic.metrics import PROGRESS_COLUMNS
from SoftActorCritic.runs import experiments_dir, resolve_spec
from tests.helpers import (
    REPO,
    TempFolderTest,
    latest_checkpoint_steps,
    progress_rows,
    run_cli,
    run_command,
    wait_for,
    write_spec,
)
from tests.helpers import TINY_SPEC as TINY_SPEC_FIELDS
from tests.test_result_summaries import FoldersTest

TINY_SPEC = yaml.safe_dump(TINY_SPEC_FIELDS, sort_keys=False)  # as text, for modules that edit it
TIMING_COLUMNS = ["wall_time_s", "steps_per_s"]


def folder_state(folder: Path) -> dict:
    """Every file under folder with its size and modification time: to check that nothing was written."""
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def start_training(spec_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    """`train` as a separate process, so that a test can kill or signal it."""
    return subprocess.Popen([sys.executable, "-m", "SoftActorCritic", "train", "--spec", str(spec_path),
                             "--run-dir", str(run_dir), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))


@pytest.mark.slow  # trainings through the CLI
class TrainEndToEndTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.root = Path(cls.folder.name)
        cls.spec_path = cls.root / "tiny.yaml"
        write_spec(cls.spec_path)
        cls.run_dir = cls.root / "run"
        cls.result = run_command("train", "--spec", str(cls.spec_path), "--run-dir", str(cls.run_dir))

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def test_train_exits_zero_and_prints_one_row_per_epoch(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr[-2000:])
        rows = [line for line in self.result.stdout.splitlines() if line.startswith("epoch ")]
        self.assertEqual(len(rows), 2, self.result.stdout)

    def test_tensorflow_prints_nothing_by_default(self):
        self.assertEqual(self.result.stderr, "")

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

    def test_eval_names_the_policy_it_evaluated(self):
        status, out, err = run_cli("eval", "--run-dir", str(self.run_dir), "--episodes", "2")
        self.assertEqual(status, 0, err)
        self.assertIn("checkpoints/policy-400.npz (env step 400, eval return ", out)  # the epoch's evaluation
        self.assertIn("deterministic return over 2 episodes", out)
        self.assertEqual(run_cli("eval", "--run-dir", str(self.run_dir), "--episodes", "0")[0], 2)

    def test_eval_on_the_evaluation_episodes_repeats_a_checkpoints_evaluation(self):
        progress = pd.read_csv(self.run_dir / "progress.csv")
        for steps, expected in zip(progress["env_steps"], progress["eval_return_mean"], strict=True):
            policy_file = self.run_dir / "checkpoints" / f"policy-{steps}.npz"  # its run's spec.yaml: its seed
            status, out, err = run_cli("eval", "--run-dir", str(policy_file), "--episodes-of", "evaluation",
                                       "--episodes", "1")  # the tiny spec evaluates one episode
            self.assertEqual(status, 0, err)
            self.assertIn("returns: [", out)
            self.assertIn(f"mean {expected:.1f},", out)
        status, out, err = run_cli("eval", "--run-dir", str(policy_file), "--episodes", "1")  # unseen start states
        self.assertEqual(status, 0, err)
        self.assertNotIn(f"mean {expected:.1f},", out)

    def test_best_policy_is_kept_without_a_goal_and_eval_best_uses_it(self):
        progress = pd.read_csv(self.run_dir / "progress.csv")
        self.assertIsNone(yaml.safe_load((self.run_dir / "spec.yaml").read_text())["expected_reward_goal"])
        best = load_policy(self.run_dir, best=True)
        self.assertEqual(best.eval_return, progress["eval_return_mean"].max())
        self.assertEqual(best.env_steps, progress.loc[progress["eval_return_mean"].idxmax(), "env_steps"])
        status, out, err = run_cli("eval", "--run-dir", str(self.run_dir), "--best", "--episodes", "1")
        self.assertEqual(status, 0, err)
        self.assertIn("best_policy/policy.npz", out)

    def test_checkpoint_policy_acts_like_the_last_phi(self):
        """The newest policy file is the checkpointed phi: tanh(mu) of the brain restored from the checkpoint,
        scaled to Pendulum's bounds of +-2."""
        policy = load_policy(self.run_dir)
        self.assertEqual((policy.env_id, policy.obs_dim, policy.act_dim, policy.env_steps), ("Pendulum-v1", 3, 1, 400))
        np.testing.assert_array_equal(policy.action_low, [-2.0])
        agent = SoftActorCriticAgent(ExperimentSpec.from_yaml(self.run_dir / "spec.yaml"), self.run_dir)
        self.addCleanup(agent.close)
        agent.restore_checkpoint()
        obs = np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32)
        np.testing.assert_allclose(policy(obs), 2.0 * agent.brain.deterministic_action(obs), atol=1e-5)

    def test_plot_writes_next_to_the_run_unless_out(self):
        status, out, err = run_cli("plot", str(self.run_dir))
        self.assertEqual(status, 0, err)
        self.assertGreater((self.run_dir / "learning_curves.png").stat().st_size, 1000)
        image = self.root / "curves.png"
        status, out, err = run_cli("plot", str(self.run_dir), "--out", str(image))
        self.assertEqual(status, 0, err)
        self.assertGreater(image.stat().st_size, 1000)

    def test_resuming_a_finished_run_says_so_and_writes_nothing(self):
        before = folder_state(self.run_dir)
        status, out, err = run_cli("train", "--resume", "--run-dir", str(self.run_dir))
        self.assertEqual((status, err), (0, ""))
        self.assertIn("has finished its 2 epochs", out)
        self.assertEqual(len(out.strip().splitlines()), 1)
        self.assertEqual(folder_state(self.run_dir), before)

    def test_resume_refuses_any_change_but_max_epoch(self):
        before = folder_state(self.run_dir)
        for change in ("seed=4", "actor_learning_rate=0.1", "max_epoch=1"):
            with self.subTest(change=change):
                status, _, err = run_cli("train", "--resume", "--run-dir", str(self.run_dir), "--set", change)
                self.assertEqual(status, 2, err)
                self.assertIn(change.split("=")[0], err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertEqual(folder_state(self.run_dir), before)

    def test_existing_run_folder_is_refused_and_left_untouched(self):
        before = (self.run_dir / "progress.csv").read_bytes()
        status, _, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(self.run_dir))
        self.assertEqual(status, 2)
        self.assertIn("already holds a run", err)
        self.assertEqual((self.run_dir / "progress.csv").read_bytes(), before)


@pytest.mark.slow  # a training, then its extension
class ExtendRunTest(unittest.TestCase):
    def test_resume_with_a_larger_max_epoch_extends_a_finished_run(self):
        with tempfile.TemporaryDirectory() as folder:
            run_dir = Path(folder) / "run"
            spec = write_spec(Path(folder) / "tiny.yaml", max_epoch=1)
            self.assertEqual(run_cli("train", "--spec", str(spec), "--run-dir", str(run_dir))[0], 0)
            status, out, err = run_cli("train", "--resume", "--run-dir", str(run_dir), "--set", "max_epoch=2")
            self.assertEqual(status, 0, err)
            self.assertEqual(pd.read_csv(run_dir / "progress.csv")["epoch"].tolist(), [1, 2])
            self.assertEqual(yaml.safe_load((run_dir / "spec.yaml").read_text())["max_epoch"], 2)
            self.assertEqual(load_policy(run_dir).env_steps, 400)

    def test_resume_with_a_larger_max_epoch_extends_every_run_of_a_sweep(self):
        with tempfile.TemporaryDirectory() as folder:
            sweep = Path(folder) / "sweep"
            spec = write_spec(Path(folder) / "tiny.yaml", max_epoch=2)
            status, _, err = run_cli("train", "--spec", str(spec), "--reruns", "2", "--run-dir", str(sweep))
            self.assertEqual(status, 0, err)
            runs = sorted(path.parent for path in sweep.rglob("spec.yaml"))
            self.assertEqual(len(runs), 2)
            before = folder_state(sweep)
            for change in ("max_epoch=1", "seed=4"):  # fewer epochs than done, another field: refused, nothing written
                with self.subTest(change=change):
                    status, _, err = run_cli("train", "--resume", "--run-dir", str(sweep), "--set", change)
                    self.assertEqual(status, 2, err)
                    self.assertIn(change.split("=")[0], err)
                    self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertEqual(folder_state(sweep), before)

            status, out, err = run_cli("train", "--resume", "--run-dir", str(sweep), "--set", "max_epoch=3")
            self.assertEqual(status, 0, err)
            self.assertIn("0 of 2 runs finished earlier, 2 to run", out)
            for run_dir in runs:
                self.assertEqual(pd.read_csv(run_dir / "progress.csv")["epoch"].tolist(), [1, 2, 3])
                self.assertEqual(yaml.safe_load((run_dir / "spec.yaml").read_text())["max_epoch"], 3)
            manifest = yaml.safe_load((sweep / "sweep.yaml").read_text())
            self.assertEqual([entry["spec"]["max_epoch"] for entry in manifest["runs"]], [3, 3])
            self.assertEqual(pd.read_csv(sweep / "summary.csv")["epochs"].tolist(), [3])


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        self.spec_path = write_spec(self.root / "tiny.yaml")

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
        self.assertRejected("no such file", "--spec", str(self.root / "missing.yaml"))
        self.assertRejected("did you mean 'actor_learning_rate'", "--spec", str(self.spec_path), "--set",
                            "learnig_rate=0.1")
        self.assertRejected("'actor_learning_rate' = -0.1", "--spec", str(self.spec_path), "--set",
                            "actor_learning_rate=-0.1")
        self.assertRejected("'batch_size_in_ts' = 500: must be <= min_pool_size", "--spec", str(self.spec_path),
                            "--set", "batch_size_in_ts=500")
        self.assertRejected("spec field 'n_step' = 0: must be an integer >= 1", "--spec", str(self.spec_path),
                            "--set", "n_step=0")
        self.assertRejected("unknown environment id 'NoSuchEnv-v0'", "--spec", str(self.spec_path), "--set",
                            "env_id=NoSuchEnv-v0")
        self.assertRejected("SAC needs a Box action space", "--spec", str(self.spec_path), "--set",
                            "env_id=CartPole-v1")
        self.assertRejected("cannot be imported", "--spec", str(self.spec_path), "--set",
                            "env_id=no_such_package.envs:Thing-v0")
        self.assertRejected("nor a shipped experiment", "--spec", "no_such_experiment")

    def test_yaml_syntax_error_names_line_and_column(self):
        self.spec_path.write_text("env_id: Pendulum-v1\nmax_epoch: [1, 2\nseed: 0\n")
        self.assertRejected("is not valid YAML at line 3, column 5", "--spec", str(self.spec_path))

    def test_eval_play_export_refuse_a_folder_without_policy(self):
        for command in (["eval"], ["play", "--record"], ["export", "--out", str(self.root / "model")]):
            with self.subTest(command=command[0]):
                status, _, err = run_cli(*command, "--run-dir", str(self.root))
                self.assertEqual(status, 2, err)
                self.assertIn("holds no policy file", err)
        self.assertFalse((self.root / "model").exists())

    @pytest.mark.slow  # six trainings
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


class ShippedExperimentsTest(unittest.TestCase):
    def test_list_shows_every_shipped_experiment_by_the_name_spec_takes(self):
        status, out, _ = run_cli("list")
        self.assertEqual(status, 0)
        lines = out.strip().splitlines()
        self.assertTrue(lines[0].startswith("(default: sac train --env ID)"), lines[0])  # the general default first
        names = [line.split()[0] for line in lines[1:]]
        self.assertIn("pendulum", names)
        self.assertIn("sac/hopper_clipq", names)
        self.assertEqual(len(names), len(list(experiments_dir().rglob("*.yaml"))))
        for name in names:
            self.assertTrue(resolve_spec(name).is_file(), name)

    def test_spec_takes_a_path_or_a_shipped_name(self):
        self.assertEqual(resolve_spec("pendulum"), experiments_dir() / "pendulum.yaml")
        self.assertEqual(resolve_spec("sac/hopper_clipq.yaml"), experiments_dir() / "sac" / "hopper_clipq.yaml")
        self.assertEqual(resolve_spec(str(REPO / "experiments" / "hopper.yaml")), REPO / "experiments" / "hopper.yaml")
        with self.assertRaises(UserInputError):
            resolve_spec("/no/such/file.yaml")


class QuietFastCommandsTest(unittest.TestCase):
    def test_help_list_fields_and_input_errors_do_not_import_tensorflow(self):
        for argv in (["--help"], ["train", "--help"], ["list"], ["fields"], ["train", "--spec", "missing"],
                     ["train", "--spec", "pendulum", "--set", "learnig_rate=1"], ["eval", "--run-dir", "."],
                     ["plot", "nowhere"], ["compare", "nowhere", "nowhere"]):
            with self.subTest(argv=argv):
                code = (f"import sys; from SoftActorCritic.experiment_runner import main\n"
                        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
                        f"assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
                result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                                        timeout=60)
                self.assertEqual(result.returncode, 0, result.stderr[-1000:])

    def test_every_option_has_a_help_text(self):
        from SoftActorCritic.experiment_runner import build_parser

        parsers = [build_parser()]
        for parser in parsers:
            for action in parser._actions:
                if action.choices and isinstance(action.choices, dict):
                    parsers.extend(action.choices.values())
                elif action.dest != "help":
                    self.assertTrue(action.help, f"{parser.prog} {action.dest}")


class CompareAndPlotCommandTest(FoldersTest):
    """`sac compare` and `sac plot` on hand-made run folders (FoldersTest: two grid points of five runs)."""

    def run_without_tensorflow_or_ray(self, *argv: str) -> subprocess.CompletedProcess:
        code = ("import sys; from SoftActorCritic.experiment_runner import main\n"
                f"status = main({list(argv)!r})\n"
                "assert 'tensorflow' not in sys.modules and 'ray' not in sys.modules, 'tensorflow or ray imported'\n"
                "sys.exit(status)")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)

    def test_compare_prints_the_report_and_writes_the_profiles(self):
        result = self.run_without_tensorflow_or_ray("compare", str(self.a), str(self.b))
        self.assertEqual(result.returncode, 0, result.stderr[-2000:])
        improvement = compare.compare_runs(self.a, self.b).scores["final"][2]
        self.assertRegex(result.stdout, rf"final +\S.* {re.escape(format_interval(improvement, digits=2))}")
        self.assertGreater((self.a / f"compare-{self.b.name}.png").stat().st_size, 1000)

    def test_compare_refuses_bad_input_in_one_line(self):
        status, out, err = run_cli("compare", str(self.a), str(self.b), "--metric", "q1_mean")
        self.assertEqual(status, 2, out + err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("no common metric", err)

    def test_plot_band_option(self):
        for band in ("iqm", "minmax"):
            with self.subTest(band=band):
                image = self.sweep / f"{band}.png"
                result = self.run_without_tensorflow_or_ray("plot", str(self.sweep), "--band", band, "--out",
                                                            str(image))
                self.assertEqual(result.returncode, 0, result.stderr[-2000:])
                self.assertGreater(image.stat().st_size, 1000)


class CustomEnvironmentTest(unittest.TestCase):
    def test_a_module_env_id_works_with_train_eval_and_export(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            spec = write_spec(root / "custom.yaml", env_id="tests.custom_env:ReachTarget-v0", max_epoch=1,
                              max_trj_steps=None)
            self.assertEqual(run_cli("train", "--spec", str(spec), "--run-dir", str(root / "run"))[0], 0)
            status, out, err = run_cli("eval", "--run-dir", str(root / "run"), "--episodes", "2")
            self.assertEqual(status, 0, err)
            self.assertIn("tests.custom_env:ReachTarget-v0: deterministic return over 2 episodes", out)
            policy = load_policy(root / "run")
            np.testing.assert_array_equal((policy.action_low, policy.action_high), ([-0.5], [0.5]))


class ResumeTest(TempFolderTest):
    def long_run_spec(self) -> Path:
        """TINY_SPEC with more epochs than any test waits for (and a pool that holds them all): a signal sent once
        the awaited event happened lands mid-run however slow or fast the machine. A resume then sets max_epoch."""
        return write_spec(self.root / "long.yaml", max_epoch=1000, pool_capacity=200_000)

    @pytest.mark.slow  # a training process killed, then resumed
    def test_sigkill_after_first_checkpoint_then_resume_continues_from_it(self):
        run_dir = self.root / "run"
        process = start_training(self.long_run_spec(), run_dir)
        try:
            wait_for(lambda: latest_checkpoint_steps(run_dir) is not None, 300, "the first checkpoint", process)
        finally:
            process.kill()
            process.communicate()
        steps = latest_checkpoint_steps(run_dir)
        epochs = steps // 200  # checkpoints come at the end of epochs of 200 steps
        self.assertEqual(steps, 200 * epochs)
        saved, _ = buffer_files.read_chunks(run_dir / "checkpoints" / f"replay_buffer-{steps}.json")

        end = epochs + 2
        status, out, err = run_cli("train", "--resume", "--run-dir", str(run_dir), "--set", f"max_epoch={end}")
        self.assertEqual(status, 0, err)
        self.assertIn(f"({steps} env steps)", out)
        progress = pd.read_csv(run_dir / "progress.csv")
        self.assertEqual(progress["epoch"].tolist(), list(range(1, end + 1)))
        self.assertEqual(progress["env_steps"].tolist(), [200 * epoch for epoch in range(1, end + 1)])
        final, _ = buffer_files.read_chunks(run_dir / "checkpoints" / f"replay_buffer-{200 * end}.json")
        self.assertEqual(len(final), 200 * end)
        np.testing.assert_array_equal(final.obs[:len(saved)], saved.obs[:len(saved)])
        np.testing.assert_array_equal(final.rew[:len(saved)], saved.rew[:len(saved)])

    @pytest.mark.slow  # a training process stopped, then resumed
    def test_sigterm_after_the_first_epoch_saves_a_checkpoint_and_exits_130(self):
        run_dir = self.root / "run"
        process = start_training(self.long_run_spec(), run_dir)
        try:
            wait_for(lambda: progress_rows(run_dir) >= 1, 300, "epoch 1's row in progress.csv", process)
            process.send_signal(signal.SIGTERM)
            _, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        self.assertEqual(process.returncode, 130, err[-2000:])
        steps = latest_checkpoint_steps(run_dir)
        self.assertGreaterEqual(steps, 200)  # at the stop, after epoch 1's checkpoint
        self.assertIn(f"checkpoint saved at env step {steps}", err)
        epochs = steps // 200  # epochs of 200 steps completed before the stop
        before = pd.read_csv(run_dir / "progress.csv")
        self.assertEqual(before["epoch"].tolist(), list(range(1, epochs + 1)))

        end = epochs + 2
        status, _, err = run_cli("train", "--resume", "--run-dir", str(run_dir), "--set", f"max_epoch={end}")
        self.assertEqual(status, 0, err)
        progress = pd.read_csv(run_dir / "progress.csv")
        self.assertEqual(progress["epoch"].tolist(), list(range(1, end + 1)))
        pd.testing.assert_frame_equal(progress.iloc[:epochs], before)  # the rows before the stop are kept as they were

    @pytest.mark.slow  # three trainings
    def test_resume_at_an_epoch_boundary_reproduces_the_uninterrupted_run(self):
        whole, split = self.root / "whole", self.root / "split"
        self.assertEqual(run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(whole))[0], 0)
        status, _, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(split),
                                 "--set", "max_epoch=1")
        self.assertEqual(status, 0, err)
        status, _, err = run_cli("train", "--resume", "--run-dir", str(split), "--set", "max_epoch=3")
        self.assertEqual(status, 0, err)
        pd.testing.assert_frame_equal(pd.read_csv(whole / "progress.csv").drop(columns=TIMING_COLUMNS),
                                      pd.read_csv(split / "progress.csv").drop(columns=TIMING_COLUMNS))


class CorruptFilesTest(unittest.TestCase):
    """Each test damages files in its own copy of a one-epoch run (trained once for the class)."""

    @classmethod
    def setUpClass(cls):
        cls.folder = tempfile.TemporaryDirectory()
        cls.trained = Path(cls.folder.name) / "trained"
        spec_path = write_spec(Path(cls.folder.name) / "tiny.yaml", max_epoch=1)
        status, _, err = run_cli("train", "--spec", str(spec_path), "--run-dir", str(cls.trained))
        assert status == 0, err

    @classmethod
    def tearDownClass(cls):
        cls.folder.cleanup()

    def setUp(self):
        copy = tempfile.TemporaryDirectory()
        self.addCleanup(copy.cleanup)
        self.run_dir = Path(copy.name) / "run"
        shutil.copytree(self.trained, self.run_dir)
        self.files_before = sorted(p.name for p in (self.run_dir / "checkpoints").iterdir())

    def assert_clear_refusal(self, *args: str):
        status, out, err = run_cli(*args)
        self.assertEqual(status, 2, out + err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("Traceback", err)
        self.assertEqual(sorted(p.name for p in (self.run_dir / "checkpoints").iterdir()), self.files_before)

    def test_truncated_tensorflow_checkpoint(self):
        data = next((self.run_dir / "checkpoints").glob("ckpt-200.data-*"))
        data.write_bytes(data.read_bytes()[:100])
        self.assert_clear_refusal("train", "--resume", "--run-dir", str(self.run_dir), "--set", "max_epoch=2")

    def test_truncated_policy_file(self):
        policy = self.run_dir / "checkpoints" / "policy-200.npz"
        policy.write_bytes(policy.read_bytes()[:100])
        for command in ("eval", "play --record", "export --out model"):
            self.assert_clear_refusal(*command.split(), "--run-dir", str(self.run_dir))

    def test_garbage_replay_buffer_files(self):
        for name in ("replay_buffer-200.json", "replay_chunk-200.npy"):  # the manifest, then the chunk it names
            path = self.run_dir / "checkpoints" / name
            content = path.read_bytes()
            path.write_bytes(b"not a replay buffer file at all")
            self.assert_clear_refusal("train", "--resume", "--run-dir", str(self.run_dir), "--set", "max_epoch=2")
            path.write_bytes(content)

    def test_corrupt_spec_yaml(self):
        (self.run_dir / "spec.yaml").write_text("alpha: [unclosed\n")
        self.assert_clear_refusal("train", "--resume", "--run-dir", str(self.run_dir))


if __name__ == "__main__":
    unittest.main()
