"""What a new user meets first (issue 29): quiet output whatever TF_CPP_MIN_LOG_LEVEL says, their own
environment module with the `sac` command, Ray beside a running cluster, one-line errors, YAML in
`sac fields`, float noise in summaries, no MUJOCO_LOG.TXT in their folder."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest
import yaml

from blocAndTools.experiment_spec import ExperimentSpec
from SoftActorCritic import ray_backend, sweep_summary, sweeps
from SoftActorCritic.experiment_runner import commands
from SoftActorCritic.numpy_policy import Policy
from tests.helpers import REPO, TINY_SPEC, random_actor, run_cli, write_spec

REACH_MODULE = '''
import gymnasium
import numpy as np
from gymnasium.spaces import Box


class ReachTarget(gymnasium.Env):
    observation_space = Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
    action_space = Box(-0.5, 0.5, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-2.0, 2.0, size=2).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        self.state[0] += float(action[0])
        return self.state.copy(), -abs(float(self.state[0] - self.state[1])), False, False, {}


gymnasium.register("ReachTarget-v0", entry_point=ReachTarget, max_episode_steps=20)
'''


class TemporaryFolderTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)

    def tearDown(self):
        self.folder.cleanup()


class QuietTensorFlowTest(unittest.TestCase):
    def test_tensorflow_log_level_is_quiet_whatever_the_caller_set_and_verbose_shows_all(self):
        saved = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
        try:
            for caller, verbose, expected in ((None, False, "3"), ("2", False, "3"), ("3", False, "3"),
                                              ("0", False, "3"), ("2", True, "0")):
                os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
                if caller is not None:
                    os.environ["TF_CPP_MIN_LOG_LEVEL"] = caller
                self.assertEqual(run_cli(*(["--verbose"] if verbose else []), "fields")[0], 0)
                self.assertEqual(os.environ["TF_CPP_MIN_LOG_LEVEL"], expected, f"caller {caller}, verbose {verbose}")
        finally:
            os.environ.pop("TF_CPP_MIN_LOG_LEVEL", None)
            if saved is not None:
                os.environ["TF_CPP_MIN_LOG_LEVEL"] = saved


class OwnEnvironmentTest(TemporaryFolderTest):
    def test_ray_trials_find_modules_of_the_folder_the_command_runs_in(self):
        here = os.getcwd()
        os.chdir(self.root)
        try:
            paths = ray_backend.worker_environment()["PYTHONPATH"].split(os.pathsep)
        finally:
            os.chdir(here)
        self.assertIn(str(self.root.resolve()), [str(Path(path).resolve()) for path in paths])

    def make_playground_without_the_folder_on_sys_path(self, env_id, folder_on_sys_path=False):
        """A process whose sys.path lacks the working folder, as the `sac` console script's (python -P); with
        folder_on_sys_path, one that has it, as `python -m SoftActorCritic`."""
        code = ("from blocAndTools.gym_playground import GymPlayground; "
                f"print(GymPlayground({env_id!r}, seed=0).obs_dim)")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        isolation = [] if folder_on_sys_path else ["-P"]
        return subprocess.run([sys.executable, *isolation, "-c", code], cwd=self.root,
                              capture_output=True, text=True, timeout=120, env=env)

    def test_an_environment_module_of_the_working_folder_is_found_without_it_on_sys_path(self):
        (self.root / "my_envs").mkdir()
        (self.root / "my_envs" / "__init__.py").write_text("")
        (self.root / "my_envs" / "reach.py").write_text(REACH_MODULE)
        result = self.make_playground_without_the_folder_on_sys_path("my_envs.reach:ReachTarget-v0")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "2"), result.stderr)
        (self.root / "reach_alone.py").write_text(REACH_MODULE)  # a module, not a package
        result = self.make_playground_without_the_folder_on_sys_path("reach_alone:ReachTarget-v0")
        self.assertEqual((result.returncode, result.stdout.strip()), (0, "2"), result.stderr)

    def test_a_broken_environment_module_is_one_user_error(self):
        (self.root / "broken_envs.py").write_text("raise RuntimeError('typo in my module')\n")
        for folder_on_sys_path in (False, True):  # the `sac` console script and `python -m SoftActorCritic` alike
            result = self.make_playground_without_the_folder_on_sys_path("broken_envs:Broken-v0", folder_on_sys_path)
            self.assertNotEqual(result.returncode, 0)
            self.assertIn("UserInputError: environment 'broken_envs:Broken-v0' cannot be imported: typo in my module",
                          result.stderr)

    @pytest.mark.slow  # the installed console script in a process of its own
    def test_sac_console_script_imports_an_environment_module_from_the_working_folder(self):
        sac = shutil.which("sac") or str(Path(sys.executable).with_name("sac"))
        if not Path(sac).is_file():
            self.skipTest("the project is not installed (no `sac` console script)")
        (self.root / "my_envs").mkdir()
        (self.root / "my_envs" / "__init__.py").write_text("")
        (self.root / "my_envs" / "reach.py").write_text(REACH_MODULE)
        Policy(random_actor(2, 1), [-0.5], [0.5], "my_envs.reach:ReachTarget-v0").save(self.root / "policy.npz")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        result = subprocess.run([sac, "eval", "--run-dir", "policy.npz", "--episodes", "2"], cwd=self.root,
                                capture_output=True, text=True, timeout=120, env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("my_envs.reach:ReachTarget-v0: deterministic return over 2 episodes", result.stdout)


class RayStartTest(TemporaryFolderTest):
    """Ray is started before anything is written: when it cannot start, nothing is left on disk."""

    def setUp(self):
        super().setUp()
        import ray

        if ray.is_initialized():
            self.skipTest("a Ray instance is already running in this process")
        self.spec_path = write_spec(self.root / "tiny.yaml")

    def test_the_embedded_cluster_is_a_local_instance_of_its_own(self):
        with mock.patch("ray.init", side_effect=RuntimeError("stop here")) as init:
            status, _, err = run_cli("train", "--spec", str(self.spec_path), "--reruns", "2", "--backend", "ray",
                                     "--run-dir", str(self.root / "sweep"))
        self.assertEqual(status, 2, err)
        self.assertEqual(init.call_args.kwargs["address"], "local")  # never joins a `ray start` cluster unasked

    def test_a_ray_that_cannot_start_leaves_no_sweep_folder(self):
        message = "When connecting to an existing cluster, num_cpus and num_gpus must not be provided."
        with mock.patch("ray.init", side_effect=RuntimeError(message)):
            status, _, err = run_cli("train", "--spec", str(self.spec_path), "--reruns", "2", "--backend", "ray",
                                     "--run-dir", str(self.root / "sweep"))
            self.assertEqual(status, 2, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
            self.assertFalse((self.root / "sweep").exists(), "exit 2 left the sweep folder behind")
            status, _, err = run_cli("tune", "--spec", str(self.spec_path), "--search", "alpha=uniform(0.1, 0.3)",
                                     "--run-dir", str(self.root / "search"))
            self.assertEqual(status, 2, err)
            self.assertFalse((self.root / "search").exists(), "exit 2 left the search folder behind")


class TrialRecordTest(TemporaryFolderTest):
    def test_a_retry_marks_the_attempt_that_died_as_died(self):
        ray_backend.record_session(self.root, {"pid": 1, "status": "running"})
        ray_backend.record_session(self.root, {"pid": 2, "status": "running"})
        sessions = json.loads((self.root / ray_backend.TRIAL_RECORD).read_text())
        self.assertEqual([entry["pid"] for entry in sessions], [1, 2])
        self.assertTrue(sessions[0]["status"].startswith("died"), sessions[0])
        self.assertEqual(sessions[1]["status"], "running")


class OneLineErrorsTest(TemporaryFolderTest):
    def test_eval_of_a_spec_file_says_it_is_not_a_policy_file_nor_a_run_folder(self):
        spec = write_spec(self.root / "pendulum.yaml")
        status, _, err = run_cli("eval", "--run-dir", str(spec))
        self.assertEqual(status, 2)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertIn("not a policy file", err)
        self.assertNotIn("pickle", err.lower())

    def test_an_empty_spec_file_is_refused(self):
        (self.root / "empty.yaml").write_text("\n# nothing yet\n")
        status, _, err = run_cli("train", "--spec", str(self.root / "empty.yaml"), "--run-dir", str(self.root / "r"),
                                 "--set", "max_epoch=1")  # short, should a bug train the defaults
        self.assertEqual(status, 2)
        self.assertIn("is empty", err)
        self.assertFalse((self.root / "r").exists())

    def test_names_from_other_libraries_get_a_did_you_mean(self):
        spec = write_spec(self.root / "tiny.yaml")
        for other, ours in (("gamma", "discount_factor"), ("tau", "target_smoothing_coefficient"),
                            ("learning_starts", "min_pool_size"), ("batch_size", "batch_size_in_ts")):
            status, _, err = run_cli("train", "--spec", str(spec), "--set", f"{other}=1")
            self.assertEqual(status, 2)
            self.assertIn(f"did you mean '{ours}'", err)


class FieldsTest(unittest.TestCase):
    def test_fields_prints_defaults_as_yaml(self):
        status, out, _ = run_cli("fields")
        self.assertEqual(status, 0)
        rows = {line.split()[0]: line.split()[1] for line in out.splitlines()}
        self.assertEqual(rows["max_trj_steps"], "null")
        self.assertEqual(rows["deterministic_ops"], "true")
        self.assertIn("[256, 256]", out)
        self.assertNotIn("(256, 256)", out)
        self.assertNotIn(" None ", out)


class SummaryTextTest(TemporaryFolderTest):
    def write_run(self, name: str, actor_learning_rate: float, returns: list[float]) -> Path:
        run_dir = self.root / name
        run_dir.mkdir()
        spec = dict(TINY_SPEC, name=name, actor_learning_rate=actor_learning_rate)
        (run_dir / "spec.yaml").write_text(yaml.safe_dump(spec))
        pd.DataFrame({"epoch": range(1, len(returns) + 1), "env_steps": [200 * (i + 1) for i in range(len(returns))],
                      "eval_return_mean": returns, "wall_time_s": [0.1 + 0.2 for _ in returns]}
                     ).to_csv(run_dir / "progress.csv", index=False)
        return run_dir

    def test_summary_csv_holds_no_float_noise_and_the_piped_table_cuts_nothing(self):
        runs = [self.write_run("a", 0.0084591234567, [-300.1, -150.3]),
                self.write_run("b", 3.0300000000000002e-4, [-400.0, -200.7])]
        table = sweep_summary.write_summary(self.root, runs)
        text = (self.root / sweep_summary.SUMMARY).read_text()
        self.assertNotIn("00000000", text)  # 0.30000000000000004 and 3.0300000000000002e-4 are noise
        self.assertIn("0.0084591234567", text)  # the sampled value itself, whole
        out = subprocess.run([sys.executable, "-c", "import pandas as pd, sys; from SoftActorCritic.sweep_summary "
                              "import print_summary; print_summary(pd.read_csv(sys.argv[1]), 'summary')",
                              str(self.root / sweep_summary.SUMMARY)], capture_output=True, text=True,
                             timeout=60).stdout
        self.assertIn("actor_learning_rate", out)
        self.assertIn("0.0084591234567", out)
        self.assertEqual(len(table), 2)


class FinishedSweepResumeTest(TemporaryFolderTest):
    def test_resuming_a_finished_sweep_does_not_load_tensorflow(self):
        spec = ExperimentSpec(**dict(TINY_SPEC, max_epoch=1))
        runs = [(spec.replace(seed=seed), self.root / f"seed{seed}") for seed in (1, 2)]
        sweeps.write_manifest(self.root, runs, "local")
        for _, run_dir in runs:
            (run_dir / "checkpoints").mkdir(parents=True)
            (run_dir / "checkpoints" / "checkpoint").write_text('model_checkpoint_path: "ckpt-1"\n')
            (run_dir / "checkpoints" / "run_state-1.json").write_text('{"epoch": 1, "env_steps": 200}')
            spec.to_yaml(run_dir / "spec.yaml")
        with mock.patch.object(commands, "import_training", side_effect=AssertionError("loads TF")):
            status, out, err = run_cli("train", "--resume", "--run-dir", str(self.root))
        self.assertEqual(status, 0, err)
        self.assertIn("2 of 2 runs finished earlier, 0 to run", out)


class MujocoLogTest(TemporaryFolderTest):
    def test_making_a_mujoco_environment_leaves_no_log_file_in_the_working_folder(self):
        from blocAndTools.gym_playground import GymPlayground

        here = os.getcwd()
        os.chdir(self.root)
        try:
            GymPlayground("HalfCheetah-v5").close()  # its model uses the deprecated settotalmass: MuJoCo warns
        finally:
            os.chdir(here)
        self.assertEqual(list(self.root.iterdir()), [])


class CheckpointPolicyTest(unittest.TestCase):
    @pytest.mark.slow  # a short training
    def test_a_checkpoint_policy_knows_the_eval_return_of_its_epoch(self):
        with tempfile.TemporaryDirectory() as folder:
            run_dir = Path(folder) / "run"
            status, out, err = run_cli("train", "--spec", str(write_spec(Path(folder) / "tiny.yaml")),
                                       "--run-dir", str(run_dir), "--set", "max_epoch=1")
            self.assertEqual(status, 0, err)
            self.assertIn("training tiny on Pendulum-v1: obs Box(3,)", out)  # a spec's name, then its environment
            progress = pd.read_csv(run_dir / "progress.csv")
            policy = Policy.load(run_dir / "checkpoints" / "policy-200.npz")
            self.assertIsNotNone(policy.eval_return)
            self.assertTrue(np.isclose(policy.eval_return, progress["eval_return_mean"].iloc[-1]))


class GeneralDefaultTest(TemporaryFolderTest):
    """`sac train --env ID`: the general default (ExperimentSpec's defaults) on any continuous-control task."""

    def test_list_shows_the_general_default_first(self):
        status, out, _ = run_cli("list")
        self.assertEqual(status, 0)
        self.assertIn("sac train --env ID", out.splitlines()[0])

    def test_train_and_tune_need_a_spec_or_an_environment(self):
        for command in ("train", "tune"):
            status, _, err = run_cli(command, "--run-dir", str(self.root / "r"))
            self.assertEqual(status, 2, err)
            self.assertIn("--env ENV_ID", err)
        self.assertFalse((self.root / "r").exists())

    def test_discrete_or_image_environments_are_refused_in_one_line(self):
        for env_id, reason in (("CartPole-v1", "Box action space"), ("CarRacing-v3", "1-D Box observation")):
            for command in ("train", "tune"):
                status, _, err = run_cli(command, "--env", env_id, "--run-dir", str(self.root / "r"),
                                         *(["--search", "alpha=uniform(0.1, 0.3)"] if command == "tune" else []))
                self.assertEqual(status, 2, err)
                self.assertEqual(len(err.strip().splitlines()), 1, err)
                self.assertIn(reason, err)
        self.assertFalse((self.root / "r").exists())

    def test_resume_takes_no_spec_nor_environment(self):
        status, _, err = run_cli("train", "--resume", "--env", "Pendulum-v1", "--run-dir", str(self.root))
        self.assertEqual(status, 2)
        self.assertIn("no --spec or --env", err)

    @pytest.mark.slow  # a short training
    def test_env_trains_the_defaults_on_that_environment_with_set_on_top(self):
        run_dir = self.root / "run"
        small = ["max_epoch=1", "timestep_per_epoch=200", "min_pool_size=100", "batch_size_in_ts=32",
                 "max_eval_trj=1", "phi_nn_h_layer_topo=[16, 16]", "psi_nn_h_layer_topo=[16, 16]",
                 "theta_nn_h_layer_topo=[16, 16]"]
        status, out, err = run_cli("train", "--env", "MountainCarContinuous-v0", "--run-dir", str(run_dir),
                                   *[item for value in small for item in ("--set", value)])
        self.assertEqual(status, 0, err)
        self.assertIn("training on MountainCarContinuous-v0: obs Box(2,) act Box(1,)", out)  # not the name twice
        spec = ExperimentSpec.from_yaml(run_dir / "spec.yaml")
        self.assertEqual(spec.env_id, "MountainCarContinuous-v0")
        self.assertEqual(spec.timestep_per_epoch, 200)
        defaults = ExperimentSpec()
        self.assertEqual((spec.alpha, spec.reward_scaling, spec.variant),
                         (defaults.alpha, defaults.reward_scaling, defaults.variant))


class FirstReadingTest(unittest.TestCase):
    """What the README and the docs tell a new user before anything runs."""

    def test_the_virtual_environment_comes_before_the_install(self):
        readme = (REPO / "README.md").read_text()
        self.assertLess(readme.index("python -m venv .venv"), readme.index("python -m pip install . && sac train"))

    def test_the_readmes_learning_table_is_the_benchmarks_pendulum_table(self):
        """The README cannot include a file: its copy of the table must follow the results it quotes."""
        readme = (REPO / "README.md").read_text().splitlines()
        table = (REPO / "benchmarks/results/learning/pendulum/table.md").read_text().splitlines()
        rows = [line for line in table if line.startswith("| ") and line[2].isdigit()]
        self.assertEqual(len(rows), 5)
        for row in [table[table.index(rows[0]) - 2], *rows]:  # the header and each budget's row
            self.assertIn(row, readme)

    def test_the_cluster_recipe_binds_to_loopback_and_says_ray_stop_is_machine_wide(self):
        for page in (REPO / "README.md", REPO / "docs" / "sweeps.md"):
            text = " ".join(page.read_text().split())
            self.assertIn("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 ray start --head --node-ip-address=127.0.0.1", text,
                          page)
            self.assertRegex(text, r"`ray stop` (stops|ends) every Ray process on the machine", page)


if __name__ == "__main__":
    unittest.main()
