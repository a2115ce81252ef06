"""RunCheckpointer: incremental buffer chunks, exact restore, crash safety, pruning, damaged files, file modes."""
import json
import os
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import tensorflow as tf

from blocAndTools import ReplayBuffer, UserInputError, buffer_files
from blocAndTools.checkpointing import RunCheckpointer

OBS_DIM, ACT_DIM = 3, 2
ROW_BYTES = 4 * (2 * OBS_DIM + ACT_DIM + 2)


def add_rows(buffer: ReplayBuffer, n: int) -> None:
    """n transitions whose values encode their number since the buffer was created."""
    k = np.arange(buffer.total_added, buffer.total_added + n, dtype=np.float32)
    buffer.add_batch(np.repeat(k[:, None], OBS_DIM, 1), -np.repeat(k[:, None], ACT_DIM, 1), k / 2,
                     np.repeat(k[:, None], OBS_DIM, 1) + 0.5, k % 2)


def assert_same_buffer(test: unittest.TestCase, restored: ReplayBuffer, buffer: ReplayBuffer) -> None:
    """Same rows held, ring index, size and sampler state (so the same minibatches from now on)."""
    test.assertEqual((len(restored), restored.next_index, restored.total_added),
                     (len(buffer), buffer.next_index, buffer.total_added))
    np.testing.assert_array_equal(restored._table[:len(buffer)], buffer._table[:len(buffer)])
    test.assertEqual(restored.rng.bit_generator.state, buffer.rng.bit_generator.state)


