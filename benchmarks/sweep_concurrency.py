"""Two Ray trials side by side or one after the other: which gives more env steps per second in total?

Runs the same 2-run sweep (experiments/pendulum.yaml, 256x256 networks, batch 256, seeds 0 and 1)
through the CLI with `--backend ray --max-concurrent 1` and `--max-concurrent 2`, alternating
(sequential, concurrent, concurrent, sequential by default) so that a loaded machine's drift hits both.

    python -m benchmarks.sweep_concurrency [--quick] [--rounds 2]

Per sweep: the training rate of each trial (env steps/s of the epochs after the warm-up, from
progress.csv's steps_per_s, evaluation excluded), the total rate (the two trials' sum when they run
side by side, one trial's when they run in turn), and the wall time of the whole command (Ray's
start and TensorFlow's imports included). Writes benchmarks/results/sweep_concurrency.csv.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.report import print_table, save_results, wide_console

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "benchmarks" / "results" / "sweep_concurrency.csv"


def run_sweep(concurrent: int, epochs: int, epoch_steps: int, folder: Path) -> dict:
    """One 2-trial sweep; returns its measurements."""
    command = [sys.executable, "-m", "SoftActorCritic", "train", "--spec", str(REPO / "experiments" / "pendulum.yaml"),
               "--set", f"max_epoch={epochs}", "--set", f"timestep_per_epoch={epoch_steps}", "--set", "seed=0",
               "--set", "max_eval_trj=1", "--set", "expected_reward_goal=null", "--reruns", "2",
               "--backend", "ray", "--max-concurrent", str(concurrent), "--run-dir", str(folder)]
    start = time.perf_counter()
    subprocess.run(command, check=True, cwd=REPO, capture_output=True,
                   env=dict(os.environ, PYTHONPATH=str(REPO), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0"))
    wall = time.perf_counter() - start
    frames = [pd.read_csv(path) for path in sorted(folder.rglob("progress.csv")) if ".ray_tune" not in path.parts]
    rates = [frame["steps_per_s"].iloc[1:].median() for frame in frames]  # after the warm-up epoch
    steps = sum(int(frame["env_steps"].iloc[-1]) for frame in frames)
    return {"trials_at_a_time": concurrent, "trial_steps_per_s": " / ".join(f"{rate:.0f}" for rate in rates),
            "total_steps_per_s": round(float(sum(rates) if concurrent == 2 else sum(rates) / len(rates)), 1),
            "env_steps": steps, "command_wall_s": round(wall, 1),
            "steps_per_wall_s": round(steps / wall, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 epochs of 500 steps (checks the script)")
    parser.add_argument("--rounds", type=int, default=2, help="pairs of sweeps, alternating the order")
    args = parser.parse_args()
    epochs, epoch_steps = (2, 500) if args.quick else (4, 2000)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.rounds):
            for concurrent in ((1, 2) if index % 2 == 0 else (2, 1)):
                row = run_sweep(concurrent, epochs, epoch_steps, Path(tmp) / f"sweep{len(rows)}")
                rows.append(row)
                print(row, flush=True)
    console = wide_console()
    print_table(console, f"2-trial sweeps, {'quick' if args.quick else 'full'}", list(rows[0]),
                [list(row.values()) for row in rows])
    if not args.quick:
        save_results(pd.DataFrame(rows), OUT)
        console.print(f"written to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
