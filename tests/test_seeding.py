"""Every random stream of a run comes from its own SeedSequence child (blocAndTools.seeding)."""
import unittest

import numpy as np

from blocAndTools.gym_playground import GymPlayground
from blocAndTools.seeding import STREAMS, episode_seeds, stream_seed


class StreamSeedTest(unittest.TestCase):
    def test_every_stream_has_its_own_seed_and_the_same_one_each_time(self):
        for seed in (0, 1, 12345):
            seeds = [stream_seed(seed, stream) for stream in STREAMS]
            self.assertEqual(len(set(seeds)), len(STREAMS))
            self.assertEqual(seeds, [stream_seed(seed, stream) for stream in STREAMS])
        self.assertNotEqual(stream_seed(0, "env"), stream_seed(1, "env"))

    def test_evaluation_and_play_episodes_start_from_different_fixed_states(self):
        evaluation, play = episode_seeds(3, 10), episode_seeds(3, 10, "play")
        self.assertEqual(evaluation, episode_seeds(3, 10))
        self.assertEqual(len(set(evaluation)), 10)
        self.assertFalse(set(evaluation) & set(play))
        self.assertEqual(episode_seeds(3, 4), evaluation[:4])  # more episodes extend the same list
        self.assertEqual(episode_seeds(3, 0), [])

    def test_warm_up_actions_are_not_the_initial_state(self):
        """With one plain seed for both, Pendulum's first random action was the initial angle / pi exactly."""
        with GymPlayground("Pendulum-v1", seed=0) as playground:
            obs = playground.reset()
            theta = np.arctan2(obs[1], obs[0])
            actions = np.array([playground.sample_random_action()[0] for _ in range(2)])
            self.assertGreater(np.min(np.abs(actions - np.array([theta / np.pi, obs[2]]))), 1e-3)

    def test_same_seed_same_streams_different_seed_different_streams(self):
        def first_draws(seed):
            with GymPlayground("Pendulum-v1", seed=seed) as playground:
                return playground.reset(), playground.sample_random_action()
        (obs_a, act_a), (obs_b, act_b), (obs_c, _) = first_draws(4), first_draws(4), first_draws(5)
        np.testing.assert_array_equal(obs_a, obs_b)
        np.testing.assert_array_equal(act_a, act_b)
        self.assertFalse(np.array_equal(obs_a, obs_c))


if __name__ == "__main__":
    unittest.main()
