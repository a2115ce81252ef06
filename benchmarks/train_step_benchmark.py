"""Gradient steps per second of SoftActorCriticBrain.train_step and train_steps, with a roofline next to them.

For each variant, network width and batch size: the median time of several timed blocks
of train_step calls after warm-up (fresh minibatches from a ReplayBuffer, as in training),
the same for train_steps taking a block's K steps in one call (K minibatches from one
sample; in a child process with the thread pools of K steps per call), the estimated
FLOPs of one step, the GFLOP/s train_step reaches, and the float32 matmul GFLOP/s of this
machine measured in the same run. Also the latency of one single-observation action.

    python -m benchmarks.train_step_benchmark            # full grid, a few minutes
    python -m benchmarks.train_step_benchmark --quick    # under two minutes
Results: benchmarks/results/train_step_benchmark.csv
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.quiet_tensorflow import tf
from benchmarks.report import print_table, save_results, wide_console
from blocAndTools import ExperimentSpec, ReplayBuffer
from blocAndTools.tf_threads import configure_tensorflow_threads
from SoftActorCritic import SoftActorCriticBrain

OBS_DIM, ACT_DIM = 17, 6  # HalfCheetah-v5
REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "train_step_benchmark.csv"


def dense_flops(batch: int, sizes: list[int]) -> int:
    """Multiply-adds x 2 of one forward pass through Dense layers of the given widths."""
    return sum(2 * batch * n_in * n_out for n_in, n_out in zip(sizes, sizes[1:], strict=False))


def estimated_step_flops(variant: str, width: int, batch: int) -> int:
    """FLOPs of one update: forward passes, and about twice as much again for each backward pass."""
    phi = dense_flops(batch, [OBS_DIM, width, width, 2 * ACT_DIM])
    critic = dense_flops(batch, [OBS_DIM + ACT_DIM, width, width, 1])
    value = dense_flops(batch, [OBS_DIM, width, width, 1])
    # phi fwd+bwd; 2 Q on (s, a~) fwd+bwd (actor gradient); 2 Q on (s, a) fwd+bwd;
    total = 3 * phi + 2 * 3 * critic + 2 * 3 * critic
    if variant == "v1":
        total += 3 * value + value  # V_psi fwd+bwd, frozen_V_psi fwd
    else:
        total += phi + 2 * critic  # phi on s', 2 frozen Q on (s', a')
    return total


def matmul_gflops(n: int = 2048, repeats: int = 5) -> float:
    """Median float32 GFLOP/s of n x n matmuls, one per core side by side: the roof of this machine.

    Independent matmuls use every core whatever the thread setting (one thread per op included).
    """
    cores = len(os.sched_getaffinity(0))
    matrices = [tf.random.normal([n, n]) for _ in range(cores)]
    matmuls = tf.function(lambda xs: [tf.reduce_sum(tf.matmul(x, x)) for x in xs])
    matmuls(matrices)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        [total.numpy() for total in matmuls(matrices)]
        times.append(time.perf_counter() - start)
    return cores * 2 * n ** 3 / statistics.median(times) / 1e9


def filled_buffer() -> ReplayBuffer:
    """10,000 random transitions of HalfCheetah's sizes."""
    buffer = ReplayBuffer(10_000, OBS_DIM, ACT_DIM, seed=0)
    rng = np.random.default_rng(0)
    buffer.add_batch(rng.normal(size=(10_000, OBS_DIM)), rng.uniform(-1, 1, (10_000, ACT_DIM)),
                     rng.normal(size=10_000), rng.normal(size=(10_000, OBS_DIM)), np.zeros(10_000))
    return buffer


def time_train_step(spec: ExperimentSpec, blocks: int, steps_per_block: int) -> float:
    """Median seconds per train_step over `blocks` timed blocks, after a warm-up block."""
    brain, buffer = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM), filled_buffer()
    for _ in range(steps_per_block):
        brain.train_step(buffer.sample(spec.batch_size_in_ts))
    brain.updates.numpy()
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(steps_per_block):
            metrics = brain.train_step(buffer.sample(spec.batch_size_in_ts))
        float(metrics["q1_loss"])  # wait for the last step to finish
        times.append((time.perf_counter() - start) / steps_per_block)
    return statistics.median(times)


def time_train_steps(spec: ExperimentSpec, blocks: int, steps_per_block: int) -> float:
    """Median seconds per gradient step of train_steps taking a block's steps_per_block steps in one call
    (steps_per_block minibatches from one sample), after a warm-up call (XLA compiles there)."""
    brain, buffer = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM), filled_buffer()
    times = []
    for block in range(blocks + 1):
        start = time.perf_counter()
        float(brain.train_steps(buffer.sample(spec.batch_size_in_ts, num_batches=steps_per_block))["q1_loss"])
        if block:
            times.append((time.perf_counter() - start) / steps_per_block)
    return statistics.median(times)


