"""GymPlayground: one gymnasium environment made ready for SAC.

It makes the environment, rejects spaces SAC cannot handle with a one-line
`UserInputError`, rescales actions to [-1, 1] (the range of the tanh-squashed
policy), seeds everything from one seed, and keeps gymnasium's split between
`terminated` (a true terminal state: no bootstrap) and `truncated` (a time limit:
still bootstrap).
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import logging
import math
import os
import sys
from collections.abc import Callable
from types import TracebackType

import gymnasium
import numpy as np
from gymnasium.spaces import Box, Space
from gymnasium.wrappers import RescaleAction

from blocAndTools.errors import EnvironmentFault, UserInputError
from blocAndTools.seeding import stream_seed


def render_offscreen_without_display() -> None:
    """Without a display, render offscreen unless the user chose a backend: MuJoCo through EGL, pygame
    (Pendulum, Box2D) through SDL's dummy video driver.

    On the headless machines this project is developed on, only EGL rendered MuJoCo frames
    (osmesa and glfw failed), and SDL's default driver prints "XDG_RUNTIME_DIR is invalid or not
    set". Both must be set before the environment is made.
    """
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")


def import_environment_module(env_id: str) -> None:
    """Import the module of `env_id: my_envs.reach:ReachTarget-v0` (gymnasium's `module:Id` form) before gymnasium
    does, so that an error in it, or a module not found, is one UserInputError line however the command started.

    `python -m SoftActorCritic` has the working folder on sys.path, the `sac` console script does not: when the
    module's top-level package is not importable, it is loaded from the working folder into sys.modules (an
    installed package is never shadowed) and the rest of the dotted path is imported through it. Ray trials get
    the folder through their PYTHONPATH (ray_backend.worker_environment).
    """
    module, separator, _ = env_id.partition(":")
    if not separator:
        return
    top_level = module.split(".")[0]
    try:
        if top_level and top_level not in sys.modules and not importlib.util.find_spec(top_level):
            _load_from_working_folder(top_level)
        importlib.import_module(module)
    except Exception as exc:
        raise UserInputError(f"environment {env_id!r} cannot be imported: {_one_line(exc)}") from exc


def _load_from_working_folder(name: str) -> None:
    """Put the module or package `name` of the working folder in sys.modules (nothing when there is none)."""
    spec = importlib.machinery.PathFinder.find_spec(name, [os.getcwd()])
    if spec is None or spec.loader is None:
        return
    sys.modules[name] = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(sys.modules[name])
    except BaseException:
        del sys.modules[name]
        raise


def route_mujoco_warnings(env_id: str) -> None:
    """Send MuJoCo's warnings to the `mujoco` logger instead of MUJOCO_LOG.TXT in the user's folder.

    MuJoCo appends every warning to that file in the working directory; gymnasium's own models
    trigger one at each make (the deprecated `settotalmass`). Deprecations are logged at DEBUG,
    other warnings (e.g. unstable simulation) at WARNING, which Python prints on stderr.
    """
    try:
        entry_point = str(gymnasium.spec(env_id).entry_point)
    except gymnasium.error.Error:
        entry_point = ""
    if "mujoco" not in entry_point and "mujoco" not in sys.modules:
        return  # importing MuJoCo costs ~0.4 s: only for the environments that use it
    import mujoco

    def log(message: str) -> None:
        logging.getLogger("mujoco").log(logging.DEBUG if "deprecated" in message else logging.WARNING, message)

    mujoco.set_mju_user_warning(log)


def _one_line(text: str) -> str:
    """Collapse a message to one line, as the CLI prints user errors on one line."""
    return " ".join(str(text).split())


def _format_bounds(low: np.ndarray, high: np.ndarray) -> str:
    """'[-2, 2]' when all components share the same bounds, else the per-component lists."""
    if np.all(low == low.flat[0]) and np.all(high == high.flat[0]):
        return f"[{low.flat[0]:g}, {high.flat[0]:g}]"
    lows = ", ".join(f"{x:g}" for x in low.flat)
    highs = ", ".join(f"{x:g}" for x in high.flat)
    return f"[[{lows}], [{highs}]]"


class GymPlayground:
    """A seeded gymnasium environment with a 1-D Box observation and actions in [-1, 1]."""

    def __init__(
        self,
        env_id: str,
        env_kwargs: dict | None = None,
        seed: int | None = None,
        max_trj_steps: int | None = None,
        render_mode: str | None = None,
    ) -> None:
        """Make, check, wrap and seed the environment `env_id`; bad input raises `UserInputError`."""
        self.env_id = env_id
        self.seed = seed
        self.total_steps = 0  # steps taken by this playground over all episodes
        self._seed_next_reset = True
        self._closed = False

        if max_trj_steps is not None and (
            isinstance(max_trj_steps, bool) or not isinstance(max_trj_steps, int) or max_trj_steps < 1
        ):
            raise UserInputError(f"max_trj_steps must be a positive integer or None, got {max_trj_steps!r}")

        render_offscreen_without_display()
        import_environment_module(env_id)
        route_mujoco_warnings(env_id)
        make_kwargs = dict(env_kwargs or {})
        if max_trj_steps is not None:
            make_kwargs["max_episode_steps"] = max_trj_steps
        if render_mode is not None:
            make_kwargs["render_mode"] = render_mode

        try:
            raw_env = gymnasium.make(env_id, **make_kwargs)
        except ImportError as exc:  # `package.module:EnvId-v0`: gymnasium imports the module first
            raise UserInputError(f"environment {env_id!r} cannot be imported: {_one_line(exc)}") from exc
        except gymnasium.error.DependencyNotInstalled as exc:
            raise UserInputError(
                f"environment {env_id!r} needs an optional dependency that is not installed: {_one_line(exc)}"
            ) from exc
        except gymnasium.error.Error as exc:  # NameNotFound, NamespaceNotFound, VersionNotFound, ...
            raise UserInputError(f"unknown environment id {env_id!r}: {_one_line(exc)}") from exc
        except TypeError as exc:
            raise UserInputError(
                f"environment {env_id!r} rejected env_kwargs {env_kwargs!r}: {_one_line(exc)}"
            ) from exc

        try:
            self._check_spaces(raw_env.observation_space, raw_env.action_space)
        except UserInputError:
            raw_env.close()
            raise

        self.original_action_space: Box = raw_env.action_space
        self.max_episode_steps: int | None = (
            raw_env.spec.max_episode_steps if raw_env.spec is not None else None
        )
        # The policy acts in [-1, 1] (tanh); the wrapper maps that onto the env's own bounds.
        # Bounds in the space's own dtype: Python floats would make gymnasium warn about float64.
        shape, dtype = raw_env.action_space.shape, raw_env.action_space.dtype
        self.env: gymnasium.Env = RescaleAction(
            raw_env, min_action=np.full(shape, -1.0, dtype=dtype), max_action=np.full(shape, 1.0, dtype=dtype)
        )
        self.observation_space: Box = self.env.observation_space
        self.action_space: Box = self.env.action_space
        self.obs_dim: int = int(self.observation_space.shape[0])
        self.act_dim: int = int(self.action_space.shape[0])
        self.action_space.seed(None if seed is None else stream_seed(seed, "action_space"))

    def _check_spaces(self, observation_space: Space, action_space: Space) -> None:
        """Raise `UserInputError` unless actions are a bounded 1-D Box and observations a 1-D Box."""
        if not isinstance(action_space, Box):
            raise UserInputError(
                f"environment {self.env_id!r} has {action_space} actions; SAC needs a Box action space"
            )
        if len(action_space.shape) != 1:
            raise UserInputError(
                f"environment {self.env_id!r} has {action_space} actions of shape {action_space.shape}; "
                "SAC needs a 1-D Box action space"
            )
        if not (np.all(np.isfinite(action_space.low)) and np.all(np.isfinite(action_space.high))):
            raise UserInputError(
                f"environment {self.env_id!r} has unbounded actions {action_space}; "
                "SAC needs finite action bounds to rescale to [-1, 1]"
            )
        if not isinstance(observation_space, Box) or len(observation_space.shape) != 1:
            raise UserInputError(
                f"environment {self.env_id!r} has {observation_space} observations; "
                "SAC needs a 1-D Box observation space"
            )

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Start an episode and return its first observation (float32).

        Without `seed`, the first call seeds the environment from the run's seed (its "env"
        stream) and later calls continue its RNG, so a whole run is reproducible from one seed.
        """
        if seed is None and self._seed_next_reset and self.seed is not None:
            seed = stream_seed(self.seed, "env")
        try:
            obs, _info = self.env.reset(seed=seed)
        except Exception as exc:
            raise EnvironmentFault(
                f"environment {self.env_id!r} raised in reset() after {self.total_steps} steps: "
                f"{type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        self._seed_next_reset = False
        return np.asarray(obs, dtype=np.float32)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool]:
        """Apply `action` (in [-1, 1]) and return (next_obs, reward, terminated, truncated).

        Only `terminated` marks a true terminal state; `truncated` is a time limit
        (the learner must still bootstrap from `next_obs`).
        """
        action = np.asarray(action, dtype=np.float32)
        if action.shape != (self.act_dim,):
            raise ValueError(f"action must have shape ({self.act_dim},), got {action.shape}")
        try:
            obs, reward, terminated, truncated, _info = self.env.step(action)
        except Exception as exc:
            raise EnvironmentFault(
                f"environment {self.env_id!r} raised in step() after {self.total_steps} steps: "
                f"{type(exc).__name__}: {_one_line(exc)}"
            ) from exc
        self.total_steps += 1
        obs, reward = np.asarray(obs, dtype=np.float32), float(reward)
        if not (math.isfinite(reward) and np.isfinite(obs).all()):
            raise EnvironmentFault(f"environment {self.env_id!r} returned a non-finite reward ({reward}) or "
                                   f"observation at step {self.total_steps}")
        return obs, reward, bool(terminated), bool(truncated)

    def run_episode(self, policy: Callable[[np.ndarray], np.ndarray], seed: int | None = None,
                    after_step: Callable[[], None] = lambda: None) -> float:
        """Play one episode with `policy` (obs -> action in [-1, 1]) from reset(seed); return its undiscounted return.

        `after_step` runs after reset and after each step (e.g. to grab a rendered frame).
        """
        obs, done, episode_return = self.reset(seed), False, 0.0
        after_step()
        while not done:
            obs, reward, terminated, truncated = self.step(policy(obs))
            episode_return += reward
            done = terminated or truncated
            after_step()
        return episode_return

    def sample_random_action(self) -> np.ndarray:
        """A uniform random action in [-1, 1] (float32), from the action space's own stream of `seed`."""
        return np.asarray(self.action_space.sample(), dtype=np.float32)

    def get_rng_state(self) -> dict:
        """The environment's and the action space's generator states (JSON-friendly), for checkpoints."""
        return {"env": self.env.unwrapped.np_random.bit_generator.state,
                "action_space": self.action_space.np_random.bit_generator.state}

    def set_rng_state(self, state: dict) -> None:
        """Continue from `get_rng_state()`: the next reset() draws from the restored generator, unseeded."""
        self.env.unwrapped.np_random.bit_generator.state = state["env"]
        self.action_space.np_random.bit_generator.state = state["action_space"]
        self._seed_next_reset = False

    def describe(self) -> str:
        """One line on the spaces, e.g.
        'Pendulum-v1: obs Box(3,) act Box(1,) in [-2, 2] rescaled to [-1, 1], time limit 200'."""
        bounds = _format_bounds(self.original_action_space.low, self.original_action_space.high)
        limit = f"time limit {self.max_episode_steps}" if self.max_episode_steps is not None else "no time limit"
        return (
            f"{self.env_id}: obs Box({self.obs_dim},) act Box({self.act_dim},) in {bounds} "
            f"rescaled to [-1, 1], {limit}"
        )

    def close(self) -> None:
        """Release the environment (safe to call more than once)."""
        if not self._closed:
            self._closed = True
            self.env.close()

    def __enter__(self) -> GymPlayground:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
