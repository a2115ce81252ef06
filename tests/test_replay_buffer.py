"""Tests for blocAndTools.replay_buffer: ring order, add_batch, sampling, errors (its files: test_buffer_files)."""

import math
import unittest

import numpy as np

from blocAndTools.replay_buffer import Minibatch, ReplayBuffer

OBS_DIM, ACT_DIM = 3, 2


def transition(k: int) -> tuple:
    """A transition whose every value encodes k, so its position can be read back."""
    obs = np.full(OBS_DIM, k, dtype=np.float32)
    act = np.full(ACT_DIM, -k, dtype=np.float32)
    return obs, act, float(k) / 2, obs + 0.5, float(k % 2)


def batch_of(ks) -> tuple:
    """The transitions for the integers ks stacked into add_batch arrays."""
    rows = [transition(k) for k in ks]
    return tuple(np.array([row[f] for row in rows], dtype=np.float32) for f in range(5))


def filled(capacity: int, count: int, seed: int = 0) -> ReplayBuffer:
    buffer = ReplayBuffer(capacity, OBS_DIM, ACT_DIM, seed=seed)
    for k in range(count):
        buffer.add(*transition(k))
    return buffer


def held_ids(buffer: ReplayBuffer) -> list:
    """The k of each held slot, slot order."""
    return [int(v) for v in buffer.obs[:len(buffer), 0]]


def assert_same_contents(test: unittest.TestCase, a: ReplayBuffer, b: ReplayBuffer) -> None:
    test.assertEqual(len(a), len(b))
    test.assertEqual(a.next_index, b.next_index)
    test.assertEqual((a.capacity, a.obs_dim, a.act_dim), (b.capacity, b.obs_dim, b.act_dim))
    n = len(a)
    for name in Minibatch._fields:
        np.testing.assert_array_equal(getattr(a, name)[:n], getattr(b, name)[:n], err_msg=name)


class RingOrderTest(unittest.TestCase):
    def test_len_counts_transitions_until_capacity(self):
        buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
        self.assertEqual(len(buffer), 0)
        for k in range(8):
            buffer.add(*transition(k))
            self.assertEqual(len(buffer), min(k + 1, 5))

    def test_arrays_are_float32_with_capacity_rows(self):
        buffer = ReplayBuffer(5, OBS_DIM, ACT_DIM)
        shapes = {"obs": (5, OBS_DIM), "act": (5, ACT_DIM), "rew": (5,),
                  "next_obs": (5, OBS_DIM), "terminated": (5,)}
        for name, shape in shapes.items():
            self.assertEqual(getattr(buffer, name).shape, shape, name)
            self.assertEqual(getattr(buffer, name).dtype, np.float32, name)

    def test_stores_every_field_of_a_transition(self):
        buffer = filled(5, 4)
        obs, act, rew, next_obs, terminated = transition(3)
        np.testing.assert_array_equal(buffer.obs[3], obs)
        np.testing.assert_array_equal(buffer.act[3], act)
        self.assertEqual(buffer.rew[3], np.float32(rew))
        np.testing.assert_array_equal(buffer.next_obs[3], next_obs)
        self.assertEqual(buffer.terminated[3], 1.0)

    def test_wraps_around_at_capacity(self):
        buffer = filled(4, 4)
        self.assertEqual(buffer.next_index, 0)
        buffer.add(*transition(4))
        self.assertEqual(len(buffer), 4)
        self.assertEqual(buffer.next_index, 1)
        self.assertEqual(held_ids(buffer), [4, 1, 2, 3])

    def test_overwrites_oldest_first(self):
        buffer = filled(4, 4)
        expected = [0, 1, 2, 3]
        for k in range(4, 11):
            buffer.add(*transition(k))
            expected[(k) % 4] = k
            self.assertEqual(held_ids(buffer), expected)
            # The slot written next always holds the oldest transition.
            self.assertEqual(held_ids(buffer)[buffer.next_index], k - 3)

    def test_holds_exactly_the_last_capacity_transitions(self):
        buffer = filled(7, 30)
        self.assertEqual(sorted(held_ids(buffer)), list(range(23, 30)))

    def test_total_added_counts_every_transition_and_names_its_slot(self):
        buffer = filled(4, 3)
        self.assertEqual(buffer.total_added, 3)
        buffer.add_batch(*batch_of(range(3, 13)))  # more than the capacity in one call
        for k in range(13, 16):
            buffer.add(*transition(k))
        self.assertEqual(buffer.total_added, 16)
        for k in range(12, 16):  # transition k (from 0) is in slot k % capacity
            self.assertEqual(int(buffer.obs[k % 4, 0]), k)

    def test_accepts_float64_lists_and_bools(self):
        buffer = ReplayBuffer(3, OBS_DIM, ACT_DIM)
        buffer.add([1.0, 2.0, 3.0], np.array([0.5, 0.25]), np.float64(1.5),
                   np.arange(3, dtype=np.float64), True)
        np.testing.assert_array_equal(buffer.obs[0], [1, 2, 3])
        self.assertEqual(buffer.terminated[0], 1.0)
        self.assertEqual(buffer.rew[0], 1.5)


