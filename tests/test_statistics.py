"""blocAndTools.statistics against hand computations, scipy's Mann-Whitney U and a known distribution."""

import unittest

import numpy as np
from scipy import stats

from blocAndTools.statistics import (
    Interval,
    format_interval,
    iqm,
    iqm_interval,
    normalise,
    performance_profile,
    probability_of_improvement,
)


class TestIQM(unittest.TestCase):
    def test_eight_values_keep_the_middle_four(self):
        # sorted: -50, 0 | 2, 3, 4, 5 | 10, 100 -> (2 + 3 + 4 + 5) / 4 (a 0.2 trim would keep 0..10: 4.0)
        self.assertAlmostEqual(iqm([4, 100, 0, 3, -50, 5, 10, 2]), 3.5)

    def test_ten_values_cut_int_of_a_quarter_from_each_end(self):
        # int(0.25 * 10) = 2 cut from each end: 2, 4, 8, 16, 32, 64 remain (cutting 3 would give 15.0)
        self.assertAlmostEqual(iqm([1000, 0, 64, 1, 2, 4, 128, 8, 16, 32]), 126 / 6)
        # int(0.25 * 5) = 1: the middle three of 5
        self.assertAlmostEqual(iqm([9, 1, 2, 3, 100]), 14 / 3)

    def test_a_runs_by_tasks_matrix_pools_its_scores(self):
        scores = [[4, 100], [0, 3], [-50, 5], [10, 2]]
        self.assertAlmostEqual(iqm(scores), 3.5)


class TestNormaliseAndAggregate(unittest.TestCase):
    def test_aggregate_iqm_of_normalised_tasks(self):
        scores = np.array([[1.0, 140.0], [5.0, 220.0], [9.0, 300.0]])  # 3 runs x 2 tasks on different scales
        normalised = normalise(scores, low=[0, 100], high=[10, 300])
        np.testing.assert_allclose(normalised, [[0.1, 0.2], [0.5, 0.6], [0.9, 1.0]])
        # pooled, sorted: 0.1 | 0.2, 0.5, 0.6, 0.9 | 1.0 (int(0.25 * 6) = 1 cut from each end)
        aggregate = iqm_interval(normalised, reps=200)
        self.assertAlmostEqual(aggregate.point, 2.2 / 4)
        self.assertEqual(aggregate.runs, 3)
        self.assertLessEqual(aggregate.low, aggregate.point)
        self.assertGreaterEqual(aggregate.high, aggregate.point)

    def test_equal_reference_scores_are_refused(self):
        with self.assertRaises(ValueError):
            normalise([[1.0, 2.0]], low=[0, 5], high=[1, 5])


class TestIQMInterval(unittest.TestCase):
    def test_one_run_gets_no_interval(self):
        for scores in ([167.23], [[0.4, 0.7, 0.1]]):
            interval = iqm_interval(scores)
            self.assertEqual((interval.low, interval.high, interval.runs), (None, None, 1))
        self.assertEqual(format_interval(iqm_interval([167.23])), "167.2 [–]")

    def test_seeded(self):
        scores = np.random.default_rng(1).normal(size=(8, 3))
        self.assertEqual(iqm_interval(scores, seed=5), iqm_interval(scores, seed=5))
        self.assertNotEqual(iqm_interval(scores, seed=5), iqm_interval(scores, seed=6))

    def test_runs_are_resampled_within_each_task(self):
        # every task constant over its runs: a stratified resample always holds four 0s and four 10s (IQM 5),
        # a resample of the pooled runs would not
        interval = iqm_interval(np.tile([[0.0, 10.0]], (4, 1)))
        self.assertEqual((interval.point, interval.low, interval.high, interval.runs), (5.0, 5.0, 5.0, 4))

    def test_coverage_on_a_normal(self):
        # 200 seeded samples of 10 runs from N(3, 2), whose IQM is its mean 3. 1000 resamples (not 2000) keep this
        # under a second: the 2.5% and 97.5% percentiles still rest on 25 resamples each. Coverage over 1000
        # samples is 94% (92% for these 200); we require 90%, and intervals about as wide as the spread of the IQM.
        rng, n, mean = np.random.default_rng(2021), 10, 3.0
        samples = rng.normal(mean, 2.0, size=(200, n))
        intervals = [iqm_interval(sample, seed=i, reps=1000) for i, sample in enumerate(samples)]
        covered = np.mean([interval.low <= mean <= interval.high for interval in intervals])
        self.assertGreaterEqual(covered, 0.90)
        width = np.mean([interval.high - interval.low for interval in intervals])
        spread = np.subtract(*np.percentile([iqm(sample) for sample in samples], [97.5, 2.5]))
        self.assertLess(width, 1.5 * spread)  # 1.14 here: catches a runaway width


