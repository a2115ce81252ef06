"""An environment defined outside gymnasium and registered when this module is imported.

A spec uses it as `env_id: tests.custom_env:ReachTarget-v0` (gymnasium's `module:EnvId`
convention: the module is imported first, then the id is made).
"""
import gymnasium
import numpy as np
from gymnasium.spaces import Box


class ReachTarget(gymnasium.Env):
    """Move a point on a line towards a target: obs (position, target), action a velocity in [-0.5, 0.5]."""

    def __init__(self) -> None:
        self.observation_space = Box(-10.0, 10.0, shape=(2,), dtype=np.float32)
        self.action_space = Box(-0.5, 0.5, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-2.0, 2.0, size=2).astype(np.float32)
        return self.state.copy(), {}

    def step(self, action):
        self.state[0] = np.clip(self.state[0] + float(action[0]), -10.0, 10.0)
        return self.state.copy(), -abs(float(self.state[0] - self.state[1])), False, False, {}


gymnasium.register("ReachTarget-v0", entry_point=ReachTarget, max_episode_steps=20)