class AddBatchTest(unittest.TestCase):
    def assert_batch_equals_repeated_add(self, capacity, start, count):
        one_by_one = filled(capacity, start)
        for k in range(start, start + count):
            one_by_one.add(*transition(k))
        batched = filled(capacity, start)
        batched.add_batch(*batch_of(range(start, start + count)))
        assert_same_contents(self, batched, one_by_one)

    def test_add_batch_equals_repeated_add(self):
        self.assert_batch_equals_repeated_add(capacity=10, start=0, count=6)

    def test_add_batch_equals_repeated_add_across_wrap_around(self):
        self.assert_batch_equals_repeated_add(capacity=10, start=7, count=6)

    def test_add_batch_larger_than_capacity_keeps_the_last_ones(self):
        self.assert_batch_equals_repeated_add(capacity=10, start=3, count=25)
        self.assert_batch_equals_repeated_add(capacity=10, start=0, count=10)

    def test_add_batch_of_zero_changes_nothing(self):
        buffer = filled(5, 3)
        buffer.add_batch(np.zeros((0, OBS_DIM)), np.zeros((0, ACT_DIM)), np.zeros(0),
                         np.zeros((0, OBS_DIM)), np.zeros(0))
        assert_same_contents(self, buffer, filled(5, 3))


def chi_square_statistic(counts: np.ndarray) -> float:
    """Pearson's statistic of counts against equal expected counts."""
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


def chi_square_critical(dof: int) -> float:
    """The 1% critical value of the chi-square distribution with dof degrees of freedom."""
    try:
        from scipy.stats import chi2
        return float(chi2.ppf(0.99, dof))
    except ImportError:
        # Wilson-Hilferty: (X/k)^(1/3) is ~ normal(1 - 2/(9k), 2/(9k)); z(0.99) = 2.3263.
        h = 2 / (9 * dof)
        return dof * (1 - h + 2.326348 * math.sqrt(h)) ** 3


