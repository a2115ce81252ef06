"""End-to-end environment steps per second of training, and where a step's time goes.

Runs the real training loop (SoftActorCriticAgent.run_epoch, with the live progress bar
drawn to a hidden terminal) with timers wrapped around each call it makes: action
selection, env.step, buffer add, buffer sample, the update (train_step / train_steps), and the
progress bar (logging); 'loop' is the rest of the loop's own Python. One epoch of min_pool_size
random steps fills the buffer first; then one gradient step per environment step is timed, and
for HalfCheetah also gradient_step_interval = gradient_steps = 64 ("train every 64 steps": 64
gradient steps in one call every 64 env steps), with the peers' train_freq = gradient_steps = 64.
Evaluation is not part of it. Also the replay buffer's bytes and the peak resident memory,
and, when the peer environment exists (bash benchmarks/peers/setup.sh), the end-to-end rate
of Stable-Baselines3 and sbx on the same task in the same run.

    python -m benchmarks.training_throughput            # HalfCheetah-v5 and Pendulum-v1, ~10 minutes
    python -m benchmarks.training_throughput --quick    # under two minutes
Results: benchmarks/results/training_throughput.csv
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from benchmarks.peer_benchmark import peer_python, run_peer
from benchmarks.quiet_tensorflow import tf
from benchmarks.report import print_table, save_results, wide_console
from blocAndTools import ExperimentSpec
from blocAndTools.run_logging import ConsoleView
from blocAndTools.tf_threads import configure_tensorflow_threads
from SoftActorCritic.agent import SoftActorCriticAgent
from SoftActorCritic.metrics import COLUMNS

BENCHMARKS = Path(__file__).resolve().parent
EXPERIMENTS = BENCHMARKS.parent / "experiments"
RESULTS = BENCHMARKS / "results" / "training_throughput.csv"
PARTS = ["act", "env_step", "buffer_add", "buffer_sample", "train_step", "logging"]


def resident_mib() -> float:
    """This process's current resident memory (Linux /proc/self/statm)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


