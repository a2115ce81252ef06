"""Replay buffer for off-policy learning (SAC): preallocated NumPy arrays, a ring index
and a seeded sampler.

Why this design:
- Float32 arrays allocated once, no per-transition Python objects: writing a transition
  is a row copy, sampling is one fancy-indexing gather, and memory is the arrays and
  nothing else: 4 * (2*obs_dim + act_dim + 2) bytes per transition.
- ``sample()`` always returns freshly allocated arrays. The original project's worst
  silent bug was a sampler that handed the learner the same minibatch object again and
  again; fancy indexing (``table[idx]``) copies, so that cannot happen here.
- The sampler owns a seeded ``np.random.Generator`` whose state is saved with the
  contents, so a resumed run draws exactly the minibatches the original would have.
- Files are plain NumPy files read with ``allow_pickle=False``: no pickle anywhere. ``save``
  writes the whole buffer to one ``.npz``; ``write_chunks`` writes only the rows added since
  its previous call (one ``.npy`` chunk) and a JSON manifest of the chunks that hold the
  buffer, so a checkpoint of a 1e6-transition buffer costs one epoch of rows, not 1e6.

Memory layout: one (capacity, 2*obs_dim + act_dim + 2) table, one row per transition
laid out as [obs | act | rew | next_obs | terminated]; ``buffer.obs``, ``buffer.act``,
... are column views of it (ordinary arrays of shape (capacity, obs_dim), (capacity,),
...). One row write makes ``add()`` faster than five writes into five separate arrays,
and sampling a minibatch is one gather of adjacent bytes instead of five gathers that
each miss the cache (benchmarks/replay_buffer_benchmark.py measures both).
"""

from __future__ import annotations

import json
import math
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from blocAndTools.atomic_files import write_atomically, write_text_atomically
from blocAndTools.errors import UserInputError

_FORMAT_VERSION = 1          # save / load: one .npz
_CHUNKED_FORMAT_VERSION = 2  # write_chunks / read_chunks: .npy chunks and a JSON manifest
CHUNK_PREFIX = "replay_chunk"
_CHUNK_NAME = re.compile(rf"{CHUNK_PREFIX}-\d+\.npy")
# Bit generators whose state is plain ints/strings (JSON-safe). default_rng uses PCG64.
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64}


def transition_columns(rows, obs_dim: int, act_dim: int) -> tuple:
    """The obs, act, rew, next_obs, terminated columns of rows laid out [obs | act | rew | next_obs | terminated].

    Views for a NumPy array; slices for a TensorFlow tensor (the brain's update splits its
    one input this way). Works on a whole table, one or several minibatches, or a single row.
    """
    o, a = obs_dim, act_dim
    return (rows[..., :o], rows[..., o:o + a], rows[..., o + a], rows[..., o + a + 1:2 * o + a + 1], rows[..., -1])


class Minibatch:
    """Transitions as the buffer stores them: float32 rows [obs | act | rew | next_obs | terminated], with the
    five columns as views.

    `rows` has shape (batch, width), or (num_batches, batch, width) for several minibatches drawn
    together (`minibatch[k]` is the k-th). The brain's update takes `rows` as it is: one array to
    convert, no packing copy. Iterating gives the columns in order: obs, act, rew, next_obs, terminated.
    """

    _fields = ("obs", "act", "rew", "next_obs", "terminated")

    def __init__(self, obs: ArrayLike, act: ArrayLike, rew: ArrayLike, next_obs: ArrayLike,
                 terminated: ArrayLike) -> None:
        """A minibatch from its five columns, copied into rows (the buffer's own minibatches use from_rows)."""
        obs, act, next_obs = (np.asarray(x, np.float32) for x in (obs, act, next_obs))
        self.rows = np.concatenate([obs, act, np.asarray(rew, np.float32)[..., None], next_obs,
                                    np.asarray(terminated, np.float32)[..., None]], axis=-1)
        self.obs_dim, self.act_dim = obs.shape[-1], act.shape[-1]

    @classmethod
    def from_rows(cls, rows: np.ndarray, obs_dim: int, act_dim: int) -> Minibatch:
        """The minibatch whose rows are `rows` itself (no copy)."""
        batch = cls.__new__(cls)
        batch.rows, batch.obs_dim, batch.act_dim = rows, obs_dim, act_dim
        return batch

    def _column(self, index: int) -> np.ndarray:
        return transition_columns(self.rows, self.obs_dim, self.act_dim)[index]

    obs = property(lambda self: self._column(0), doc="(..., batch, obs_dim)")
    act = property(lambda self: self._column(1), doc="(..., batch, act_dim)")
    rew = property(lambda self: self._column(2), doc="(..., batch)")
    next_obs = property(lambda self: self._column(3), doc="(..., batch, obs_dim)")
    terminated = property(lambda self: self._column(4),
                          doc="(..., batch): 1.0 if the episode ended in a terminal state")

    def __iter__(self):
        return iter(transition_columns(self.rows, self.obs_dim, self.act_dim))

    def __getitem__(self, k: int) -> Minibatch:
        """The k-th of several minibatches (a view)."""
        return Minibatch.from_rows(self.rows[k], self.obs_dim, self.act_dim)

    @property
    def num_batches(self) -> int | None:
        """How many minibatches rows holds, or None for one minibatch of shape (batch, width)."""
        return self.rows.shape[0] if self.rows.ndim == 3 else None


