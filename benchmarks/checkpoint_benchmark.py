"""Checkpoint cost with a full HalfCheetah-sized replay buffer: the whole buffer rewritten vs incremental chunks.

A 1e6-transition buffer (obs 17, act 6: 168 bytes a transition, 168 MB) is filled, then each
round adds one epoch of transitions and writes one checkpoint with each design side by side:
  before: the buffer rewritten whole every checkpoint (replay_buffer-N.npz), as RunCheckpointer did;
  after:  RunCheckpointer now: only the rows added since the previous checkpoint (one .npy chunk)
          and a JSON manifest.
Both also write the run state and the TF checkpoint of a default (256x256) SAC v1 brain, and
fsync the buffer files. Reported: the median seconds and bytes written per checkpoint (files
created or replaced by the save; the TF checkpoint is ~3.9 MB of it), the buffer's share of the
bytes, and the time to restore the newest checkpoint.

    python -m benchmarks.checkpoint_benchmark            # 1e6 transitions, a few minutes
    python -m benchmarks.checkpoint_benchmark --quick    # 1e5 transitions, under a minute
Results: benchmarks/results/checkpoint_benchmark.csv (--quick: checkpoint_benchmark_quick.csv)
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
import pandas as pd

from benchmarks.report import print_table, save_results, wide_console
from blocAndTools import ExperimentSpec, ReplayBuffer, buffer_files
from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.checkpointing import RunCheckpointer
from SoftActorCritic import SoftActorCriticBrain

OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah
RESULTS = Path(__file__).resolve().parent / "results" / "checkpoint_benchmark.csv"


class WholeBufferCheckpointer(RunCheckpointer):
    """The former RunCheckpointer.save: the whole buffer to replay_buffer-N.npz every checkpoint."""

    def save(self, number, buffer, state):
        self.directory.mkdir(parents=True, exist_ok=True)
        buffer_files.write_npz(buffer, self.directory / f"replay_buffer-{number}.npz")
        write_text_atomically(self._state_path(number), json.dumps(state))
        self.manager.save(checkpoint_number=number)
        self._remove_dropped_parts()


def add_random(buffer: ReplayBuffer, n: int, rng: np.random.Generator) -> None:
    """n random transitions, added in blocks of at most 100,000."""
    for start in range(0, n, 100_000):
        k = min(100_000, n - start)
        buffer.add_batch(rng.standard_normal((k, OBS_DIM), np.float32), rng.uniform(-1, 1, (k, ACT_DIM)),
                         rng.standard_normal(k, np.float32), rng.standard_normal((k, OBS_DIM), np.float32),
                         rng.random(k) < 0.001)


def file_versions(folder: Path) -> dict[str, tuple[int, int, int]]:
    return {path.name: (path.stat().st_ino, path.stat().st_mtime_ns, path.stat().st_size)
            for path in folder.rglob("*") if path.is_file()}


def timed_save(checkpointer: RunCheckpointer, number: int, buffer: ReplayBuffer) -> tuple[float, int, int]:
    """(seconds, bytes of the files the save created or replaced, those of the buffer's files)."""
    before = file_versions(checkpointer.directory) if checkpointer.directory.exists() else {}
    start = time.perf_counter()
    checkpointer.save(number, buffer, {"env_steps": number})
    seconds = time.perf_counter() - start
    after = file_versions(checkpointer.directory)
    written = {name: version[2] for name, version in after.items() if before.get(name) != version}
    return seconds, sum(written.values()), sum(size for name, size in written.items() if name.startswith("replay"))


def run(capacity: int, epoch_rows: list[int], rounds: int, folder: Path) -> list[dict]:
    """One row per (design, rows added per checkpoint): median and min seconds, median bytes, restore seconds."""
    rng = np.random.default_rng(0)
    brain = SoftActorCriticBrain(ExperimentSpec(), OBS_DIM, ACT_DIM)
    rows = []
    for n in epoch_rows:
        buffer = ReplayBuffer(capacity, OBS_DIM, ACT_DIM, seed=0)
        add_random(buffer, capacity, rng)
        designs = {"before: whole buffer": WholeBufferCheckpointer, "after: incremental": RunCheckpointer}
        checkpointers = {name: cls(folder / f"{n}-{i}", brain.trackables()) for i, (name, cls) in
                         enumerate(designs.items())}
        for checkpointer in checkpointers.values():
            checkpointer.save(buffer.total_added, buffer, {})  # a full buffer already on disk, as after many epochs
        measured = {name: [] for name in designs}
        for _ in range(rounds):
            add_random(buffer, n, rng)
            for name, checkpointer in checkpointers.items():  # side by side: a load burst hits both alike
                measured[name].append(timed_save(checkpointer, buffer.total_added, buffer))
        for name, checkpointer in checkpointers.items():
            start = time.perf_counter()
            restored, _ = RunCheckpointer(checkpointer.directory, brain.trackables()).restore_latest()
            restore_s = time.perf_counter() - start
            np.testing.assert_array_equal(restored._table, buffer._table)
            del restored
            seconds, written, buffer_written = zip(*measured[name], strict=True)
            rows.append({"design": name, "capacity": capacity, "rows_per_checkpoint": n, "checkpoints": rounds,
                         "median_s": statistics.median(seconds), "min_s": min(seconds),
                         "median_bytes": int(statistics.median(written)),
                         "median_buffer_bytes": int(statistics.median(buffer_written)), "restore_s": restore_s})
        del buffer
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1e5 transitions and fewer rounds: under a minute")
    args = parser.parse_args()
    capacity, rounds = (100_000, 3) if args.quick else (1_000_000, 7)
    console = wide_console(110)
    console.print(f"Checkpoint benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
                  f"NumPy {np.__version__}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}")
    with tempfile.TemporaryDirectory(dir=os.environ.get("CHECKPOINT_BENCHMARK_DIR")) as folder:
        rows = run(capacity, [1000, 5000], rounds, Path(folder))
    print_table(console, f"One checkpoint with a full buffer of {capacity:,} transitions (obs {OBS_DIM}, act "
                         f"{ACT_DIM}; medians of {rounds})",
                ["design", "rows added", "seconds", "min s", "bytes written", "of which buffer", "restore s"],
                [[row["design"], f"{row['rows_per_checkpoint']:,}", f"{row['median_s']:.3f}", f"{row['min_s']:.3f}",
                  f"{row['median_bytes']:,}", f"{row['median_buffer_bytes']:,}", f"{row['restore_s']:.2f}"]
                 for row in rows])
    results = RESULTS.with_name(RESULTS.stem + "_quick.csv") if args.quick else RESULTS
    save_results(pd.DataFrame(rows), results, float_format="%.6g")
    console.print(f"Saved {results}")


if __name__ == "__main__":
    main()
