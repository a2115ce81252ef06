"""Tests for blocAndTools.replay_buffer: ring order, add_batch, sampling, errors (its files: test_buffer_files)."""

import math
import unittest

import numpy as np

from blocAndTools.replay_buffer import Minibatch, ReplayBuffer, row_width

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


GAMMA = 0.5  # n-step tests: powers of 2 keep every sum exact in float32


def add_step(buffer: ReplayBuffer, obs: float, next_obs: float, rew: float, terminated: bool = False) -> None:
    """One transition whose obs (and next_obs) is the value obs (next_obs) in every coordinate, act = -obs."""
    buffer.add(np.full(OBS_DIM, obs), np.full(ACT_DIM, -obs), rew, np.full(OBS_DIM, next_obs), terminated)


def episodes_buffer(seed: int = 0) -> ReplayBuffer:
    """Nine transitions in three episodes, slot = position (capacity 16, not wrapped):

    slots 0-4: obs 0 -> 1 -> ... -> 5, rewards 1, 2, 4, 8, 16, then a time-limit end (not terminated);
    slots 5-6: reset to 20 -> 21 -> 22, rewards 32, 64, terminated at slot 6;
    slots 7-8: reset to 22 (bit-equal to slot 6's next_obs: only `terminated` separates them) -> 23 -> 24,
    rewards 128, 256; slot 8 is the newest transition.
    """
    buffer = ReplayBuffer(16, OBS_DIM, ACT_DIM, seed=seed)
    for t in range(5):
        add_step(buffer, t, t + 1, 2.0 ** t)
    add_step(buffer, 20, 21, 32)
    add_step(buffer, 21, 22, 64, terminated=True)
    add_step(buffer, 22, 23, 128)
    add_step(buffer, 23, 24, 256)
    return buffer


# n = 3, gamma = 0.5: start obs -> (rew = sum_{j<k} gamma^j r_{i+j}, next_obs of i+k-1, terminated of i+k-1, gamma^k)
EPISODES_N3 = {
    0: (1 + 0.5 * 2 + 0.25 * 4, 3, 0.0, 0.125),     # inside an episode longer than n: the full n-step sum
    1: (2 + 0.5 * 4 + 0.25 * 8, 4, 0.0, 0.125),
    2: (4 + 0.5 * 8 + 0.25 * 16, 5, 0.0, 0.125),    # the window ends exactly at the episode's last step
    3: (8 + 0.5 * 16, 5, 0.0, 0.25),                # truncation inside the window: bootstrap from s_5 with gamma^2
    4: (16, 5, 0.0, 0.5),                           # the episode's last transition alone
    20: (32 + 0.5 * 64, 22, 1.0, 0.25),             # termination inside the window: cut, terminated
    21: (64, 22, 1.0, 0.5),
    22: (128 + 0.5 * 256, 24, 0.0, 0.25),           # the newest transition has no successor yet
    23: (256, 24, 0.0, 0.5),                        # the newest transition itself
}


