"""Tests for GymPlayground: spaces, action rescaling, seeding, time limits, errors, rendering."""

import importlib.util
import os
import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import gymnasium
import numpy as np
import pytest
from gymnasium.envs.classic_control.pendulum import PendulumEnv

from blocAndTools.errors import UserInputError
from blocAndTools.gym_playground import EnvironmentFault, GymPlayground
from blocAndTools.seeding import stream_seed

REPO_ROOT = Path(__file__).resolve().parents[1]
HAS_MUJOCO = importlib.util.find_spec("mujoco") is not None
FAULTY_ID = "FaultyPendulum-v0"


class _FaultyPendulum(PendulumEnv):
    """Pendulum that raises after `fail_after` steps, or on reset when `fail_on_reset`."""

    def __init__(self, fail_after: int = 3, fail_on_reset: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.fail_after = fail_after
        self.fail_on_reset = fail_on_reset
        self.steps_done = 0

    def reset(self, *, seed=None, options=None):
        if self.fail_on_reset:
            raise OSError("simulator lost")
        return super().reset(seed=seed, options=options)

    def step(self, u):
        if self.steps_done >= self.fail_after:
            raise FloatingPointError("physics blew up")
        self.steps_done += 1
        return super().step(u)


def _make_faulty_pendulum(**kwargs) -> _FaultyPendulum:
    return _FaultyPendulum(**kwargs)


if FAULTY_ID not in gymnasium.registry:
    gymnasium.register(id=FAULTY_ID, entry_point=_make_faulty_pendulum, max_episode_steps=200)


class TestSpacesAndRescaling(unittest.TestCase):
    def test_pendulum_spaces_are_reported_and_actions_live_in_minus_one_one(self):
        with GymPlayground("Pendulum-v1", seed=0) as pg:
            self.assertEqual((pg.obs_dim, pg.act_dim), (3, 1))
            np.testing.assert_array_equal(pg.action_space.low, [-1.0])
            np.testing.assert_array_equal(pg.action_space.high, [1.0])
            np.testing.assert_array_equal(pg.original_action_space.high, [2.0])
            self.assertEqual(pg.max_episode_steps, 200)
            self.assertEqual(
                pg.describe(),
                "Pendulum-v1: obs Box(3,) act Box(1,) in [-2, 2] rescaled to [-1, 1], time limit 200",
            )

    def test_pendulum_action_plus_one_reaches_env_as_plus_two(self):
        with GymPlayground("Pendulum-v1", seed=3) as pg:
            pg.reset()
            for action, torque in [(1.0, 2.0), (-1.0, -2.0), (0.5, 1.0), (0.0, 0.0)]:
                pg.step(np.array([action], dtype=np.float32))
                self.assertAlmostEqual(float(pg.env.unwrapped.last_u), torque, places=6)

    def test_rescaled_step_matches_raw_env_stepped_with_scaled_action(self):
        raw = gymnasium.make("Pendulum-v1")
        raw_obs, _ = raw.reset(seed=stream_seed(11, "env"))  # the playground's first reset uses the env stream
        with GymPlayground("Pendulum-v1", seed=11) as pg:
            obs = pg.reset()
            np.testing.assert_allclose(obs, raw_obs, rtol=0, atol=1e-7)
            for a in [0.25, -0.75, 1.0]:
                obs, reward, _, _ = pg.step(np.array([a], dtype=np.float32))
                raw_obs, raw_reward, *_ = raw.step(np.array([2.0 * a], dtype=np.float32))
                np.testing.assert_allclose(obs, raw_obs, rtol=0, atol=1e-6)
                self.assertAlmostEqual(reward, float(raw_reward), places=5)
        raw.close()

    def test_step_returns_float32_obs_float_reward_and_bools(self):
        with GymPlayground("Pendulum-v1", seed=0) as pg:
            obs = pg.reset()
            self.assertEqual(obs.dtype, np.float32)
            next_obs, reward, terminated, truncated = pg.step(pg.sample_random_action())
            self.assertEqual(next_obs.dtype, np.float32)
            self.assertIsInstance(reward, float)
            self.assertIs(terminated, False)
            self.assertIs(truncated, False)
            self.assertEqual(pg.total_steps, 1)

    def test_random_actions_are_float32_within_minus_one_one(self):
        with GymPlayground("LunarLander-v3", env_kwargs={"continuous": True}, seed=0) as pg:
            actions = np.stack([pg.sample_random_action() for _ in range(200)])
            self.assertEqual(actions.dtype, np.float32)
            self.assertEqual(actions.shape, (200, 2))
            self.assertTrue(np.all(actions >= -1.0) and np.all(actions <= 1.0))

    def test_wrong_action_shape_is_rejected_before_the_env(self):
        with GymPlayground("Pendulum-v1", seed=0) as pg:
            pg.reset()
            with self.assertRaises(ValueError):
                pg.step(np.zeros(2, dtype=np.float32))


class TestSeeding(unittest.TestCase):
    def _trajectory(self, seed: int, steps: int = 15):
        with GymPlayground("Pendulum-v1", seed=seed) as pg:
            observations = [pg.reset()]
            actions = []
            for _ in range(steps):
                action = pg.sample_random_action()
                actions.append(action)
                observations.append(pg.step(action)[0])
            second_episode_start = pg.reset()
        return np.stack(observations), np.stack(actions), second_episode_start

    def test_same_seed_gives_same_first_obs_and_trajectory(self):
        obs_a, act_a, next_a = self._trajectory(seed=7)
        obs_b, act_b, next_b = self._trajectory(seed=7)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(act_a, act_b)
        np.testing.assert_array_equal(next_a, next_b)

    def test_different_seeds_give_different_first_obs_and_actions(self):
        obs_a, act_a, _ = self._trajectory(seed=7)
        obs_b, act_b, _ = self._trajectory(seed=8)
        self.assertFalse(np.array_equal(obs_a[0], obs_b[0]))
        self.assertFalse(np.array_equal(act_a, act_b))

    def test_later_resets_continue_the_rng_instead_of_reseeding(self):
        obs, _, second_start = self._trajectory(seed=7, steps=1)
        self.assertFalse(np.array_equal(obs[0], second_start))


class TestTimeLimit(unittest.TestCase):
    def test_max_trj_steps_truncates_without_terminating(self):
        with GymPlayground("Pendulum-v1", seed=0, max_trj_steps=5) as pg:
            self.assertEqual(pg.max_episode_steps, 5)
            pg.reset()
            flags = [pg.step(pg.sample_random_action())[2:] for _ in range(5)]
        self.assertEqual(flags[:4], [(False, False)] * 4)
        self.assertEqual(flags[4], (False, True))

    def test_run_episode_returns_the_sum_of_rewards_and_calls_after_step_per_frame(self):
        frames = []
        with GymPlayground("Pendulum-v1", seed=0, max_trj_steps=5) as pg:
            episode_return = pg.run_episode(lambda obs: np.zeros(1, np.float32), after_step=lambda: frames.append(1))
        with GymPlayground("Pendulum-v1", seed=0, max_trj_steps=5) as pg:
            pg.reset()
            expected = sum(pg.step(np.zeros(1, np.float32))[1] for _ in range(5))
        self.assertEqual(len(frames), 6)  # after reset, then after each of the 5 steps
        self.assertAlmostEqual(episode_return, expected)

    def test_non_positive_max_trj_steps_is_a_user_error(self):
        with self.assertRaises(UserInputError):
            GymPlayground("Pendulum-v1", max_trj_steps=0)


class TestOtherEnvironments(unittest.TestCase):
    def test_lunar_lander_continuous_via_env_kwargs(self):
        with GymPlayground("LunarLander-v3", env_kwargs={"continuous": True}, seed=0) as pg:
            self.assertEqual((pg.obs_dim, pg.act_dim), (8, 2))
            obs = pg.reset()
            self.assertEqual(obs.shape, (8,))
            next_obs, *_ = pg.step(pg.sample_random_action())
            self.assertEqual(next_obs.shape, (8,))

    @unittest.skipUnless(HAS_MUJOCO, "mujoco is not importable; install gymnasium[mujoco] to test HalfCheetah-v5")
    def test_half_cheetah_v5(self):
        with GymPlayground("HalfCheetah-v5", seed=0) as pg:
            self.assertEqual((pg.obs_dim, pg.act_dim), (17, 6))
            self.assertEqual(pg.max_episode_steps, 1000)
            obs = pg.reset()
            self.assertEqual(obs.shape, (17,))
            next_obs, reward, terminated, truncated = pg.step(pg.sample_random_action())
            self.assertEqual(next_obs.shape, (17,))
            self.assertTrue(np.isfinite(reward))


class TestUserErrors(unittest.TestCase):
    def test_discrete_actions_are_rejected_naming_the_space(self):
        with self.assertRaises(UserInputError) as ctx:
            GymPlayground("CartPole-v1")
        message = str(ctx.exception)
        self.assertIn("Discrete", message)
        self.assertIn("CartPole-v1", message)
        self.assertNotIn("\n", message)

    def test_unknown_env_id_is_a_one_line_user_error(self):
        with self.assertRaises(UserInputError) as ctx:
            GymPlayground("NoSuchEnv-v0")
        self.assertIn("NoSuchEnv-v0", str(ctx.exception))
        self.assertNotIn("\n", str(ctx.exception))

    def test_unknown_env_version_is_a_user_error(self):
        with self.assertRaises(UserInputError):
            GymPlayground("Pendulum-v99")

    def test_bad_env_kwargs_are_a_user_error_naming_them(self):
        with self.assertRaises(UserInputError) as ctx:
            GymPlayground("Pendulum-v1", env_kwargs={"no_such_option": 1})
        self.assertIn("no_such_option", str(ctx.exception))
        self.assertNotIn("\n", str(ctx.exception))


class TestEnvironmentFaults(unittest.TestCase):
    def test_env_raising_in_step_gives_environment_fault_with_id_and_step_count(self):
        with GymPlayground(FAULTY_ID, env_kwargs={"fail_after": 3}, seed=0) as pg:
            pg.reset()
            for _ in range(3):
                pg.step(pg.sample_random_action())
            with self.assertRaises(EnvironmentFault) as ctx:
                pg.step(pg.sample_random_action())
        message = str(ctx.exception)
        self.assertIn(FAULTY_ID, message)
        self.assertIn("3 steps", message)
        self.assertIsInstance(ctx.exception.__cause__, FloatingPointError)
        self.assertIsInstance(ctx.exception, RuntimeError)
        self.assertNotIsInstance(ctx.exception, UserInputError)

    def test_env_raising_in_reset_gives_environment_fault(self):
        with GymPlayground(FAULTY_ID, env_kwargs={"fail_on_reset": True}, seed=0) as pg:
            with self.assertRaises(EnvironmentFault) as ctx:
                pg.reset()
        self.assertIn(FAULTY_ID, str(ctx.exception))
        self.assertIn("reset", str(ctx.exception))
        self.assertIsInstance(ctx.exception.__cause__, OSError)


class TestRendering(unittest.TestCase):
    def test_pendulum_renders_rgb_array_frames(self):
        with GymPlayground("Pendulum-v1", seed=0, render_mode="rgb_array") as pg:
            pg.reset()
            frame = pg.env.render()
        self.assertEqual(frame.ndim, 3)
        self.assertEqual(frame.shape[2], 3)
        self.assertEqual(frame.dtype, np.uint8)

    def _render_half_cheetah_in_subprocess(self, with_tensorflow: bool) -> None:
        """Render one HalfCheetah-v5 frame with MUJOCO_GL=egl in a fresh process; skip if EGL fails.

        A subprocess because the GL backend is fixed per process and a broken EGL can crash it.
        Without TensorFlow, the package `__init__` (which imports it) is bypassed by a stub.
        """
        script = textwrap.dedent(
            f"""
            import sys, types
            if not {with_tensorflow!r}:
                package = types.ModuleType("blocAndTools")
                package.__path__ = [{str(REPO_ROOT / "blocAndTools")!r}]
                sys.modules["blocAndTools"] = package
            else:
                import tensorflow
            from blocAndTools.gym_playground import GymPlayground
            assert ("tensorflow" in sys.modules) == {with_tensorflow!r}
            pg = GymPlayground("HalfCheetah-v5", seed=0, render_mode="rgb_array",
                               env_kwargs={{"width": 64, "height": 48}})
            pg.reset()
            try:
                frame = pg.env.render()
            except Exception as exc:
                print(f"{{type(exc).__name__}}: {{exc}}", file=sys.stderr)
                sys.exit(3)
            pg.close()
            print(frame.shape, frame.dtype, int(frame.std() > 0), flush=True)
            """
        )
        env = dict(os.environ, MUJOCO_GL="egl")
        result = subprocess.run(
            [sys.executable, "-c", script], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        tf_note = "with TensorFlow loaded" if with_tensorflow else "without TensorFlow"
        if result.returncode < 0:
            self.skipTest(
                f"MuJoCo EGL rendering crashed {tf_note} (signal {-result.returncode}); on Mesa llvmpipe "
                "the GL driver's LLVM clashes with the LLVM inside libtensorflow_framework"
            )
        if result.returncode == 3:
            last_line = (result.stderr.strip().splitlines() or ["no message"])[-1]
            self.skipTest(f"MuJoCo EGL rendering fails on this machine {tf_note}: {last_line}")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), ["(48,", "64,", "3)", "uint8", "1"])

    @unittest.skipUnless(HAS_MUJOCO, "mujoco is not importable; install gymnasium[mujoco] to test HalfCheetah-v5")
    def test_half_cheetah_renders_offscreen_with_egl(self):
        self._render_half_cheetah_in_subprocess(with_tensorflow=False)

    @unittest.skipUnless(HAS_MUJOCO, "mujoco is not importable; install gymnasium[mujoco] to test HalfCheetah-v5")
    @pytest.mark.slow  # a TensorFlow process
    def test_half_cheetah_renders_offscreen_with_egl_in_a_tensorflow_process(self):
        self._render_half_cheetah_in_subprocess(with_tensorflow=True)

if __name__ == "__main__":
    unittest.main()