class SampleTest(unittest.TestCase):
    def test_sample_returns_minibatch_of_requested_shapes(self):
        batch = filled(50, 20).sample(8)
        self.assertIsInstance(batch, Minibatch)
        self.assertEqual(batch.obs.shape, (8, OBS_DIM))
        self.assertEqual(batch.act.shape, (8, ACT_DIM))
        self.assertEqual(batch.rew.shape, (8,))
        self.assertEqual(batch.next_obs.shape, (8, OBS_DIM))
        self.assertEqual(batch.terminated.shape, (8,))
        for name in Minibatch._fields:
            self.assertEqual(getattr(batch, name).dtype, np.float32, name)

    def test_sampled_transitions_are_consistent_rows(self):
        batch = filled(50, 20).sample(20)
        ks = batch.obs[:, 0]
        np.testing.assert_array_equal(batch.act[:, 0], -ks)
        np.testing.assert_array_equal(batch.rew, ks / 2)
        np.testing.assert_array_equal(batch.next_obs[:, 0], ks + 0.5)
        np.testing.assert_array_equal(batch.terminated, ks % 2)

    def test_samples_only_held_transitions(self):
        buffer = filled(10, 25)  # holds 15..24
        ks = np.concatenate([buffer.sample(10).obs[:, 0] for _ in range(100)])
        self.assertEqual(set(ks.astype(int)), set(range(15, 25)))
        partial = filled(100, 5)  # the 95 empty slots must never be drawn
        ks = np.concatenate([partial.sample(5).obs[:, 0] for _ in range(100)])
        self.assertEqual(set(ks.astype(int)), set(range(5)))

    def test_sampling_is_uniform(self):
        """Chi-square goodness of fit over 200,000 draws from 50 transitions, at 1%."""
        buffer = filled(64, 50, seed=12345)
        counts = np.zeros(50)
        for _ in range(4000):
            ks = buffer.sample(50).obs[:, 0].astype(int)
            counts += np.bincount(ks, minlength=50)
        self.assertLess(chi_square_statistic(counts), chi_square_critical(dof=49))

    def test_same_seed_gives_same_samples(self):
        a, b = filled(50, 30, seed=7), filled(50, 30, seed=7)
        for _ in range(3):
            np.testing.assert_array_equal(a.sample(16).obs, b.sample(16).obs)

    def test_consecutive_samples_are_distinct_objects_and_memory(self):
        buffer = filled(100, 100)
        first, second = buffer.sample(32), buffer.sample(32)
        self.assertIsNot(first, second)
        for name in Minibatch._fields:
            x, y = getattr(first, name), getattr(second, name)
            self.assertIsNot(x, y, name)
            self.assertFalse(np.shares_memory(x, y), name)
            self.assertFalse(np.shares_memory(x, getattr(buffer, name)), name)

    def test_draws_are_independent_within_and_across_minibatches(self):
        """Chi-square at 1% over the 100 ordered pairs of 10 held transitions, for disjoint pairs of draws: neighbours
        in a minibatch (positions 0-1, 2-3, ...), and the same position in minibatches 2t and 2t + 1. Independent
        uniform draws make each pair equally likely; a sampler that repeats or cycles through minibatches, or draws
        runs of neighbouring slots, does not."""
        buffer = filled(10, 10, seed=4)
        ks = np.array([buffer.sample(10).obs[:, 0] for _ in range(4000)]).astype(int)  # (minibatch, position)
        pairs = {"neighbours in a minibatch": (ks[:, 0::2], ks[:, 1::2]),
                 "consecutive minibatches": (ks[0::2], ks[1::2])}
        for name, (first, second) in pairs.items():
            counts = np.bincount((10 * first + second).ravel(), minlength=100)
            self.assertEqual(counts.sum(), 20_000, name)
            self.assertLess(chi_square_statistic(counts), chi_square_critical(dof=99), name)

    def test_mutating_a_sample_changes_neither_buffer_nor_next_sample(self):
        buffer, twin = filled(100, 100, seed=3), filled(100, 100, seed=3)
        batch = buffer.sample(32)
        twin.sample(32)
        for name in Minibatch._fields:
            getattr(batch, name)[...] = np.nan
        assert_same_contents(self, buffer, twin)
        after, twin_after = buffer.sample(32), twin.sample(32)
        for name in Minibatch._fields:
            np.testing.assert_array_equal(getattr(after, name), getattr(twin_after, name))
            self.assertTrue(np.isfinite(getattr(after, name)).all())

    def test_can_sample_everything_held(self):
        self.assertEqual(len(filled(10, 4).sample(4).rew), 4)


class SeveralMinibatchesTest(unittest.TestCase):
    def test_num_batches_gives_k_minibatches_of_rows(self):
        batches = filled(50, 50).sample(8, num_batches=4)
        self.assertEqual(batches.rows.shape, (4, 8, 2 * OBS_DIM + ACT_DIM + 2))
        self.assertEqual(batches.num_batches, 4)
        self.assertEqual(batches.obs.shape, (4, 8, OBS_DIM))
        self.assertEqual(batches.rew.shape, (4, 8))
        self.assertEqual(batches[3].obs.shape, (8, OBS_DIM))
        self.assertIsNone(batches[3].num_batches)

    def test_k_minibatches_hold_consistent_rows_of_the_buffer(self):
        batches = filled(50, 50).sample(8, num_batches=4)
        for k in range(4):
            ids = batches[k].obs[:, 0].astype(int)
            obs, act, rew, next_obs, terminated = batch_of(ids)
            for name, expected in zip(Minibatch._fields, (obs, act, rew, next_obs, terminated), strict=True):
                np.testing.assert_array_equal(getattr(batches[k], name), expected, err_msg=name)

    def test_k_minibatches_come_from_one_draw_of_k_times_batch_indices(self):
        a, b = filled(50, 50, seed=3), filled(50, 50, seed=3)
        np.testing.assert_array_equal(a.sample(8, num_batches=4).rows.reshape(32, -1), b.sample(32).rows)

    def test_rejects_non_positive_num_batches(self):
        for bad in (0, -1, 2.0, True):
            with self.assertRaises(ValueError):
                filled(10, 10).sample(2, num_batches=bad)


class MinibatchTest(unittest.TestCase):
    def test_columns_are_views_of_the_rows(self):
        batch = filled(10, 10).sample(4)
        for column in batch:
            self.assertIs(column.base, batch.rows)

    def test_built_from_columns_it_packs_them_in_the_buffer_layout(self):
        obs, act, rew, next_obs, terminated = batch_of([3, 4])
        batch = Minibatch(obs, act, rew, next_obs, terminated)
        self.assertEqual(batch.rows.shape, (2, 2 * OBS_DIM + ACT_DIM + 2))
        for got, expected in zip(batch, (obs, act, rew, next_obs, terminated), strict=True):
            np.testing.assert_array_equal(got, expected)


