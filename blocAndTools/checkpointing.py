"""Checkpoints of a run: TF objects (tf.train.CheckpointManager), the replay buffer and a JSON state.

Checkpoint N is written in this order: the replay buffer's new rows (`replay_chunk-<rows>.npy`,
only the transitions added since the previous checkpoint) and its manifest
`replay_buffer-N.json` (the chunks that hold the buffer), `run_state-N.json`, then `ckpt-N`.
Other parts written just before save (such as `policy-N.npz`) follow the same naming. The
CheckpointManager's index file is replaced atomically last, so it only ever names a checkpoint
whose parts are complete: an interrupted save leaves the previous checkpoint intact, and the
files it did write are removed by the next save.

The one reader of that layout: `read_latest_state` reads the newest complete checkpoint's state
without TensorFlow (the CLI's checks and a finished run's resume stay fast); TensorFlow is imported
by RunCheckpointer itself.
"""
from __future__ import annotations

import json
import re
import weakref
from pathlib import Path
from typing import Any

from blocAndTools import buffer_files
from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.errors import UserInputError
from blocAndTools.replay_buffer import ReplayBuffer

# <part>-<number>.<extension>: a part of checkpoint <number> (for a chunk: the buffer's row count).
_PART_NAME = re.compile(r"(?P<part>[A-Za-z_]+)-(?P<number>\d+)\.\w+")
INDEX_FILE = "checkpoint"  # tf.train.CheckpointManager's index, replaced last: it names complete checkpoints only
_INDEX_ENTRY = re.compile(r'model_checkpoint_path: "ckpt-(\d+)"')


def state_path(directory: Path, number: int) -> Path:
    """Checkpoint `number`'s JSON state (counters, random generator states)."""
    return Path(directory) / f"run_state-{number}.json"


def read_latest_state(directory: Path) -> dict[str, Any] | None:
    """The JSON state of the newest complete checkpoint in directory, read without TensorFlow; None if none."""
    index = Path(directory) / INDEX_FILE
    match = _INDEX_ENTRY.search(index.read_text()) if index.is_file() else None
    if match is None:
        return None
    path = state_path(directory, int(match.group(1)))
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UserInputError(f"{path} cannot be read: {_first_line(error)}") from None


class RunCheckpointer:
    """Saves and restores everything a run needs to continue exactly where it stopped."""

    def __init__(self, directory: Path, trackables: dict[str, Any], max_to_keep: int = 2,
                 added_later: tuple[str, ...] = ()) -> None:
        """added_later: keys of `trackables` that older checkpoints lack; such a checkpoint still restores,
        those objects keep their values."""
        import tensorflow as tf  # here, not at the top: read_latest_state needs no TensorFlow

        self.directory = Path(directory)
        self.trackables, self.added_later = trackables, added_later
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=max_to_keep)
        # The buffer last written or read, and its manifest: the next save of that same buffer writes only
        # the rows added since. Held weakly, so a replaced buffer is not kept in memory.
        self._buffer_on_disk: tuple[weakref.ref, dict[str, Any]] | None = None

    def _manifest_path(self, number: int) -> Path:
        return self.directory / f"replay_buffer-{number}.json"

    def save(self, number: int, buffer: ReplayBuffer, state: dict[str, Any]) -> None:
        """Write checkpoint `number` (e.g. the env steps) and drop the files of checkpoints no longer kept."""
        self.directory.mkdir(parents=True, exist_ok=True)
        previous = None
        if self._buffer_on_disk is not None and self._buffer_on_disk[0]() is buffer:
            previous = self._buffer_on_disk[1]
        manifest = buffer_files.write_chunks(buffer, self.directory, self._manifest_path(number).name, previous)
        write_text_atomically(state_path(self.directory, number), json.dumps(state))
        self.manager.save(checkpoint_number=number)
        self._buffer_on_disk = (weakref.ref(buffer), manifest)
        self._remove_dropped_parts()

    def _remove_dropped_parts(self) -> None:
        """Delete every <part>-<M>.<ext> whose M is not a kept checkpoint, and the chunks no kept manifest
        names (the ring overwrote them, or an interrupted save wrote them); TF's ckpt-M files are the
        manager's. Chunks stay if a kept manifest cannot be read."""
        kept = {int(path.rsplit("-", 1)[1]) for path in self.manager.checkpoints}
        needed_chunks: set[str] | None = set()
        for number in kept:
            try:
                manifest = json.loads(self._manifest_path(number).read_text())
                needed_chunks |= {chunk["file"] for chunk in manifest["chunks"]}
            except FileNotFoundError:
                pass  # a checkpoint without a manifest holds no chunk (written before chunks existed)
            except (OSError, ValueError, KeyError, TypeError):
                needed_chunks = None
                break
        for path in self.directory.iterdir():
            match = _PART_NAME.fullmatch(path.name)
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                path.unlink(missing_ok=True)  # left by a save that was interrupted mid-write
            elif not match or match["part"] == "ckpt" or not path.is_file():
                continue
            elif match["part"] == buffer_files.CHUNK_PREFIX:
                if needed_chunks is not None and path.name not in needed_chunks:
                    path.unlink()
            elif int(match["number"]) not in kept:
                path.unlink()

    @property
    def latest_number(self) -> int | None:
        latest = self.manager.latest_checkpoint
        return None if latest is None else int(latest.rsplit("-", 1)[1])

    def restore_trackables(self) -> int:
        """Load the newest checkpoint's TF objects only (enough to evaluate a policy); return its number."""
        number = self.latest_number
        if number is None:
            raise UserInputError(f"no checkpoint in {str(self.directory)!r}")
        restore_checkpoint(self.trackables, self.manager.latest_checkpoint, self.added_later)
        return number

    def restore_latest(self) -> tuple[ReplayBuffer, dict[str, Any]]:
        """Load the newest complete checkpoint into the trackables; return its buffer and state."""
        number = self.restore_trackables()
        try:
            state = json.loads(state_path(self.directory, number).read_text())
        except (OSError, ValueError) as error:
            raise UserInputError(f"{state_path(self.directory, number)} cannot be read: {_first_line(error)}") from None
        whole_buffer = self.directory / f"replay_buffer-{number}.npz"  # written before chunks existed
        if not self._manifest_path(number).exists() and whole_buffer.exists():
            return buffer_files.read_npz(whole_buffer), state
        buffer, manifest = buffer_files.read_chunks(self._manifest_path(number))
        self._buffer_on_disk = (weakref.ref(buffer), manifest)
        return buffer, state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def restore_checkpoint(trackables: dict[str, Any], path: str, added_later: tuple[str, ...] = ()) -> None:
    """Restore checkpoint `path` into `trackables`; an unreadable or mismatched checkpoint is a UserInputError.
    The `added_later` keys that `path` lacks (written before they existed) are left as they are.

    A damaged file can fail in many ways inside TensorFlow (DataLossError, IndexError, ...):
    every one of them means the same thing to the user, so all are reported in one line.
    """
    import tensorflow as tf

    try:
        saved = {name.split("/", 1)[0] for name, _ in tf.train.list_variables(path)} if added_later else set()
        checkpoint = tf.train.Checkpoint(**{key: value for key, value in trackables.items()
                                            if key not in added_later or key in saved})
        checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise UserInputError(f"checkpoint {path!r} cannot be read: {_first_line(error)}") from None
