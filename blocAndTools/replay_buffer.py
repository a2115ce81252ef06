"""Replay buffer for off-policy learning (SAC): preallocated NumPy arrays, a ring index
and a seeded sampler.

Why this design:
- Float32 arrays allocated once, no per-transition Python objects: writing a transition
  is a row copy, sampling is one fancy-indexing gather, and memory is the arrays and
  nothing else: 4 * row_width(obs_dim, act_dim) bytes per transition.
- ``sample()`` always returns freshly allocated arrays. The original project's worst
  silent bug was a sampler that handed the learner the same minibatch object again and
  again; fancy indexing (``table[idx]``) copies, so that cannot happen here.
- The sampler owns a seeded ``np.random.Generator`` whose state is saved with the
  contents, so a resumed run draws exactly the minibatches the original would have.
- The buffer's files (the chunks a checkpoint writes, the older single .npz) are
  blocAndTools/buffer_files.py's.

Memory layout: one (capacity, row_width) table, row_width = 2*obs_dim + act_dim + 2, one row per
transition laid out as [obs | act | rew | next_obs | terminated]; ``buffer.obs``, ``buffer.act``,
... are column views of it (ordinary arrays of shape (capacity, obs_dim), (capacity,),
...). One row write makes ``add()`` faster than five writes into five separate arrays,
and sampling a minibatch is one gather of adjacent bytes instead of five gathers that
each miss the cache (benchmarks/replay_buffer_benchmark.py measures both).

N-step rows (``sample(..., n_step=n)``, n > 1) are built at sampling time from the same table, so the table
and the checkpoints do not change. Episode boundaries are read from the table itself: the transition in slot
j is followed (same episode, next step) by the one in slot (j + 1) % capacity iff slot j is not the newest
transition (slot (next_index - 1) % capacity, whose successor is not written yet; once the ring is full, the
slot after it holds the oldest transition) and next_obs[j] == obs[(j + 1) % capacity] exactly (after a reset,
whether the episode was terminated or truncated, the next row's obs is the reset obs). One limitation: a reset
obs bit-equal to the last next_obs of a truncated episode would join the two episodes (a terminated transition
always cuts the sum, so only a truncation can be joined this way).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def row_width(obs_dim: int, act_dim: int, n_step: int = 1) -> int:
    """Floats in one row: 2 * obs_dim + act_dim + 2 for [obs | act | rew | next_obs | terminated] (the table's
    rows, n_step 1), one more for the n-step rows' trailing discount column (n_step > 1)."""
    return 2 * obs_dim + act_dim + 2 + (n_step > 1)


def transition_columns(rows, obs_dim: int, act_dim: int) -> tuple:
    """The obs, act, rew, next_obs, terminated columns of rows laid out [obs | act | rew | next_obs | terminated]
    (n-step rows: their trailing discount column is left out, see Minibatch.discount).

    Views for a NumPy array; slices for a TensorFlow tensor (the brain's update splits its
    one input this way). Works on a whole table, one or several minibatches, or a single row.
    """
    o, a = obs_dim, act_dim
    return (rows[..., :o], rows[..., o:o + a], rows[..., o + a], rows[..., o + a + 1:2 * o + a + 1],
            rows[..., 2 * o + a + 1])


