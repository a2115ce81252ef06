"""The replay buffer's files: plain NumPy files read with ``allow_pickle=False`` (no pickle anywhere).

Two formats, each with the buffer's contents, ring position and sampler state:
- chunks (what a checkpoint writes): ``write_chunks`` writes only the rows added since its
  previous call, as one ``replay_chunk-<total_added>.npy``, and a JSON manifest of the chunks
  that hold the buffer, so a checkpoint of a 1e6-transition buffer costs one epoch of rows, not 1e6;
- one ``.npz`` (``write_npz`` / ``read_npz``): the whole buffer, as checkpoints wrote it before
  chunks existed. Still read, so that those run folders resume; written by the checkpoint
  benchmark's "before" design and by the tests that build such a folder.

A reader raises UserInputError with one line naming the file if it is missing, truncated, corrupt or
inconsistent, and never modifies a file.
"""
from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from blocAndTools.atomic_files import write_atomically, write_text_atomically
from blocAndTools.errors import UserInputError
from blocAndTools.replay_buffer import ReplayBuffer, row_width

_NPZ_FORMAT_VERSION = 1      # write_npz / read_npz: one .npz
_CHUNKED_FORMAT_VERSION = 2  # write_chunks / read_chunks: .npy chunks and a JSON manifest
CHUNK_PREFIX = "replay_chunk"
_CHUNK_NAME = re.compile(rf"{CHUNK_PREFIX}-\d+\.npy")
_COLUMNS = ("obs", "act", "rew", "next_obs", "terminated")
# Bit generators whose state is plain ints/strings (JSON-safe). default_rng uses PCG64.
_BIT_GENERATORS = {"PCG64": np.random.PCG64, "PCG64DXSM": np.random.PCG64DXSM,
                   "Philox": np.random.Philox, "SFC64": np.random.SFC64}


# ------------------------------------------------------------------------ chunks and a manifest

def write_chunks(buffer: ReplayBuffer, directory: str | os.PathLike, manifest_name: str,
                 previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the rows added since `previous` as one chunk file, then the manifest; return the manifest.

    previous: the manifest an earlier write_chunks of this same buffer returned, whose chunks are
    still in directory; None writes every held row. The new chunk `replay_chunk-<total_added>.npy`
    holds the transitions added since then that are still held; the manifest (JSON, written
    last) lists, oldest first, the chunks that hold the buffer's transitions, and its counters
    and sampler state. Chunks the ring has wholly overwritten are no longer listed.
    """
    directory = Path(directory)
    total, oldest = buffer.total_added, buffer.total_added - len(buffer)
    if previous is None:
        chunks, start = [], oldest
    else:
        if (previous["capacity"], previous["obs_dim"], previous["act_dim"]) != \
                (buffer.capacity, buffer.obs_dim, buffer.act_dim) or previous["total_added"] > total:
            raise ValueError("write_chunks: `previous` is not an earlier manifest of this buffer")
        chunks = [chunk for chunk in previous["chunks"] if chunk["stop"] > oldest]
        start = max(previous["total_added"], oldest)
    if start < total:
        name = f"{CHUNK_PREFIX}-{total}.npy"
        rows = buffer.held_rows(start, total)
        write_atomically(directory / name, lambda file: np.save(file, rows, allow_pickle=False), sync=True)
        chunks.append({"file": name, "start": start, "stop": total})
    manifest = {"format_version": _CHUNKED_FORMAT_VERSION, "capacity": buffer.capacity, "obs_dim": buffer.obs_dim,
                "act_dim": buffer.act_dim, "total_added": total, "rng_state": buffer.rng.bit_generator.state,
                "chunks": chunks}
    write_text_atomically(directory / manifest_name, json.dumps(manifest))
    return manifest


def read_chunks(manifest_path: str | os.PathLike) -> tuple[ReplayBuffer, dict[str, Any]]:
    """Rebuild a buffer from a manifest of write_chunks and its chunks; return it and the manifest."""
    manifest_path = Path(manifest_path)
    current = manifest_path  # the file being read, for the error message
    try:
        manifest = json.loads(manifest_path.read_text())
        if manifest["format_version"] != _CHUNKED_FORMAT_VERSION:
            raise ValueError(f"unsupported format_version {manifest['format_version']!r}")
        buffer = ReplayBuffer(manifest["capacity"], manifest["obs_dim"], manifest["act_dim"])
        width = row_width(buffer.obs_dim, buffer.act_dim)
        total, chunks = manifest["total_added"], manifest["chunks"]
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise ValueError(f"total_added must be an integer >= 0, got {total!r}")
        buffer.set_position(total)
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
            if rows.dtype != np.float32 or rows.shape != (stop - start, width):
                raise ValueError(f"array of dtype {rows.dtype} and shape {rows.shape}, expected float32 "
                                 f"and {(stop - start, width)}")
            first = max(start, oldest)
            held = np.array(rows[first - start:])  # reads the file: only the rows still held
            del rows
            if not np.isfinite(held).all():
                raise ValueError("contains NaN or inf")
            buffer.put_rows(first, held)
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


# ------------------------------------------------------------------ one .npz (before chunks existed)

def write_npz(buffer: ReplayBuffer, path: str | os.PathLike) -> None:
    """Write the held transitions, ring index and sampler state to one .npz file at path, atomically."""
    n = len(buffer)
    # A file object (not a name) so np.savez does not append ".npz" to the name.
    write_atomically(path, lambda file: np.savez(
        file,
        format_version=np.int64(_NPZ_FORMAT_VERSION),
        capacity=np.int64(buffer.capacity),
        obs_dim=np.int64(buffer.obs_dim),
        act_dim=np.int64(buffer.act_dim),
        next_index=np.int64(buffer.next_index),
        size=np.int64(n),
        rng_state=np.array(json.dumps(buffer.rng.bit_generator.state)),
        **{name: getattr(buffer, name)[:n] for name in _COLUMNS},
    ), sync=True)


def read_npz(path: str | os.PathLike) -> ReplayBuffer:
    """Rebuild a buffer written by write_npz: same contents, ring index and sampler state."""
    path = os.fspath(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            version = int(data["format_version"])
            if version != _NPZ_FORMAT_VERSION:
                raise ValueError(f"unsupported format_version {version}")
            buffer = ReplayBuffer(int(data["capacity"]), int(data["obs_dim"]), int(data["act_dim"]))
            size, next_index = int(data["size"]), int(data["next_index"])
            if not 0 <= size <= buffer.capacity:
                raise ValueError(f"size {size} outside [0, capacity {buffer.capacity}]")
            if not (0 <= next_index < buffer.capacity
                    and (size == buffer.capacity or next_index == size)):
                raise ValueError(f"ring index {next_index} inconsistent with size {size}")
            for name in _COLUMNS:
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
    buffer.set_position(size if size < buffer.capacity else buffer.capacity + next_index)
    buffer.rng = rng
    return buffer


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
