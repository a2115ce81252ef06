"""Checkpoints of a run: TF objects (tf.train.CheckpointManager), the replay buffer (.npz) and a JSON state.

The three parts of checkpoint N are written as replay_buffer-N.npz, run_state-N.json, then
ckpt-N: the CheckpointManager's index file is replaced atomically last, so it only ever
names a checkpoint whose three parts are complete. An interrupted save leaves the
previous checkpoint intact.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import tensorflow as tf

from blocAndTools.errors import UserInputError
from blocAndTools.replay_buffer import ReplayBuffer


def write_text_atomically(path: Path, text: str) -> None:
    """Write to a temporary name in the same folder, then rename: readers never see half a file."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


class RunCheckpointer:
    """Saves and restores everything a run needs to continue exactly where it stopped."""

    def __init__(self, directory: Path, trackables: dict[str, Any], max_to_keep: int = 2) -> None:
        self.directory = Path(directory)
        self.checkpoint = tf.train.Checkpoint(**trackables)
        self.manager = tf.train.CheckpointManager(self.checkpoint, str(self.directory), max_to_keep=max_to_keep)

    def _buffer_path(self, number: int) -> Path:
        return self.directory / f"replay_buffer-{number}.npz"

    def _state_path(self, number: int) -> Path:
        return self.directory / f"run_state-{number}.json"

    def save(self, number: int, buffer: ReplayBuffer, state: dict[str, Any]) -> None:
        """Write checkpoint `number` (e.g. the epoch) and drop the parts of checkpoints no longer kept."""
        self.directory.mkdir(parents=True, exist_ok=True)
        buffer.save(self._buffer_path(number))
        write_text_atomically(self._state_path(number), json.dumps(state))
        self.manager.save(checkpoint_number=number)
        kept = {int(path.rsplit("-", 1)[1]) for path in self.manager.checkpoints}
        for path in list(self.directory.glob("replay_buffer-*.npz")) + list(self.directory.glob("run_state-*.json")):
            if int(path.stem.rsplit("-", 1)[1]) not in kept:
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
        restore_checkpoint(self.checkpoint, self.manager.latest_checkpoint)
        return number

    def restore_latest(self) -> tuple[ReplayBuffer, dict[str, Any]]:
        """Load the newest complete checkpoint into the trackables; return its buffer and state."""
        number = self.restore_trackables()
        try:
            state = json.loads(self._state_path(number).read_text())
        except (OSError, ValueError) as error:
            raise UserInputError(f"{self._state_path(number)} cannot be read: {_first_line(error)}") from None
        return ReplayBuffer.load(self._buffer_path(number)), state


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def restore_checkpoint(checkpoint: tf.train.Checkpoint, path: str) -> None:
    """Restore `path` into `checkpoint`; an unreadable or mismatched checkpoint is a UserInputError.

    A damaged file can fail in many ways inside TensorFlow (DataLossError, IndexError, ...):
    every one of them means the same thing to the user, so all are reported in one line.
    """
    try:
        checkpoint.restore(path).assert_existing_objects_matched()
    except Exception as error:  # noqa: BLE001 - see the docstring
        raise UserInputError(f"checkpoint {path!r} cannot be read: {_first_line(error)}") from None