class Stopwatches:
    """Total seconds spent in each wrapped call."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    def wrap(self, part: str, function):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - start
        return timed


def measure(spec: ExperimentSpec, steps: int, every: int = 1) -> dict:
    """Steps per second of `steps` training steps after a random warm-up of spec.min_pool_size steps,
    with `every` gradient steps in one call every `every` env steps."""
    spec = spec.replace(timestep_per_epoch=steps, min_pool_size=steps, gradient_step_interval=every,
                        gradient_steps=every, max_epoch=2)
    agent = SoftActorCriticAgent(spec)
    agent.run_epoch()  # random actions: fills the buffer to min_pool_size
    # the first call optimises the graph (XLA compiles the K-step update)
    agent.brain.train_steps(agent.buffer.sample(spec.batch_size_in_ts, num_batches=every))
    agent.epoch += 1

    watches = Stopwatches()
    agent._act = watches.wrap("act", agent._act)
    agent.playground.step = watches.wrap("env_step", agent.playground.step)
    agent.buffer.add = watches.wrap("buffer_add", agent.buffer.add)
    agent.buffer.sample = watches.wrap("buffer_sample", agent.buffer.sample)
    agent.brain.train_steps = watches.wrap("train_step", agent.brain.train_steps)
    view = ConsoleView(COLUMNS, Console(file=io.StringIO(), force_terminal=True))  # the live bar, drawn out of sight
    start = time.perf_counter()
    with view.epoch_progress(2, steps) as advance:
        agent.run_epoch(watches.wrap("logging", advance))
    total = time.perf_counter() - start

    # A full buffer costs its arrays and nothing more: fill the rest and compare the growth of
    # resident memory with the bytes of the rows written (the table's pages are touched only now).
    free = spec.pool_capacity - len(agent.buffer)
    rss_before, chunk = resident_mib(), 10_000
    for first in range(0, free, chunk):
        rows = np.zeros((min(chunk, free - first), agent.buffer.obs_dim))
        agent.buffer.add_batch(rows, np.zeros((len(rows), agent.buffer.act_dim)), np.zeros(len(rows)), rows,
                               np.zeros(len(rows)))
    rss_growth, rows_written = resident_mib() - rss_before, free * agent.buffer.nbytes / spec.pool_capacity / 2 ** 20
    agent.close()

    row = {"env": spec.env_id, "library": "this project", "variant": spec.variant, "alpha": str(spec.alpha),
           "width": spec.theta_nn_h_layer_topo[0], "batch": spec.batch_size_in_ts, "steps": steps,
           "gradient_steps_every": every, "steps_per_s": steps / total, "ms_per_step": total / steps * 1e3,
           "buffer_mb": agent.buffer.nbytes / 2 ** 20, "pool_capacity": spec.pool_capacity,
           "fill_rss_growth_mb": rss_growth, "fill_rows_mb": rows_written}
    for part in PARTS:
        row[f"{part}_us"] = watches.seconds[part] / steps * 1e6
    row["loop_us"] = (total - sum(watches.seconds.values())) / steps * 1e6
    not_update_or_env = total - watches.seconds["train_step"] - watches.seconds["env_step"]
    row["overhead_fraction"] = not_update_or_env / total  # the target: at most 0.15
    return row


def peer_rows(spec: ExperimentSpec, steps: int, every: int = 1) -> list[dict]:
    """The peers' end-to-end rate on the same task and sizes (their SAC is v2 with a learned alpha),
    with train_freq = gradient_steps = every."""
    rows = []
    for library in ("sb3", "sbx"):
        result = run_peer(library, "throughput", env=spec.env_id, width=spec.theta_nn_h_layer_topo[0],
                          batch=spec.batch_size_in_ts, steps=2 * steps, min_pool=steps, train_freq=every,
                          gradient_steps=every)
        rate = result["steps_per_s_warm"] or result["steps_per_s"]  # sbx compiles during its first steps
        rows.append({"env": spec.env_id, "library": library, "variant": "v2", "alpha": "auto",
                     "width": spec.theta_nn_h_layer_topo[0], "batch": spec.batch_size_in_ts, "steps": steps,
                     "gradient_steps_every": every, "steps_per_s": rate, "ms_per_step": 1e3 / rate,
                     "peak_rss_mb": result["peak_rss_mb"]})
    return rows


def every_64_row(quick: bool) -> dict:
    """The row of 64 gradient steps in one call every 64 env steps, measured in a process of its own: the
    thread pools a run takes from gradient_steps (tf_threads.thread_setting) are fixed per process."""
    child = subprocess.run([sys.executable, "-m", "benchmarks.training_throughput", "--every", "64",
                            *(["--quick"] if quick else [])], cwd=BENCHMARKS.parent, capture_output=True, text=True,
                           check=True)
    return json.loads(child.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 timed steps per case (under two minutes)")
    parser.add_argument("--no-peers", action="store_true", help="skip the peers even if their environment exists")
    parser.add_argument("--every", type=int, default=1, help=argparse.SUPPRESS)  # the child process of the 64 row
    args = parser.parse_args()
    steps = 1000 if args.quick else 5000
    # the agent would set the threads too (from gradient_steps); here before any TensorFlow op
    threads = configure_tensorflow_threads(args.every)
    halfcheetah = ExperimentSpec.from_yaml(EXPERIMENTS / "halfcheetah.yaml")
    if args.every > 1:
        row = measure(halfcheetah, steps, every=args.every)
        row["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        print(json.dumps({**row, "tf_threads": threads}, default=float))
        return
    pendulum = ExperimentSpec.from_yaml(EXPERIMENTS / "pendulum.yaml")
    cases = [halfcheetah, halfcheetah.replace(variant="v2", alpha="auto")]
    if not args.quick:
        cases.append(pendulum)

    rows = [measure(spec, steps) for spec in cases] + [every_64_row(args.quick)]
    peers = peer_python() is not None and not args.no_peers
    if peers:
        rows += peer_rows(halfcheetah, steps) + peer_rows(halfcheetah, steps, every=64)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    for row in rows:
        if row["library"] == "this project":
            row.setdefault("peak_rss_mb", rss_mb)
            row.setdefault("tf_threads", threads)

    console = wide_console(200)
    table_rows = []
    for row in rows:
        parts = [f"{row[f'{p}_us']:.0f}" if f"{p}_us" in row else "" for p in PARTS + ["loop"]]
        share = f"{100 * row['overhead_fraction']:.1f} %" if "overhead_fraction" in row else ""
        table_rows.append([row["env"], row["library"], f"{row['variant']} alpha {row['alpha']}",
                           f"{row['width']}/{row['batch']}", row["gradient_steps_every"], f"{row['steps_per_s']:.0f}",
                           f"{row['ms_per_step']:.2f}", *parts, share])
    print_table(console, f"training steps per second, one gradient step per env step: 'train every' 1 (one step "
                         f"per call) or 64 (64 steps in one call); {steps} timed steps; "
                         f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"TF {tf.__version__}, {threads})",
                ["env", "library", "variant", "net/batch", "train every", "steps/s", "ms/step"]
                + [f"{p} us" for p in PARTS] + ["loop us", "not update or env"], table_rows)
    console.print(f"replay buffer of {halfcheetah.pool_capacity:,} HalfCheetah transitions: "
                  f"{rows[0]['buffer_mb']:.0f} MiB of arrays; filling it to capacity grew resident memory by "
                  f"{rows[0]['fill_rss_growth_mb']:.0f} MiB for {rows[0]['fill_rows_mb']:.0f} MiB of rows written; "
                  f"peak resident memory of this process (full buffers): {rss_mb:.0f} MiB")
    if not peers:
        console.print("peers not measured: run `bash benchmarks/peers/setup.sh` once to include them")

    frame = pd.DataFrame(rows)
    frame["mode"] = "quick" if args.quick else "full"
    save_results(frame, RESULTS, append=True, float_format="%.4g")
    console.print(f"added to {RESULTS}")


if __name__ == "__main__":
    main()
