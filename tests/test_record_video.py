"""`play --record`: videos are written by a TensorFlow-free child process from the run's policy file.

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
import pytest

from SoftActorCritic.numpy_policy import Policy
from SoftActorCritic.record_video import pad_frame
from tests.helpers import REPO, random_actor, run_cli, write_spec


def record(policy: Path, out_dir: Path, episodes: int = 1, max_trj_steps: int = 20,
           env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "SoftActorCritic.record_video", "--policy", str(policy),
                           "--episodes", str(episodes), "--out-dir", str(out_dir), "--seed", "0",
                           "--max-trj-steps", str(max_trj_steps)], capture_output=True, text=True, cwd=REPO,
                          timeout=120, env=env)


class FramesTest(unittest.TestCase):
    def test_frames_are_padded_to_multiples_of_16_without_changing_the_picture(self):
        frame = np.arange(500 * 333 * 3, dtype=np.uint8).reshape(500, 333, 3)
        padded = pad_frame(frame)
        self.assertEqual(padded.shape, (512, 336, 3))
        np.testing.assert_array_equal(padded[:500, :333], frame)
        self.assertFalse(padded[500:].any() or padded[:, 333:].any())
        self.assertEqual(pad_frame(padded).shape, padded.shape)


class RecordVideoTest(unittest.TestCase):
    @pytest.mark.slow  # a training, then a recording process
    def test_play_record_on_a_tiny_pendulum_run_writes_a_video(self):
        with tempfile.TemporaryDirectory() as folder:
            spec_path, run_dir = write_spec(Path(folder) / "tiny.yaml"), Path(folder) / "run"
            status, _, err = run_cli("train", "--spec", str(spec_path), "--run-dir", str(run_dir),
                                     "--set", "max_epoch=1")
            self.assertEqual(status, 0, err)
            status, out, err = run_cli("play", "--run-dir", str(run_dir), "--record")
            self.assertEqual(status, 0, err)
            self.assertIn("recording", out)
            video = run_dir / "videos" / "step200-episode-0.mp4"
            self.assertGreater(video.stat().st_size, 10_000)
            first = video.read_bytes()
            status, _, err = run_cli("play", "--run-dir", str(run_dir), "--record")
            self.assertEqual(status, 0, err)
            self.assertEqual(video.read_bytes(), first, "a second recording overwrote the first video")
            self.assertTrue((run_dir / "videos" / "step200-episode-0-2.mp4").is_file())

    @pytest.mark.slow  # a recording process
    def test_recording_pendulum_without_a_display_prints_no_warning(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            Policy(random_actor(3, 1), [-2.0], [2.0], "Pendulum-v1").save(root / "policy.npz")
            env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "SDL_VIDEODRIVER")}
            result = record(root / "policy.npz", root / "videos", env=env)  # 500x500 frames, SDL without display
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stderr, "")

    @pytest.mark.slow  # a recording process
    def test_half_cheetah_records_in_the_tensorflow_free_child(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            Policy(random_actor(17, 6), [-1.0] * 6, [1.0] * 6, "HalfCheetah-v5").save(root / "policy.npz")
            result = record(root / "policy.npz", root / "videos")
            if result.returncode < 0 and not self._egl_renders_without_tensorflow():
                self.skipTest("MuJoCo EGL rendering fails on this machine even without TensorFlow")
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            self.assertIn("episode 0: return", result.stdout)
            self.assertGreater((root / "videos" / "step0-episode-0.mp4").stat().st_size, 1_000)

    def test_record_video_exits_2_with_one_line_on_a_bad_policy_file(self):
        with tempfile.TemporaryDirectory() as folder:
            root = Path(folder)
            (root / "bad.npz").write_text("nope")
            result = record(root / "bad.npz", root / "videos")
            self.assertEqual(result.returncode, 2)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)

    @staticmethod
    def _egl_renders_without_tensorflow() -> bool:
        code = ("from blocAndTools.gym_playground import GymPlayground; "
                "p = GymPlayground('HalfCheetah-v5', render_mode='rgb_array'); p.reset(); p.env.render()")
        return subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=REPO, timeout=60).returncode == 0


if __name__ == "__main__":
    unittest.main()