def _positive_int(value: object, name: str) -> int:
    """Return value as an int, or raise ValueError if it is not a positive integer."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class ReplayBuffer:
    """Fixed-capacity FIFO store of transitions (obs, act, rew, next_obs, terminated).

    Once full, each new transition overwrites the oldest one (ring index).
    """

    def __init__(self, capacity: int, obs_dim: int, act_dim: int, seed: int | None = None):
        self.capacity = _positive_int(capacity, "capacity")
        self.obs_dim = _positive_int(obs_dim, "obs_dim")
        self.act_dim = _positive_int(act_dim, "act_dim")
        width = 2 * self.obs_dim + self.act_dim + 2
        self._table = np.zeros((self.capacity, width), dtype=np.float32)
        self.obs, self.act, self.rew, self.next_obs, self.terminated = self._columns(self._table)
        self._next = 0  # ring index: the slot the next transition is written to
        self._size = 0  # number of transitions held (<= capacity)
        self._laps = 0  # times the ring index wrapped to 0: transitions ever added = laps * capacity + next
        self.rng = np.random.default_rng(seed)  # draws the sample() indices; saved by save()
        self._obs_shape = (self.obs_dim,)
        self._act_shape = (self.act_dim,)
        # Scratch row used by add(), same layout as a table row.
        self._stage = np.zeros(width, dtype=np.float32)
        self._stage_obs, self._stage_act, _, self._stage_next_obs, _ = self._columns(self._stage)
        self._rew_col, self._terminated_col = self.obs_dim + self.act_dim, width - 1

    def _columns(self, table: np.ndarray) -> tuple[np.ndarray, ...]:
        return transition_columns(table, self.obs_dim, self.act_dim)

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes of the transition table: the buffer's whole memory besides a few scalars."""
        return self._table.nbytes

    @property
    def next_index(self) -> int:
        """The slot the next added transition goes to (the oldest one once full)."""
        return self._next

    @property
    def total_added(self) -> int:
        """Transitions added since the buffer was created: transition g (from 0) is in slot g % capacity."""
        return self._laps * self.capacity + self._next

    # ----------------------------------------------------------------- writing

    def add(self, obs: ArrayLike, act: ArrayLike, rew: float, next_obs: ArrayLike,
            terminated: bool | float) -> None:
        """Store one transition, overwriting the oldest one if the buffer is full.

        Raises ValueError for wrong shapes or a NaN/inf value; the buffer is unchanged then.
        """
        obs = np.asarray(obs)
        act = np.asarray(act)
        next_obs = np.asarray(next_obs)
        if obs.shape != self._obs_shape or next_obs.shape != self._obs_shape \
                or act.shape != self._act_shape:
            raise ValueError(
                f"add: expected obs and next_obs of shape {self._obs_shape} and act of shape "
                f"{self._act_shape}, got {obs.shape}, {next_obs.shape} and {act.shape}")
        # Copy the transition into a float32 scratch row first, so that a single cheap
        # reduction checks every value *after* the cast to float32 (a float64 1e39 becomes
        # inf here), and the table is only written once the transition is known good.
        # One dot product of the staged row with itself is several times cheaper than
        # np.isfinite on the 5 fields (add() has a 3 us budget). A NaN/inf anywhere makes the dot NaN/inf;
        # huge finite values (|x| > ~1e19) can overflow it too, so on failure
        # _check_finite redoes the check exactly and names the bad field.
        stage = self._stage
        self._stage_obs[...] = obs
        self._stage_act[...] = act
        self._stage_next_obs[...] = next_obs
        try:
            stage[self._rew_col] = rew
            stage[self._terminated_col] = terminated
        except (TypeError, ValueError):
            raise ValueError(f"add: rew and terminated must be scalar numbers, "
                             f"got {rew!r} and {terminated!r}") from None
        if not math.isfinite(stage.dot(stage)):
            self._check_finite(*self._columns(stage))
        i = self._next
        self._table[i] = stage
        if i + 1 < self.capacity:
            self._next = i + 1
        else:
            self._next, self._laps = 0, self._laps + 1
        if self._size < self.capacity:
            self._size += 1

    def add_batch(self, obs: ArrayLike, act: ArrayLike, rew: ArrayLike, next_obs: ArrayLike,
                  terminated: ArrayLike) -> None:
        """Store n transitions (arrays with n rows) in order; same result as n calls to add()."""
        obs = np.asarray(obs, dtype=np.float32)
        act = np.asarray(act, dtype=np.float32)
        rew = np.asarray(rew, dtype=np.float32)
        next_obs = np.asarray(next_obs, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=np.float32)
        if rew.ndim != 1:
            raise ValueError(f"add_batch: rew must have shape (n,), got {rew.shape}")
        n = len(rew)
        expected = {"obs": (n, self.obs_dim), "act": (n, self.act_dim),
                    "next_obs": (n, self.obs_dim), "terminated": (n,)}
        given = {"obs": obs, "act": act, "next_obs": next_obs, "terminated": terminated}
        for name, array in given.items():
            if array.shape != expected[name]:
                raise ValueError(f"add_batch: {name} has shape {array.shape}, expected "
                                 f"{expected[name]} (n = {n} transitions, from rew)")
        self._check_finite(obs, act, rew, next_obs, terminated)
        if n == 0:
            return
        # Only the last `capacity` transitions survive; transition k of the batch goes to
        # slot (ring index + k) mod capacity, exactly as repeated add() would place it.
        keep = min(n, self.capacity)
        slots = (self._next + np.arange(n - keep, n)) % self.capacity
        self.obs[slots] = obs[n - keep:]
        self.act[slots] = act[n - keep:]
        self.rew[slots] = rew[n - keep:]
        self.next_obs[slots] = next_obs[n - keep:]
        self.terminated[slots] = terminated[n - keep:]
        self._laps, self._next = divmod(self.total_added + n, self.capacity)
        self._size = min(self._size + n, self.capacity)

    @staticmethod
    def _check_finite(obs, act, rew, next_obs, terminated) -> None:
        """Raise ValueError naming every field that holds NaN or inf."""
        fields = {"obs": obs, "act": act, "rew": rew, "next_obs": next_obs,
                  "terminated": terminated}
        bad = [name for name, value in fields.items() if not np.isfinite(value).all()]
        if bad:
            raise ValueError(f"transition contains NaN or inf in: {', '.join(bad)}")

    # ---------------------------------------------------------------- sampling

    def sample(self, batch_size: int, num_batches: int | None = None) -> Minibatch:
        """Draw batch_size transitions uniformly (with replacement) from those held; num_batches=K
        draws K minibatches of batch_size at once (K * batch_size indices, one gather).

        The gather copies the sampled rows into a new (batch_size, width) array, or
        (K, batch_size, width): nothing is shared with the buffer or with any other minibatch, so
        mutating a minibatch never touches the buffer or the next sample. (Its columns are
        views, not C-contiguous; the brain takes the contiguous rows.)
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"sample: batch_size must be a positive integer, got {batch_size!r}")
        if num_batches is not None:
            num_batches = _positive_int(num_batches, "sample: num_batches")
        if batch_size > self._size:
            raise ValueError(f"sample: batch_size {batch_size} is larger than the "
                             f"{self._size} transitions held")
        shape = batch_size if num_batches is None else (num_batches, batch_size)
        idx = self.rng.integers(0, self._size, size=shape)
        return Minibatch.from_rows(self._table[idx], self.obs_dim, self.act_dim)

    # ----------------------------------------------------------- save / load

    def _ring_parts(self, start: int, stop: int) -> list[tuple[slice, slice]]:
        """Where transitions start..stop-1 (at most capacity of them) live: (table slots, their rows from 0), 1 or 2
        parts."""
        first, n = start % self.capacity, stop - start
        head = min(n, self.capacity - first)
        parts = [(slice(first, first + head), slice(0, head))]
        if head < n:
            parts.append((slice(0, n - head), slice(head, n)))
        return parts

    def _set_position(self, total_added: int) -> None:
        """Ring index, size and laps of a buffer that has received total_added transitions."""
        self._laps, self._next = divmod(total_added, self.capacity)
        self._size = min(total_added, self.capacity)

    def save(self, path: str | os.PathLike) -> None:
        """Write the held transitions, ring index and sampler state to one .npz file at path.

        Written to a temporary file in the same directory and then renamed over path, so a
        crash mid-write never leaves a half-written file under that name.
        """
        n = self._size
        # A file object (not a name) so np.savez does not append ".npz" to the name.
        write_atomically(path, lambda file: np.savez(
            file,
            format_version=np.int64(_FORMAT_VERSION),
            capacity=np.int64(self.capacity),
            obs_dim=np.int64(self.obs_dim),
            act_dim=np.int64(self.act_dim),
            next_index=np.int64(self._next),
            size=np.int64(n),
            rng_state=np.array(json.dumps(self.rng.bit_generator.state)),
            obs=self.obs[:n], act=self.act[:n], rew=self.rew[:n],
            next_obs=self.next_obs[:n], terminated=self.terminated[:n],
        ), sync=True)

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReplayBuffer:
        """Rebuild a buffer saved by save(): same contents, ring index and sampler state.

        Raises UserInputError (a ValueError) with a one-line message naming the file if it
        is missing, truncated, corrupt or inconsistent. The file is never modified.
        """
        path = os.fspath(path)
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"])
                if version != _FORMAT_VERSION:
                    raise ValueError(f"unsupported format_version {version}")
                buffer = cls(int(data["capacity"]), int(data["obs_dim"]), int(data["act_dim"]))
                size, next_index = int(data["size"]), int(data["next_index"])
                if not 0 <= size <= buffer.capacity:
                    raise ValueError(f"size {size} outside [0, capacity {buffer.capacity}]")
                if not (0 <= next_index < buffer.capacity
                        and (size == buffer.capacity or next_index == size)):
                    raise ValueError(f"ring index {next_index} inconsistent with size {size}")
                for name in ("obs", "act", "rew", "next_obs", "terminated"):
                    stored, target = data[name], getattr(buffer, name)
                    if stored.dtype != np.float32 or stored.shape != (size,) + target.shape[1:]:
                        raise ValueError(f"array {name!r} has dtype {stored.dtype} and shape "
                                         f"{stored.shape}, expected float32 and "
                                         f"{(size,) + target.shape[1:]}")
                    if not np.isfinite(stored).all():
                        raise ValueError(f"array {name!r} contains NaN or inf")
                    target[:size] = stored
                rng = _generator(json.loads(str(data["rng_state"])))
        except FileNotFoundError:
            raise UserInputError(f"replay buffer file not found: {path}") from None
        except (zipfile.BadZipFile, KeyError, OSError, EOFError, ValueError, TypeError,
                AttributeError, MemoryError) as error:
            raise UserInputError(f"cannot load replay buffer from {path}: corrupt or not a replay buffer "
                                 f"file ({_reason(error)})") from error
        # A full buffer is taken as having wrapped once: total_added only has to agree with the ring.
        buffer._set_position(size if size < buffer.capacity else buffer.capacity + next_index)
        buffer.rng = rng
        return buffer

    def write_chunks(self, directory: str | os.PathLike, manifest_name: str,
                     previous: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write the rows added since `previous` as one chunk file, then the manifest; return the manifest.

        previous: the manifest an earlier write_chunks of this same buffer returned, whose chunks are
        still in directory; None writes every held row. The new chunk `replay_chunk-<total_added>.npy`
        holds the transitions added since then that are still held; the manifest (JSON, written
        last) lists, oldest first, the chunks that hold the buffer's transitions, and its counters
        and sampler state. Chunks the ring has wholly overwritten are no longer listed.
        """
        directory = Path(directory)
        total, oldest = self.total_added, self.total_added - self._size
        if previous is None:
            chunks, start = [], oldest
        else:
            if (previous["capacity"], previous["obs_dim"], previous["act_dim"]) != \
                    (self.capacity, self.obs_dim, self.act_dim) or previous["total_added"] > total:
                raise ValueError("write_chunks: `previous` is not an earlier manifest of this buffer")
            chunks = [chunk for chunk in previous["chunks"] if chunk["stop"] > oldest]
            start = max(previous["total_added"], oldest)
        if start < total:
            name = f"{CHUNK_PREFIX}-{total}.npy"
            parts = [self._table[slots] for slots, _ in self._ring_parts(start, total)]
            rows = parts[0] if len(parts) == 1 else np.concatenate(parts)
            write_atomically(directory / name, lambda file: np.save(file, rows, allow_pickle=False), sync=True)
            chunks.append({"file": name, "start": start, "stop": total})
        manifest = {"format_version": _CHUNKED_FORMAT_VERSION, "capacity": self.capacity, "obs_dim": self.obs_dim,
                    "act_dim": self.act_dim, "total_added": total, "rng_state": self.rng.bit_generator.state,
                    "chunks": chunks}
        write_text_atomically(directory / manifest_name, json.dumps(manifest))
        return manifest

    @classmethod
    def read_chunks(cls, manifest_path: str | os.PathLike) -> tuple[ReplayBuffer, dict[str, Any]]:
        """Rebuild a buffer from a manifest of write_chunks and its chunks; return it and the manifest.

        Raises UserInputError with one line naming the file if the manifest or a chunk is missing,
        truncated, corrupt or inconsistent. No file is modified.
        """
        manifest_path = Path(manifest_path)
        current = manifest_path  # the file being read, for the error message
        try:
            manifest = json.loads(manifest_path.read_text())
            if manifest["format_version"] != _CHUNKED_FORMAT_VERSION:
                raise ValueError(f"unsupported format_version {manifest['format_version']!r}")
            buffer = cls(manifest["capacity"], manifest["obs_dim"], manifest["act_dim"])
            total, chunks = manifest["total_added"], manifest["chunks"]
            if isinstance(total, bool) or not isinstance(total, int) or total < 0:
                raise ValueError(f"total_added must be an integer >= 0, got {total!r}")
            buffer._set_position(total)
            oldest = total - len(buffer)
            # The chunks must cover transitions oldest..total-1 without gap, oldest first.
            expected_start = chunks[0]["start"] if chunks else total
            if expected_start > oldest:
                raise ValueError(f"the chunks start at transition {expected_start}, after the oldest held, {oldest}")
            for chunk in chunks:
                start, stop, name = chunk["start"], chunk["stop"], chunk["file"]
                if start != expected_start or not start < stop or stop <= oldest \
                        or not isinstance(name, str) or not _CHUNK_NAME.fullmatch(name):
                    raise ValueError(f"chunk entry {chunk} is out of order or malformed")
                expected_start = stop
                current = manifest_path.parent / name
                rows = np.load(current, mmap_mode="r", allow_pickle=False)
                if rows.dtype != np.float32 or rows.shape != (stop - start, buffer._table.shape[1]):
                    raise ValueError(f"array of dtype {rows.dtype} and shape {rows.shape}, expected float32 "
                                     f"and {(stop - start, buffer._table.shape[1])}")
                first = max(start, oldest)
                held = np.array(rows[first - start:])  # reads the file: only the rows still held
                del rows
                if not np.isfinite(held).all():
                    raise ValueError("contains NaN or inf")
                for slots, part in buffer._ring_parts(first, stop):
                    buffer._table[slots] = held[part]
            current = manifest_path
            if expected_start != total:
                raise ValueError(f"the chunks end at transition {expected_start}, not at total_added {total}")
            buffer.rng = _generator(manifest["rng_state"])
        except FileNotFoundError:
            raise UserInputError(f"replay buffer file not found: {current}") from None
        except (KeyError, IndexError, OSError, EOFError, ValueError, TypeError, AttributeError,
                MemoryError) as error:
            raise UserInputError(f"cannot load replay buffer from {current}: corrupt or not a replay buffer "
                                 f"file ({_reason(error)})") from error
        return buffer, manifest


def _generator(state: dict) -> np.random.Generator:
    """A NumPy generator in the given bit_generator.state (JSON-safe bit generators only)."""
    bit_generator = _BIT_GENERATORS.get(state.get("bit_generator"))
    if bit_generator is None:
        raise ValueError(f"unknown bit generator {state.get('bit_generator')!r}")
    rng = np.random.Generator(bit_generator())
    rng.bit_generator.state = state
    return rng


def _reason(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__
