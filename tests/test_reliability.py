"""Reliability: resume after SIGKILL or SIGTERM, identical numbers after a resume, the divergence guard,
environment faults, unreadable checkpoints, and no unsafe serialisation anywhere."""
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path

import gymnasium
import numpy as np
import pandas as pd
import pytest

from blocAndTools import ExperimentSpec, ReplayBuffer
from blocAndTools.run_logging import ConsoleView
from SoftActorCritic.agent import SoftActorCriticAgent
from SoftActorCritic.experiment_runner import latest_checkpoint_state
from tests.helpers import REPO, run_cli, write_spec

TIMING_COLUMNS = ["wall_time_s", "steps_per_s"]


def start_training(spec_path: Path, run_dir: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "SoftActorCritic", "train", "--spec", str(spec_path),
                             "--run-dir", str(run_dir), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))


def wait_for(condition, timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.05)


def latest_checkpoint_steps(run_dir: Path) -> int | None:
    state = latest_checkpoint_state(run_dir)
    return None if state is None else state["env_steps"]


class TempFolderTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        self.spec_path = self.root / "tiny.yaml"
        self.spec_path = write_spec(self.spec_path, max_epoch=3)

    def tearDown(self):
        self.folder.cleanup()


class ResumeTest(TempFolderTest):
    @pytest.mark.slow  # a training process killed, then resumed
    def test_sigkill_after_first_checkpoint_then_resume_continues_from_it(self):
        run_dir = self.root / "run"
        process = start_training(self.spec_path, run_dir)
        try:
            wait_for(lambda: latest_checkpoint_steps(run_dir) is not None or process.poll() is not None)
        finally:
            process.kill()
            process.wait()
        steps = latest_checkpoint_steps(run_dir)
        self.assertIsNotNone(steps, "no checkpoint before the process ended")
        saved, _ = ReplayBuffer.read_chunks(run_dir / "checkpoints" / f"replay_buffer-{steps}.json")

        status, out, err = run_cli("train", "--resume", "--run-dir", str(run_dir))
        self.assertEqual(status, 0, err)
        self.assertIn(f"({steps} env steps)", out)
        progress = pd.read_csv(run_dir / "progress.csv")
        self.assertEqual(progress["epoch"].tolist(), [1, 2, 3])
        self.assertEqual(progress["env_steps"].tolist(), [200, 400, 600])
        final, _ = ReplayBuffer.read_chunks(run_dir / "checkpoints" / "replay_buffer-600.json")
        self.assertEqual(len(final), 600)
        np.testing.assert_array_equal(final.obs[:len(saved)], saved.obs[:len(saved)])
        np.testing.assert_array_equal(final.rew[:len(saved)], saved.rew[:len(saved)])

    @pytest.mark.slow  # a training process stopped, then resumed
    def test_sigterm_saves_a_checkpoint_and_exits_130(self):
        run_dir = self.root / "run"
        process = start_training(self.spec_path, run_dir)
        wait_for(lambda: (run_dir / "progress.csv").exists() or process.poll() is not None)
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 130, err[-2000:])
        self.assertIn("checkpoint saved at env step", err)
        self.assertIsNotNone(latest_checkpoint_steps(run_dir))
        status, _, err = run_cli("train", "--resume", "--run-dir", str(run_dir))
        self.assertEqual(status, 0, err)
        self.assertEqual(pd.read_csv(run_dir / "progress.csv")["epoch"].tolist(), [1, 2, 3])

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

    def test_acting_after_a_restore_follows_the_restored_phi(self):
        spec = ExperimentSpec.from_yaml(self.spec_path).replace(max_epoch=1)
        agent = SoftActorCriticAgent(spec, self.root / "run")
        agent.train(ConsoleView())  # ends with a checkpoint
        obs = np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32)
        saved_actions = agent.brain.deterministic_action(obs)
        for _ in range(20):  # phi moves on, and acting follows it
            agent.brain.train_step(agent.buffer.sample(spec.batch_size_in_ts))
        self.assertGreater(np.abs(agent.brain.deterministic_action(obs) - saved_actions).max(), 1e-4)
        agent.restore_checkpoint()
        np.testing.assert_allclose(agent.brain.deterministic_action(obs), saved_actions, atol=1e-6)
        agent.close()