class BadInputTest(unittest.TestCase):
    def setUp(self):
        self.buffer = filled(10, 5)

    def assert_rejected(self, words, call, *args):
        with self.assertRaises(ValueError) as caught:
            call(*args)
        for word in words:
            self.assertIn(word, str(caught.exception))

    def test_rejects_non_positive_capacity_and_dims(self):
        for args in [(0, 3, 2), (-1, 3, 2), (10, 0, 2), (10, 3, -2), (2.5, 3, 2), (True, 3, 2)]:
            with self.assertRaises(ValueError, msg=str(args)):
                ReplayBuffer(*args)
        self.assert_rejected(["capacity"], ReplayBuffer, 0, 3, 2)
        self.assert_rejected(["obs_dim"], ReplayBuffer, 5, 0, 2)
        self.assert_rejected(["act_dim"], ReplayBuffer, 5, 3, 0)

    def test_rejects_batch_larger_than_held(self):
        self.assert_rejected(["6", "5"], self.buffer.sample, 6)
        self.assert_rejected(["held"], ReplayBuffer(10, 3, 2).sample, 1)

    def test_rejects_non_positive_batch_size(self):
        self.assert_rejected(["batch_size"], self.buffer.sample, 0)
        self.assert_rejected(["batch_size"], self.buffer.sample, -3)

    def test_rejects_wrong_shapes_in_add(self):
        obs, act, rew, next_obs, term = transition(1)
        bad_calls = [
            (np.zeros(OBS_DIM + 1), act, rew, next_obs, term),
            (obs, np.zeros(ACT_DIM + 1), rew, next_obs, term),
            (obs, act, rew, np.zeros((1, OBS_DIM)), term),
            (1.0, act, rew, next_obs, term),           # a scalar would broadcast silently
            (obs, np.zeros(1), rew, next_obs, term),   # so would a length-1 action
            (obs, act, np.zeros(2), next_obs, term),
            (obs, act, rew, next_obs, [0.0, 1.0]),
        ]
        for args in bad_calls:
            with self.assertRaises(ValueError):
                self.buffer.add(*args)
        self.assert_rejected(["shape"], self.buffer.add, np.zeros(4), act, rew, next_obs, term)
        self.assertEqual(held_ids(self.buffer), [0, 1, 2, 3, 4])

    def test_rejects_wrong_shapes_in_add_batch(self):
        obs, act, rew, next_obs, term = batch_of(range(4))
        bad_calls = [
            (obs[:3], act, rew, next_obs, term),
            (obs, act[:, :1], rew, next_obs, term),
            (obs, act, rew[:, None], next_obs, term),
            (obs, act, rew, next_obs, term[:2]),
        ]
        for args in bad_calls:
            self.assert_rejected(["shape"], self.buffer.add_batch, *args)
        self.assertEqual(len(self.buffer), 5)

    def test_rejects_nan_and_inf_and_leaves_buffer_unchanged(self):
        full = filled(5, 5)
        before = filled(5, 5)
        for field, name in enumerate(Minibatch._fields):
            for bad_value in (np.nan, np.inf, -np.inf):
                args = list(transition(9))
                if isinstance(args[field], np.ndarray):
                    args[field] = args[field].copy()
                    args[field][-1] = bad_value
                else:
                    args[field] = bad_value
                self.assert_rejected([name, "NaN or inf"], full.add, *args)
                batch = [a.copy() for a in batch_of([9, 10])]
                batch[field][-1] = bad_value
                self.assert_rejected([name, "NaN or inf"], full.add_batch, *batch)
        assert_same_contents(self, full, before)

    def test_rejects_float64_value_that_overflows_float32(self):
        obs, act, rew, next_obs, term = transition(1)
        with np.errstate(over="ignore"):
            self.assert_rejected(["obs"], self.buffer.add,
                                 np.array([1e39, 0.0, 0.0]), act, rew, next_obs, term)

    def test_accepts_huge_finite_values(self):
        # |x| > 1e19 overflows the cheap x.dot(x) check; the exact fallback must accept it.
        buffer = ReplayBuffer(2, OBS_DIM, ACT_DIM)
        obs, act, rew, next_obs, term = transition(1)
        with np.errstate(over="ignore"):
            buffer.add(np.full(OBS_DIM, 3e38), act, rew, next_obs, term)
        self.assertEqual(len(buffer), 1)


if __name__ == "__main__":
    unittest.main()