def time_train_steps_apart(specs: list[ExperimentSpec], blocks: int, steps_per_block: int) -> list[float]:
    """time_train_steps of each spec, measured in a child process with the thread pools an agent taking
    steps_per_block steps per call runs with (tf_threads): TensorFlow fixes its pools once per process, and
    this one has the one-step setting of train_step."""
    child = subprocess.run([sys.executable, "-m", "benchmarks.train_step_benchmark", "--k-per-call-child",
                            str(steps_per_block), "--blocks", str(blocks)], cwd=REPO,
                           input=json.dumps([spec.to_dict() for spec in specs]), stdout=subprocess.PIPE, text=True,
                           check=True)
    return json.loads(child.stdout.splitlines()[-1])


def k_per_call_child(steps_per_block: int, blocks: int) -> None:
    """The child of time_train_steps_apart: specs as JSON on stdin, seconds per step as JSON on stdout."""
    configure_tensorflow_threads(steps_per_block)
    specs = [ExperimentSpec(**fields) for fields in json.loads(sys.stdin.read())]
    print(json.dumps([time_train_steps(spec, blocks, steps_per_block) for spec in specs]))


def time_action(width: int, repeats: int = 2000) -> float:
    """Median microseconds of one stochastic action on one observation, as the training loop acts."""
    brain = SoftActorCriticBrain(ExperimentSpec(phi_nn_h_layer_topo=(width, width)), OBS_DIM, ACT_DIM)
    obs = np.zeros(OBS_DIM, np.float32)
    brain.numpy_actor().sample(obs, brain.action_rng)
    samples = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(repeats // 5):
            brain.numpy_actor().sample(obs, brain.action_rng)
        samples.append((time.perf_counter() - start) / (repeats // 5) * 1e6)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="two sizes, fewer blocks (under two minutes)")
    parser.add_argument("--k-per-call-child", type=int, help=argparse.SUPPRESS)  # see time_train_steps_apart
    parser.add_argument("--blocks", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.k_per_call_child:
        k_per_call_child(args.k_per_call_child, args.blocks)
        return
    threads = configure_tensorflow_threads()
    if args.quick:
        cases = [(v, 64, 100) for v in ("v1", "v2")] + [(v, 256, 256) for v in ("v1", "v2")]
        blocks, steps = 3, 30
    else:
        cases = [(v, w, b) for v in ("v1", "v2") for w in (64, 256, 512) for b in (100, 256, 1024)]
        blocks, steps = 5, 50

    roof = matmul_gflops()
    specs = [ExperimentSpec(variant=variant, batch_size_in_ts=batch, phi_nn_h_layer_topo=(width, width),
                            psi_nn_h_layer_topo=(width, width), theta_nn_h_layer_topo=(width, width))
             for variant, width, batch in cases]
    k_per_call = time_train_steps_apart(specs, blocks, steps)
    rows = []
    for (variant, width, batch), spec, fused in zip(cases, specs, k_per_call, strict=True):
        seconds = time_train_step(spec, blocks, steps)
        flops = estimated_step_flops(variant, width, batch)
        rows.append({"variant": variant, "width": width, "batch": batch, "ms_per_step": seconds * 1e3,
                     "steps_per_s": 1.0 / seconds, "ms_per_step_k_per_call": fused * 1e3,
                     "k_per_call": steps, "gflop_per_step": flops / 1e9,
                     "achieved_gflops": flops / seconds / 1e9, "matmul_gflops": roof,
                     "fraction_of_roof": flops / seconds / 1e9 / roof})
    action_us = {width: time_action(width) for width in (64, 256)}

    console = wide_console()
    print_table(console, f"train_step on {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
                         f"TF {tf.__version__}, {threads} (medians; matmul roof {roof:.0f} GFLOP/s)",
                ["variant", "width", "batch", "ms/step", "steps/s", f"ms/step, {steps} per call", "GFLOP/step",
                 "GFLOP/s", "% of roof"],
                [[row["variant"], row["width"], row["batch"], f"{row['ms_per_step']:.2f}", f"{row['steps_per_s']:.0f}",
                  f"{row['ms_per_step_k_per_call']:.2f}", f"{row['gflop_per_step']:.3f}",
                  f"{row['achieved_gflops']:.1f}", f"{100 * row['fraction_of_roof']:.0f}"] for row in rows])
    console.print(f"ms/step: one train_step call per gradient step; ms/step, {steps} per call: train_steps taking "
                  f"{steps} steps on {steps} minibatches from one sample in one call (XLA), in a process of its "
                  f"own with the threads of {steps} steps per call; "
                  f"steps/s, GFLOP/s and % of roof are train_step's.")
    for width, micros in action_us.items():
        console.print(f"sample_action, one observation, {width}x{width} actor: {micros:.0f} us (median)")

    frame = pd.DataFrame(rows)
    for width, micros in action_us.items():
        frame[f"sample_action_us_{width}"] = micros
    frame["mode"] = "quick" if args.quick else "full"
    frame["tf_threads"] = threads
    save_results(frame, RESULTS, append=True, float_format="%.4g")
    console.print(f"added to {RESULTS}")


if __name__ == "__main__":
    main()