class TestPerformanceProfile(unittest.TestCase):
    def test_against_a_hand_count(self):
        scores = [[1, 5], [3, 7], [5, 9]]  # pooled 1, 5, 3, 7, 5, 9; a score equal to tau is not above it
        profile = performance_profile(scores, [0, 3, 5, 10], reps=500)
        np.testing.assert_allclose(profile.point, [1, 4 / 6, 2 / 6, 0])
        self.assertEqual(profile.runs, 3)
        self.assertTrue(np.all(profile.low <= profile.point) and np.all(profile.point <= profile.high))
        self.assertEqual((profile.low[0], profile.high[0], profile.low[-1], profile.high[-1]), (1, 1, 0, 0))
        self.assertGreater(profile.high[1] - profile.low[1], 0)

    def test_one_run_gets_no_band(self):
        profile = performance_profile([[1, 5]], [0, 3])
        np.testing.assert_allclose(profile.point, [1, 0.5])
        self.assertEqual((profile.low, profile.high, profile.runs), (None, None, 1))


class TestProbabilityOfImprovement(unittest.TestCase):
    def test_against_a_hand_count_with_ties_as_half(self):
        # a = 1: beats 0 -> 1; a = 2: beats 0, ties 2 -> 1.5; a = 3: beats 0 and 2 -> 2; (1 + 1.5 + 2) / 9
        self.assertAlmostEqual(probability_of_improvement([1, 2, 3], [0, 2, 5], reps=200).point, 4.5 / 9)
        # a = 1: 1; a = 2: beats 0, ties two 2s -> 2; a = 3: 3; (1 + 2 + 3) / 9 (ties as 0 would give 5 / 9)
        self.assertAlmostEqual(probability_of_improvement([1, 2, 3], [0, 2, 2], reps=200).point, 6 / 9)

    def test_against_scipy_mann_whitney_averaged_over_tasks(self):
        rng = np.random.default_rng(3)
        a, b = rng.integers(0, 6, size=(7, 4)), rng.integers(0, 6, size=(5, 4))  # small integers: many ties
        u = [stats.mannwhitneyu(a[:, task], b[:, task]).statistic / (7 * 5) for task in range(4)]
        self.assertAlmostEqual(probability_of_improvement(a, b, reps=200).point, np.mean(u))

    def test_interval_seeded_and_one_run(self):
        rng = np.random.default_rng(4)
        a, b = rng.normal(1.0, 1.0, size=(10, 2)), rng.normal(0.0, 1.0, size=(6, 2))
        interval = probability_of_improvement(a, b, seed=7)
        self.assertEqual(interval, probability_of_improvement(a, b, seed=7))
        self.assertEqual(interval.runs, 6)
        self.assertTrue(0.5 < interval.low <= interval.point <= interval.high <= 1)
        one_run = probability_of_improvement(a, b[:1])
        self.assertEqual((one_run.low, one_run.high, one_run.runs), (None, None, 1))


class TestFormat(unittest.TestCase):
    def test_point_and_interval(self):
        self.assertEqual(format_interval(Interval(167.23, 130.98, 197.41, 5)), "167.2 [131.0, 197.4]")
        self.assertEqual(format_interval(Interval(0.634, 0.471, 0.773, 10), digits=2), "0.63 [0.47, 0.77]")
        self.assertEqual(format_interval(Interval(0.634, None, None, 1), digits=2), "0.63 [–]")


if __name__ == "__main__":
    unittest.main()