class NStepSampleTest(unittest.TestCase):
    """sample(..., n_step=n): rows [obs | act | rew | next_obs | terminated | gamma^k] built from the table, the
    window cut after a terminated transition, at an episode's end (next_obs != the next slot's obs) and at the
    newest transition."""

    def assert_rows(self, batch: Minibatch, expected: dict) -> None:
        """Every row of batch against expected[its start obs]; every start in expected drawn at least once."""
        starts = batch.obs[..., 0]
        self.assertEqual(set(starts.ravel().astype(int)), set(expected))
        for start, (rew, next_obs, terminated, discount) in expected.items():
            rows = starts == start
            np.testing.assert_array_equal(batch.act[rows], -start, err_msg=f"act of {start}")
            np.testing.assert_allclose(batch.rew[rows], rew, rtol=1e-6, err_msg=f"rew of {start}")
            np.testing.assert_array_equal(batch.next_obs[rows], next_obs, err_msg=f"next_obs of {start}")
            np.testing.assert_array_equal(batch.terminated[rows], terminated, err_msg=f"terminated of {start}")
            np.testing.assert_allclose(batch.discount[rows], discount, rtol=1e-6, err_msg=f"discount of {start}")

    def test_n_step_rows_are_cut_at_termination_episode_end_and_the_newest_transition(self):
        batch = episodes_buffer().sample(9, num_batches=40, n_step=3, discount_factor=GAMMA)
        self.assertEqual(batch.rows.dtype, np.float32)
        self.assert_rows(batch, EPISODES_N3)

    def test_n_larger_than_any_episode_is_cut_the_same_way(self):
        expected = {0: (1 + 1 + 1 + 1 + 1, 5, 0.0, 1 / 32), 20: (64, 22, 1.0, 0.25), 22: (256, 24, 0.0, 0.25)}
        batch = episodes_buffer().sample(9, num_batches=40, n_step=10, discount_factor=GAMMA)
        self.assert_rows(Minibatch.from_rows(batch.rows[np.isin(batch.obs[..., 0], list(expected))], OBS_DIM,
                                             ACT_DIM), expected)

    def test_the_ring_is_followed_across_its_end_but_not_from_the_newest_to_the_oldest(self):
        # one episode t = 0..6 in a ring of 4 whose obs cycles with period 4 (obs t % 4, reward t): slots 3, 0, 1,
        # 2 hold t = 3, 4, 5, 6; the newest (t = 6, slot 2) ends at obs 3, bit-equal to the oldest's (t = 3) obs
        buffer = ReplayBuffer(4, OBS_DIM, ACT_DIM, seed=1)
        for t in range(7):
            add_step(buffer, t % 4, (t + 1) % 4, t)
        self.assertEqual(buffer.next_index, 3)
        expected = {3: (3 + 0.5 * 4 + 0.25 * 5, 2, 0.0, 0.125),  # t = 3, 4, 5: slots 3, 0, 1 across the ring's end
                    0: (4 + 0.5 * 5 + 0.25 * 6, 3, 0.0, 0.125),  # t = 4, 5, 6
                    1: (5 + 0.5 * 6, 3, 0.0, 0.25),              # t = 5, 6: cut at the newest
                    2: (6, 3, 0.0, 0.5)}                         # the newest is not followed by the oldest
        self.assert_rows(buffer.sample(4, num_batches=40, n_step=3, discount_factor=GAMMA), expected)

    def test_n_step_1_is_the_one_step_sample(self):
        a, b = episodes_buffer(seed=5), episodes_buffer(seed=5)
        for num_batches in (None, 3):
            one_step = a.sample(6, num_batches=num_batches)
            same = b.sample(6, num_batches=num_batches, n_step=1, discount_factor=GAMMA)
            np.testing.assert_array_equal(same.rows, one_step.rows)
            self.assertIsNone(same.discount)
            self.assertEqual(b.rng.bit_generator.state, a.rng.bit_generator.state)

    def test_n_step_draws_the_same_starts_from_the_same_random_state(self):
        # a resumed run (same sampler state) draws the same minibatches whatever n_step is
        a, b = episodes_buffer(seed=5), episodes_buffer(seed=5)
        one_step = a.sample(6, num_batches=2)
        n_step = b.sample(6, num_batches=2, n_step=3, discount_factor=GAMMA)
        np.testing.assert_array_equal(n_step.obs, one_step.obs)
        np.testing.assert_array_equal(n_step.act, one_step.act)
        self.assertEqual(b.rng.bit_generator.state, a.rng.bit_generator.state)

    def test_num_batches_gives_k_minibatches_of_n_step_rows(self):
        batches = episodes_buffer().sample(5, num_batches=4, n_step=3, discount_factor=GAMMA)
        width = row_width(OBS_DIM, ACT_DIM, n_step=3)
        self.assertEqual(width, row_width(OBS_DIM, ACT_DIM) + 1)
        self.assertEqual(batches.rows.shape, (4, 5, width))
        self.assertEqual(batches.discount.shape, (4, 5))
        self.assertEqual(batches[2].discount.shape, (5,))
        for k in range(4):
            drawn = {int(start): EPISODES_N3[int(start)] for start in batches[k].obs[:, 0]}
            self.assert_rows(batches[k], drawn)

    def test_rows_are_fresh_arrays(self):
        buffer = episodes_buffer()
        batch = buffer.sample(9, n_step=3, discount_factor=GAMMA)
        self.assertFalse(np.shares_memory(batch.rows, buffer.obs))
        batch.rows[...] = np.nan
        self.assertTrue(np.isfinite(buffer.sample(9, n_step=3, discount_factor=GAMMA).rows).all())

    def test_rejects_non_positive_n_step(self):
        for bad in (0, -1, 2.0, True):
            with self.assertRaises(ValueError):
                episodes_buffer().sample(2, n_step=bad)


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
        self.assertIsNone(batch.discount)

    def test_n_step_rows_keep_the_five_columns_and_add_the_discount_last(self):
        obs, act, rew, next_obs, terminated = batch_of([3, 4])
        batch = Minibatch(obs, act, rew, next_obs, terminated, discount=[0.25, 0.5])
        self.assertEqual(batch.rows.shape, (2, 2 * OBS_DIM + ACT_DIM + 3))
        for got, expected in zip(batch, (obs, act, rew, next_obs, terminated), strict=True):
            np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(batch.terminated, [1.0, 0.0])
        np.testing.assert_array_equal(batch.discount, [0.25, 0.5])
        self.assertIs(batch.discount.base, batch.rows)


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
