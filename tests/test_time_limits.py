"""terminated vs truncated end to end: what the agent stores, and the Q target train_step builds from it.

A time-limit end (truncated) must still bootstrap, y = eta r + gamma V'(s'); only a true terminal
state (terminated) gives y = eta r.
"""
import unittest

import gymnasium
import numpy as np

from blocAndTools import ExperimentSpec
from blocAndTools.replay_buffer import Minibatch
from SoftActorCritic.agent import SoftActorCriticAgent

EPISODE = 10  # steps: the time limit of one agent, the terminal step of the other


class TerminatingPendulum(gymnasium.Wrapper):
    """Pendulum that reaches a terminal state at its EPISODE-th step, before any time limit."""

    def __init__(self):
        super().__init__(gymnasium.make("Pendulum-v1"))
        self.steps = 0

    def reset(self, **kwargs):
        self.steps = 0
        return self.env.reset(**kwargs)

    def step(self, action):
        self.steps += 1
        obs, reward, _, truncated, info = self.env.step(action)
        return obs, reward, self.steps == EPISODE, truncated, info


gymnasium.register("TerminatingPendulum-v0", entry_point=TerminatingPendulum)


class EpisodeEndsTest(unittest.TestCase):
    def collect(self, **changes) -> SoftActorCriticAgent:
        """An agent after 4 episodes of random actions (no gradient step yet)."""
        spec = ExperimentSpec(**{"env_id": "Pendulum-v1", "timestep_per_epoch": 4 * EPISODE, "min_pool_size": 1000,
                                 "pool_capacity": 1000, "phi_nn_h_layer_topo": (8,), "psi_nn_h_layer_topo": (8,),
                                 "theta_nn_h_layer_topo": (8,), "reward_scaling": 2.0, "discount_factor": 0.9,
                                 "seed": 1, **changes})
        agent = SoftActorCriticAgent(spec)
        self.addCleanup(agent.close)
        agent.run_epoch()
        return agent

    def assert_q_target(self, agent: SoftActorCriticAgent, bootstraps: bool) -> None:
        """train_step's q1_loss on the episodes' last transitions, against y with and without gamma V'(s')."""
        brain, buffer = agent.brain, agent.buffer
        kernel, bias = brain.frozen_V_psi.get_layer("value").get_weights()
        brain.frozen_V_psi.get_layer("value").set_weights([kernel, bias + 200.0])  # V'(s') far from 0
        last = np.arange(EPISODE - 1, 4 * EPISODE, EPISODE)
        batch = Minibatch(*(np.ascontiguousarray(column[last]) for column in
                            (buffer.obs, buffer.act, buffer.rew, buffer.next_obs, buffer.terminated)))
        q = brain.Q_theta_1([batch.obs, batch.act]).numpy()[:, 0]
        frozen_v = brain.frozen_V_psi(batch.next_obs).numpy()[:, 0]
        spec = agent.spec
        y = {True: spec.reward_scaling * batch.rew + spec.discount_factor * frozen_v,
             False: spec.reward_scaling * batch.rew}
        loss = {bootstrap: 0.5 * np.mean((q - y[bootstrap]) ** 2) for bootstrap in (True, False)}
        got = float(brain.train_step(batch)["q1_loss"])
        self.assertAlmostEqual(got, loss[bootstraps], delta=1e-4 * loss[bootstraps])
        self.assertGreater(abs(loss[True] - loss[False]), 0.5 * loss[bootstraps])  # the two cases are far apart

    def test_a_time_limit_end_is_stored_as_not_terminated_and_bootstraps(self):
        agent = self.collect(max_trj_steps=EPISODE)
        buffer = agent.buffer
        self.assertEqual(len(buffer), 4 * EPISODE)
        ends = np.flatnonzero(np.any(buffer.next_obs[:len(buffer) - 1] != buffer.obs[1:len(buffer)], axis=1))
        np.testing.assert_array_equal(ends, [9, 19, 29])  # episodes did end (after a reset, obs jumps)...
        np.testing.assert_array_equal(buffer.terminated[:len(buffer)], 0.0)  # ...but none in a terminal state
        self.assert_q_target(agent, bootstraps=True)

    def test_a_terminal_state_is_stored_as_terminated_and_does_not_bootstrap(self):
        agent = self.collect(env_id="TerminatingPendulum-v0")
        terminated = agent.buffer.terminated[:len(agent.buffer)]
        np.testing.assert_array_equal(np.flatnonzero(terminated), [9, 19, 29, 39])
        self.assert_q_target(agent, bootstraps=False)


if __name__ == "__main__":
    unittest.main()
