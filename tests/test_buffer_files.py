"""Tests for blocAndTools.buffer_files' single-.npz format: exact round trip, atomic write, one-line errors.

The chunked format a checkpoint writes is tested through RunCheckpointer in test_checkpointing.
"""

import os
import tempfile
import unittest

import numpy as np

from blocAndTools import buffer_files
from blocAndTools.replay_buffer import Minibatch
from tests.test_replay_buffer import OBS_DIM, assert_same_contents, filled, transition


class NpzFileTest(unittest.TestCase):
    def setUp(self):
        self._dir = tempfile.TemporaryDirectory()
        self.dir = self._dir.name
        self.path = os.path.join(self.dir, "buffer.npz")

    def tearDown(self):
        self._dir.cleanup()

    def assert_round_trip(self, buffer):
        buffer_files.write_npz(buffer, self.path)
        loaded = buffer_files.read_npz(self.path)
        assert_same_contents(self, loaded, buffer)
        for _ in range(3):
            a, b = buffer.sample(4), loaded.sample(4)
            for name in Minibatch._fields:
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        # Both keep going identically after more writes too.
        for k in range(100, 103):
            buffer.add(*transition(k))
            loaded.add(*transition(k))
        assert_same_contents(self, loaded, buffer)
        np.testing.assert_array_equal(buffer.sample(5).obs, loaded.sample(5).obs)

    def test_round_trip_partially_filled(self):
        self.assert_round_trip(filled(20, 7, seed=1))

    def test_round_trip_after_wrap_around(self):
        buffer = filled(8, 21, seed=2)
        buffer.sample(3)  # advance the generator before saving
        self.assert_round_trip(buffer)

    def test_round_trip_keeps_capacity_and_saves_only_held_part(self):
        buffer = filled(1000, 4)
        buffer_files.write_npz(buffer, self.path)
        with np.load(self.path, allow_pickle=False) as data:
            self.assertEqual(data["obs"].shape, (4, OBS_DIM))
        self.assertEqual(buffer_files.read_npz(self.path).capacity, 1000)

    def test_save_writes_to_exact_path_and_leaves_no_temporary_file(self):
        path = os.path.join(self.dir, "replay.buffer")  # no .npz suffix on purpose
        buffer_files.write_npz(filled(5, 5), path)
        buffer_files.write_npz(filled(5, 6), path)  # overwrite in place
        self.assertEqual(os.listdir(self.dir), ["replay.buffer"])
        self.assertEqual(len(buffer_files.read_npz(path)), 5)

    def assert_clear_error(self, path):
        with self.assertRaises(ValueError) as caught:
            buffer_files.read_npz(path)
        message = str(caught.exception)
        self.assertIn(path, message)
        self.assertNotIn("\n", message)

    def test_missing_file_raises_clear_error(self):
        self.assert_clear_error(os.path.join(self.dir, "nothing_here.npz"))

    def test_truncated_file_raises_clear_error_and_stays(self):
        buffer_files.write_npz(filled(50, 50), self.path)
        with open(self.path, "rb") as f:
            content = f.read()
        for cut in (len(content) // 2, len(content) - 10, 100, 10, 0):
            with open(self.path, "wb") as f:
                f.write(content[:cut])
            self.assert_clear_error(self.path)
            self.assertTrue(os.path.exists(self.path))
            with open(self.path, "rb") as f:
                self.assertEqual(f.read(), content[:cut])

    def test_garbage_bytes_raise_clear_error_and_file_stays(self):
        buffer_files.write_npz(filled(50, 50), self.path)
        with open(self.path, "rb") as f:
            content = bytearray(f.read())
        rng = np.random.default_rng(0)
        # Overwrite a stretch in the middle (array data and headers): CRC or parse errors.
        content[len(content) // 3:len(content) // 3 + 64] = rng.bytes(64)
        with open(self.path, "wb") as f:
            f.write(content)
        self.assert_clear_error(self.path)
        with open(self.path, "wb") as f:
            f.write(rng.bytes(4096))
        self.assert_clear_error(self.path)
        self.assertTrue(os.path.exists(self.path))

    def test_other_npz_file_raises_clear_error(self):
        np.savez(self.path, something=np.arange(3))
        self.assert_clear_error(self.path)
        npy = os.path.join(self.dir, "array.npy")
        np.save(npy, np.arange(3))
        self.assert_clear_error(npy)


if __name__ == "__main__":
    unittest.main()