def file_versions(folder: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (inode, mtime_ns, size): a file replaced or rewritten gets a new entry."""
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.stat().st_size)
            for path in folder.iterdir() if path.is_file()}


class CheckpointFolderTest(unittest.TestCase):
    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.directory = Path(self.folder.name) / "checkpoints"
        self.step = tf.Variable(0)

    def tearDown(self):
        self.folder.cleanup()

    def checkpointer(self) -> RunCheckpointer:
        return RunCheckpointer(self.directory, {"step": self.step})

    def restored_buffer(self) -> ReplayBuffer:
        """The newest checkpoint's buffer, read by a new checkpointer as a resumed run would."""
        return self.checkpointer().restore_latest()[0]


class IncrementalBufferTest(CheckpointFolderTest):
    def test_a_checkpoint_writes_only_the_rows_added_since_the_previous_one(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(1000, OBS_DIM, ACT_DIM, seed=0)
        add_rows(buffer, 1000)
        checkpointer.save(1, buffer, {})
        before = file_versions(self.directory)
        add_rows(buffer, 10)
        checkpointer.save(2, buffer, {})
        after = file_versions(self.directory)
        written = {name for name, version in after.items() if before.get(name) != version}
        buffer_bytes = sum(after[name][2] for name in written if name.startswith("replay"))
        self.assertLess(buffer_bytes, 10 * ROW_BYTES + 2048, sorted(written))  # 10 rows + .npy header + manifest
        self.assertTrue(all(before[name] == after[name] for name in before if name.startswith("replay_chunk")))
        assert_same_buffer(self, self.restored_buffer(), buffer)

    def test_restore_is_exact_across_wrap_arounds_and_resumes(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=3)
        for number, n in enumerate([3, 7, 0, 4, 25, 1, 9, 10, 2, 6, 13, 5], start=1):
            add_rows(buffer, n)
            buffer.sample(2)  # move the sampler on between checkpoints
            checkpointer.save(number, buffer, {"number": number})
            resumed = self.checkpointer()
            restored, state = resumed.restore_latest()
            self.assertEqual(state, {"number": number})
            assert_same_buffer(self, restored, buffer)
            np.testing.assert_array_equal(restored.sample(3).obs, buffer.sample(3).obs)
            if number % 3 == 0:  # continue as a resumed run does: the restored buffer, a new checkpointer
                checkpointer, buffer = resumed, restored

    def test_chunks_the_ring_overwrote_are_deleted(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
        for number in range(1, 30):
            add_rows(buffer, 3)
            checkpointer.save(number, buffer, {})
        chunks = sorted(path.name for path in self.directory.glob("replay_chunk-*"))
        named = {chunk["file"] for number in (28, 29)
                 for chunk in json.loads((self.directory / f"replay_buffer-{number}.json").read_text())["chunks"]}
        self.assertEqual(set(chunks), named)
        self.assertLessEqual(len(chunks), 5)  # 10 rows in chunks of 3, for two checkpoints
        assert_same_buffer(self, self.restored_buffer(), buffer)


class InterruptedSaveTest(CheckpointFolderTest):
    def test_a_save_that_dies_before_the_index_leaves_the_previous_checkpoint_and_is_cleaned_up(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
        add_rows(buffer, 6)
        checkpointer.save(1, buffer, {"number": 1})
        saved = ReplayBuffer(10, OBS_DIM, ACT_DIM)
        saved._table[:], saved._laps, saved._next, saved._size = buffer._table, buffer._laps, 6, 6
        saved.rng.bit_generator.state = buffer.rng.bit_generator.state
        add_rows(buffer, 7)
        with mock.patch.object(checkpointer.manager, "save", side_effect=RuntimeError("killed")):
            with self.assertRaises(RuntimeError):  # chunk, manifest and state of 2 are written, not the index
                checkpointer.save(2, buffer, {"number": 2})
        (self.directory / ".replay_chunk-99.npy.tmp").write_bytes(b"half a file")  # as left by SIGKILL
        restored, state = self.checkpointer().restore_latest()
        self.assertEqual(state, {"number": 1})
        assert_same_buffer(self, restored, saved)

        add_rows(buffer, 2)
        checkpointer.save(3, buffer, {"number": 3})
        assert_same_buffer(self, self.restored_buffer(), buffer)
        names = set(os.listdir(self.directory))
        self.assertFalse({"replay_buffer-2.json", "run_state-2.json", "replay_chunk-13.npy",
                          ".replay_chunk-99.npy.tmp"} & names, names)

    def test_a_chunk_write_that_fails_leaves_no_file_and_the_previous_checkpoint(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
        add_rows(buffer, 4)
        checkpointer.save(1, buffer, {})
        names = sorted(os.listdir(self.directory))

        def half_then_fail(file, array, allow_pickle):
            file.write(b"\x93NUMPY half")
            raise OSError("disk full")

        add_rows(buffer, 3)
        with mock.patch("numpy.save", half_then_fail), self.assertRaises(OSError):
            checkpointer.save(2, buffer, {})
        self.assertEqual(sorted(os.listdir(self.directory)), names)
        self.assertEqual(len(self.restored_buffer()), 4)


class PruningTest(CheckpointFolderTest):
    def test_parts_of_dropped_checkpoints_are_deleted_whatever_their_name(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(100, OBS_DIM, ACT_DIM, seed=0)
        for number in range(1, 5):
            add_rows(buffer, 5)
            (self.directory / f"policy-{number}.npz").parent.mkdir(parents=True, exist_ok=True)
            (self.directory / f"policy-{number}.npz").write_bytes(b"weights")  # another part, written before save
            checkpointer.save(number, buffer, {})
        names = set(os.listdir(self.directory))
        self.assertEqual({name for name in names if not name.startswith(("ckpt", "replay_chunk", "checkpoint"))},
                         {"policy-3.npz", "policy-4.npz", "replay_buffer-3.json", "replay_buffer-4.json",
                          "run_state-3.json", "run_state-4.json"})
        # the oldest rows are still held, so the first chunk stays
        self.assertEqual({name for name in names if name.startswith("replay_chunk")},
                         {f"replay_chunk-{5 * number}.npy" for number in range(1, 5)})


class DamagedFilesTest(CheckpointFolderTest):
    def setUp(self):
        super().setUp()
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
        add_rows(buffer, 6)
        checkpointer.save(1, buffer, {})
        add_rows(buffer, 2)
        checkpointer.save(2, buffer, {})

    def assert_one_line_refusal(self, pattern: str):
        names = sorted(os.listdir(self.directory))
        with self.assertRaisesRegex(UserInputError, pattern) as caught:
            self.checkpointer().restore_latest()
        self.assertNotIn("\n", str(caught.exception))
        self.assertEqual(sorted(os.listdir(self.directory)), names)

    def test_missing_chunk(self):
        (self.directory / "replay_chunk-6.npy").unlink()
        self.assert_one_line_refusal("replay buffer file not found: .*replay_chunk-6.npy")

    def test_truncated_chunk(self):
        chunk = self.directory / "replay_chunk-8.npy"
        for cut in (0, 50, chunk.stat().st_size - 4):
            chunk.write_bytes(chunk.read_bytes()[:cut])
            self.assert_one_line_refusal("cannot load replay buffer from .*replay_chunk-8.npy")

    def test_garbage_manifest(self):
        for text in ("not json", "{}", '{"format_version": 2}', "[1, 2]"):
            (self.directory / "replay_buffer-2.json").write_text(text)
            self.assert_one_line_refusal("cannot load replay buffer from .*replay_buffer-2.json")

    def test_manifest_with_a_gap_or_a_foreign_path(self):
        path = self.directory / "replay_buffer-2.json"
        manifest = json.loads(path.read_text())
        for chunks in (manifest["chunks"][1:], [dict(manifest["chunks"][0], file="../outside-6.npy")]
                       + manifest["chunks"][1:]):
            path.write_text(json.dumps(dict(manifest, chunks=chunks)))
            self.assert_one_line_refusal("cannot load replay buffer from .*replay_buffer-2.json")


class WholeBufferCheckpointTest(CheckpointFolderTest):
    def test_a_checkpoint_written_before_chunks_existed_resumes_and_is_dropped_later(self):
        checkpointer, buffer = self.checkpointer(), ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
        add_rows(buffer, 12)
        self.directory.mkdir(parents=True)
        # the former layout: the whole buffer, no manifest
        buffer_files.write_npz(buffer, self.directory / "replay_buffer-12.npz")
        (self.directory / "run_state-12.json").write_text("{}")
        checkpointer.manager.save(checkpoint_number=12)
        checkpointer = self.checkpointer()
        restored, _ = checkpointer.restore_latest()
        assert_same_buffer(self, restored, buffer)
        for number in (15, 18):
            add_rows(restored, 3)
            checkpointer.save(number, restored, {})
        self.assertNotIn("replay_buffer-12.npz", os.listdir(self.directory))
        assert_same_buffer(self, self.restored_buffer(), restored)


class AddedLaterTest(CheckpointFolderTest):
    def test_a_checkpoint_without_an_object_added_later_restores_and_one_without_another_is_refused(self):
        self.step.assign(7)
        self.checkpointer().save(1, ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0), {})
        self.step.assign(0)
        newer = tf.Variable(3.0)
        RunCheckpointer(self.directory, {"step": self.step, "newer": newer}, added_later=("newer",)).restore_latest()
        self.assertEqual((int(self.step), float(newer)), (7, 3.0))
        with self.assertRaisesRegex(UserInputError, "^checkpoint .* cannot be read: AssertionError"):
            RunCheckpointer(self.directory, {"step": self.step, "newer": newer}).restore_latest()


class FileModeTest(CheckpointFolderTest):
    def test_every_checkpoint_file_gets_the_mode_open_gives_under_the_umask(self):
        for umask in (0o022, 0o027):
            previous = os.umask(umask)
            try:
                directory = self.directory / oct(umask)
                buffer = ReplayBuffer(10, OBS_DIM, ACT_DIM, seed=0)
                add_rows(buffer, 4)
                RunCheckpointer(directory, {"step": self.step}).save(1, buffer, {})
                buffer_files.write_npz(buffer, directory / "whole_buffer.npz")
            finally:
                os.umask(previous)
            modes = {path.name: oct(path.stat().st_mode & 0o777) for path in directory.iterdir()}
            self.assertEqual(set(modes.values()), {oct(0o666 & ~umask)}, modes)


if __name__ == "__main__":
    unittest.main()
