"""The noise of acting (blocAndTools.action_noise): white as SAC draws it, colored with the asked spectrum."""
import unittest

import numpy as np

from blocAndTools.action_noise import ActionNoise


def episodes(beta: float, count: int, horizon: int = 512, act_dim: int = 2, seed: int = 0) -> np.ndarray:
    """(count, horizon, act_dim): the eps of `count` full episodes, reset before each."""
    noise = ActionNoise(beta, act_dim, horizon, np.random.default_rng(seed))
    runs = []
    for _ in range(count):
        noise.reset()
        runs.append([noise.sample() for _ in range(horizon)])
    return np.asarray(runs)


def spectral_slope(eps: np.ndarray) -> float:
    """The slope of log power against log frequency of the mean periodogram over episodes and dimensions: -beta for
    1/f^beta noise (frequencies 2/T to 1/4, away from the sequence's ends)."""
    horizon = eps.shape[1]
    power = (np.abs(np.fft.rfft(eps, axis=1)) ** 2).mean(axis=(0, 2))
    frequency = np.fft.rfftfreq(horizon)
    band = (frequency >= 2 / horizon) & (frequency <= 0.25)
    return float(np.polyfit(np.log(frequency[band]), np.log(power[band]), 1)[0])


class ActionNoiseTest(unittest.TestCase):
    def test_white_noise_is_the_generators_standard_normal_draws(self):
        # beta 0 gives the very numbers SAC's eps ~ N(0, 1) drew before colored noise existed: runs are unchanged
        noise = ActionNoise(0.0, 3, 200, np.random.default_rng(4))
        expected = np.random.default_rng(4)
        for _ in range(5):
            np.testing.assert_array_equal(noise.sample(), expected.standard_normal(3, dtype=np.float32))
        noise.reset()
        np.testing.assert_array_equal(noise.sample(), expected.standard_normal(3, dtype=np.float32))

    def test_the_power_spectrum_falls_as_one_over_f_to_the_beta(self):
        for beta in (0.0, 1.0, 2.0):
            slope = spectral_slope(episodes(beta, count=64))
            self.assertAlmostEqual(slope, -beta, delta=0.15, msg=f"beta {beta}")

    def test_each_eps_is_standard_normal_and_the_dimensions_independent(self):
        # colorednoise's own scaling leaves 1.07 to 1.34 (library_variance); ActionNoise's eps have variance 1 at
        # every step, for even and odd horizons (the Nyquist term), short and long. 4,000 sequences of each: 20
        # episodes of 200 action dimensions (the standard error of a step's variance is 0.022)
        for beta in (1.0, 2.0):
            for horizon in (2, 13, 64):
                eps = episodes(beta, count=20, horizon=horizon, act_dim=200)
                self.assertEqual(eps.dtype, np.float32)
                self.assertLess(np.abs(eps.mean(axis=(0, 2))).max(), 0.08, (beta, horizon))  # standard error 0.016
                self.assertAlmostEqual(float(eps.var(axis=(0, 2)).mean()), 1.0, delta=0.04, msg=f"{beta}, {horizon}")
                neighbours = float(np.mean(eps[..., 1:] * eps[..., :-1]))  # E[eps_i eps_i+1] at the same step: 0
                self.assertLess(abs(neighbours), 0.04, (beta, horizon))

    def test_colored_noise_holds_its_sign_longer_than_white(self):
        # lag-1 autocorrelation along the episode: 0 for white noise, high for pink, higher for red
        def lag1(eps: np.ndarray) -> float:
            return float(np.mean(eps[:, 1:] * eps[:, :-1]) / np.mean(eps * eps))

        white, pink, red = (lag1(episodes(beta, count=32)) for beta in (0.0, 1.0, 2.0))
        self.assertLess(abs(white), 0.05)
        self.assertGreater(pink, 0.3)
        self.assertGreater(red, pink + 0.2)

    def test_a_new_episode_and_an_episode_past_the_horizon_draw_a_new_sequence(self):
        rng = np.random.default_rng(1)
        noise = ActionNoise(1.0, 1, 8, rng)
        first = [noise.sample() for _ in range(8)]
        ninth = noise.sample()  # the episode outlasts the horizon: a new sequence goes on
        state = rng.bit_generator.state
        noise.sample()
        self.assertEqual(rng.bit_generator.state, state)  # within a sequence, nothing more is drawn
        noise.reset()
        again = noise.sample()
        self.assertNotEqual(rng.bit_generator.state, state)  # reset: the next sample draws the episode's sequence
        self.assertNotIn(float(ninth[0]), [float(x[0]) for x in first])
        self.assertNotIn(float(again[0]), [float(x[0]) for x in first])

    def test_no_time_limit_uses_sequences_of_1000_steps(self):
        self.assertEqual(ActionNoise(1.0, 2, None, np.random.default_rng(0)).horizon, 1000)


if __name__ == "__main__":
    unittest.main()