class Minibatch:
    """Transitions as the buffer stores them: float32 rows [obs | act | rew | next_obs | terminated], with the
    five columns as views; n-step rows have one more, trailing column: the discount gamma^k (`discount`).

    `rows` has shape (batch, width), or (num_batches, batch, width) for several minibatches drawn
    together (`minibatch[k]` is the k-th). The brain's update takes `rows` as it is: one array to
    convert, no packing copy. Iterating gives the five columns in order: obs, act, rew, next_obs, terminated.
    """

    _fields = ("obs", "act", "rew", "next_obs", "terminated")

    def __init__(self, obs: ArrayLike, act: ArrayLike, rew: ArrayLike, next_obs: ArrayLike,
                 terminated: ArrayLike, discount: ArrayLike | None = None) -> None:
        """A minibatch from its five columns (and an n-step minibatch's discount column), copied into rows (the
        buffer's own minibatches use from_rows)."""
        obs, act, next_obs = (np.asarray(x, np.float32) for x in (obs, act, next_obs))
        columns = [obs, act, np.asarray(rew, np.float32)[..., None], next_obs,
                   np.asarray(terminated, np.float32)[..., None]]
        if discount is not None:
            columns.append(np.asarray(discount, np.float32)[..., None])
        self.rows = np.concatenate(columns, axis=-1)
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

    @property
    def discount(self) -> np.ndarray | None:
        """(..., batch): the bootstrap discount gamma^k of n-step rows; None for one-step rows (gamma applies)."""
        return self.rows[..., -1] if self.rows.shape[-1] > row_width(self.obs_dim, self.act_dim) else None

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
        width = row_width(self.obs_dim, self.act_dim)
        self._table = np.zeros((self.capacity, width), dtype=np.float32)
        self.obs, self.act, self.rew, self.next_obs, self.terminated = self._columns(self._table)
        self._next = 0  # ring index: the slot the next transition is written to
        self._size = 0  # number of transitions held (<= capacity)
        self._laps = 0  # times the ring index wrapped to 0: transitions ever added = laps * capacity + next
        self.rng = np.random.default_rng(seed)  # draws the sample() indices; saved with the contents
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

    def sample(self, batch_size: int, num_batches: int | None = None, n_step: int = 1,
               discount_factor: float = 0.99) -> Minibatch:
        """Draw batch_size transitions uniformly (with replacement) from those held; num_batches=K
        draws K minibatches of batch_size at once (K * batch_size indices, one gather).

        The gather copies the sampled rows into a new (batch_size, width) array, or
        (K, batch_size, width): nothing is shared with the buffer or with any other minibatch, so
        mutating a minibatch never touches the buffer or the next sample. (Its columns are
        views, not C-contiguous; the brain takes the contiguous rows.)

        n_step > 1: the same draw, each drawn transition i the start of an n-step row (width + 1 columns):
        obs and act of i, rew = sum_{j<k} gamma^j r_{i+j}, next_obs and terminated of transition i+k-1, and
        a trailing column gamma^k, the bootstrap discount (`Minibatch.discount`); k <= n_step stops early after
        a terminated transition, at an episode's end, or at the newest transition (module docstring).
        gamma is discount_factor. n_step 1 gives the buffer's rows as they are.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) \
                or batch_size <= 0:
            raise ValueError(f"sample: batch_size must be a positive integer, got {batch_size!r}")
        if num_batches is not None:
            num_batches = _positive_int(num_batches, "sample: num_batches")
        n_step = _positive_int(n_step, "sample: n_step")
        if batch_size > self._size:
            raise ValueError(f"sample: batch_size {batch_size} is larger than the "
                             f"{self._size} transitions held")
        shape = batch_size if num_batches is None else (num_batches, batch_size)
        idx = self.rng.integers(0, self._size, size=shape)
        rows = self._table[idx] if n_step == 1 else self._n_step_rows(idx, n_step, discount_factor)
        return Minibatch.from_rows(rows, self.obs_dim, self.act_dim)

    def _n_step_rows(self, start: np.ndarray, n_step: int, gamma: float) -> np.ndarray:
        """The n-step rows (width + 1 columns) of the transitions in slots `start`, any shape: one gather per step
        of the window, every row at once."""
        powers = np.float64(gamma) ** np.arange(n_step + 1)
        newest = (self._next - 1) % self.capacity
        last = start  # slot of the last transition summed so far (k = 1)
        rew = self.rew[start].astype(np.float64)
        k = np.ones(start.shape, np.int64)
        going = np.ones(start.shape, bool)  # the window goes on past `last`
        for j in range(1, n_step):
            successor = (last + 1) % self.capacity
            going &= (self.terminated[last] == 0) & (last != newest) \
                & (self.next_obs[last] == self.obs[successor]).all(axis=-1)
            if not going.any():
                break
            last = np.where(going, successor, last)
            rew += np.where(going, powers[j] * self.rew[successor], 0.0)
            k += going
        rows = np.empty(start.shape + (self._table.shape[1] + 1,), np.float32)
        rows[..., :-1] = self._table[start]
        rows[..., self._rew_col] = rew
        next_obs = self._columns(rows)[3]
        next_obs[...] = self.next_obs[last]
        rows[..., self._terminated_col] = self.terminated[last]
        rows[..., -1] = powers[k]
        return rows

    # ------------------------------------------------- rows by number (for blocAndTools.buffer_files)
    # Transitions are numbered from 0 in the order they were added (total_added counts them): transition g
    # lives in slot g % capacity while it is held.

    def held_rows(self, start: int, stop: int) -> np.ndarray:
        """The rows of transitions start..stop-1 (still held), oldest first: a view of the table when they lie in
        one stretch of slots (no copy for a writer), else a new array."""
        parts = [self._table[slots] for slots, _ in self._ring_parts(start, stop)]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def set_position(self, total_added: int) -> None:
        """Ring index, size and laps of a buffer that has received total_added transitions (a reader then fills
        the held slots with put_rows)."""
        self._laps, self._next = divmod(total_added, self.capacity)
        self._size = min(total_added, self.capacity)

    def put_rows(self, start: int, rows: np.ndarray) -> None:
        """Write rows as transitions start..start+len(rows)-1 in their slots, unchecked: the readers of buffer
        files check the values first."""
        for slots, part in self._ring_parts(start, start + len(rows)):
            self._table[slots] = rows[part]

    def _ring_parts(self, start: int, stop: int) -> list[tuple[slice, slice]]:
        """Where transitions start..stop-1 (at most capacity of them) live: (table slots, their rows from 0), 1 or 2
        parts."""
        first, n = start % self.capacity, stop - start
        head = min(n, self.capacity - first)
        parts = [(slice(first, first + head), slice(0, head))]
        if head < n:
            parts.append((slice(0, n - head), slice(head, n)))
        return parts