class FaultyPendulum(gymnasium.Wrapper):
    """Pendulum whose reward turns huge, NaN, or whose step raises, after `after` steps."""

    def __init__(self, fault: str, after: int):
        super().__init__(gymnasium.make("Pendulum-v1", max_episode_steps=100))
        self.fault, self.after, self.steps = fault, after, 0

    def step(self, action):
        self.steps += 1
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.steps > self.after:
            if self.fault == "raise":
                raise RuntimeError("simulator exploded")
            reward = {"huge": 1e30, "nan": float("nan")}[self.fault]
        return obs, reward, terminated, truncated, info


for _fault in ("huge", "nan", "raise"):
    gymnasium.register(f"Faulty{_fault.title()}Pendulum-v0",
                       entry_point=lambda fault=_fault, after=250, **kwargs: FaultyPendulum(fault, after))


class FaultTest(TempFolderTest):
    def train_faulty(self, fault: str) -> tuple[int, str, Path]:
        run_dir = self.root / fault
        status, _, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(run_dir),
                                 "--set", f"env_id=Faulty{fault.title()}Pendulum-v0")
        return status, err, run_dir

    def test_divergence_guard_names_the_loss_and_keeps_the_last_good_checkpoint(self):
        status, err, run_dir = self.train_faulty("huge")
        self.assertEqual(status, 1, err)
        self.assertRegex(err, r"q1_loss became (inf|nan).* during epoch 2")
        self.assertEqual(latest_checkpoint_steps(run_dir), 200)
        self.assertEqual(pd.read_csv(run_dir / "progress.csv")["epoch"].tolist(), [1])

    def test_non_finite_reward_is_an_environment_fault(self):
        status, err, run_dir = self.train_faulty("nan")
        self.assertEqual(status, 1, err)
        self.assertIn("'FaultyNanPendulum-v0' returned a non-finite reward (nan)", err)
        self.assertIn("checkpoint saved", err)

    def test_environment_exception_is_reported_with_id_and_step_and_checkpointed(self):
        status, err, run_dir = self.train_faulty("raise")
        self.assertEqual(status, 1, err)
        self.assertIn("'FaultyRaisePendulum-v0' raised in step() after 250 steps", err)
        self.assertEqual(latest_checkpoint_steps(run_dir), 250)
        self.assertEqual(len(err.strip().splitlines()), 1, err)


class CorruptFilesTest(TempFolderTest):
    def setUp(self):
        super().setUp()
        self.run_dir = self.root / "run"
        status, _, err = run_cli("train", "--spec", str(self.spec_path), "--run-dir", str(self.run_dir),
                                 "--set", "max_epoch=1")
        self.assertEqual(status, 0, err)
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


class NoUnsafeSerialisationTest(unittest.TestCase):
    def test_source_tree_has_no_pickle_eval_unsafe_yaml_or_sys_path_edits(self):
        banned = re.compile("|".join([r"\bimport " + "pickle", r"\bpickle" + r"\.", "allow_pickle" + "=True",
                                      r"yaml\.load" + r"\(", r"yaml\.unsafe" + "_load", r"(?<![\w.])eval" + r"\(",
                                      "compat" + ".v1", r"\bSession" + r"\(", r"sys\.path" + r"\.(insert|append)"]))
        offenders = []
        for path in REPO.rglob("*.py"):
            if any(part.startswith(".") for part in path.relative_to(REPO).parts):
                continue  # .git, and virtual environments such as benchmarks/peers/.venv
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if banned.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
        self.assertEqual(offenders, [])


if __name__ == "__main__":
    unittest.main()
