"""Where one train_step's time goes: TensorFlow's profiler, op types summed over the update's threads.

Traces `--steps` train_step calls (HalfCheetah-v5 sizes, fresh minibatches, after a warm-up)
with tf.profiler, converts the trace with TensorFlow's own framework_op_stats tool, and sums the
self-time of each op type per gradient step, with the threads' idle time. The matmuls' time is
set against their FLOPs and against one core's share of the matmul roof measured in the same run:
if the matmuls already run at the roof, the update can only get faster by idling less or by
doing fewer FLOPs.

    python -m benchmarks.update_profile [--variant v1] [--width 256] [--batch 256] [--quick]
Results: benchmarks/results/update_profile.csv (one row per op type and run)
"""
from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from benchmarks.quiet_tensorflow import tf
from benchmarks.report import print_table, save_results, wide_console
from benchmarks.train_step_benchmark import (
    ACT_DIM,
    OBS_DIM,
    estimated_step_flops,
    filled_buffer,
    matmul_gflops,
    time_train_step,
)
from blocAndTools import ExperimentSpec
from blocAndTools.tf_threads import configure_tensorflow_threads
from SoftActorCritic import SoftActorCriticBrain

RESULTS = Path(__file__).resolve().parent / "results" / "update_profile.csv"
MATMULS = ("MatMul", "_FusedMatMul")


def op_self_times(spec: ExperimentSpec, steps: int) -> dict[str, tuple[float, float]]:
    """{op type: (self-time in us, occurrences)} summed over `steps` traced train_step calls."""
    # The converter behind TensorBoard's profile plugin, shipped inside TensorFlow (no public name). Imported here:
    # a top-level `from tensorflow...` would sort before benchmarks.quiet_tensorflow and load TensorFlow loudly.
    from tensorflow.python.profiler.internal import _pywrap_profiler_plugin as profiler_plugin

    brain, buffer = SoftActorCriticBrain(spec, OBS_DIM, ACT_DIM), filled_buffer()
    for _ in range(20):
        metrics = brain.train_step(buffer.sample(spec.batch_size_in_ts))
    float(metrics["q1_loss"])
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(steps):
            metrics = brain.train_step(buffer.sample(spec.batch_size_in_ts))
        float(metrics["q1_loss"])
        tf.profiler.experimental.stop()
        trace = glob.glob(f"{logdir}/plugins/profile/*/*.xplane.pb")
        data, ok = profiler_plugin.xspace_to_tools_data(trace, "framework_op_stats", {})
    if not ok:
        raise RuntimeError(f"TensorFlow's profiler could not convert its trace: {data[:200]!r}")
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    totals: dict[str, list[float]] = collections.defaultdict(lambda: [0.0, 0.0])
    for row in table["rows"]:
        cells = dict(zip(columns, [cell.get("v") if cell else None for cell in row["c"]], strict=True))
        totals[cells["type"]][0] += cells["total_self_time"]
        totals[cells["type"]][1] += cells["occurrences"]
    return {op: (us, count) for op, (us, count) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="v1", choices=("v1", "v2"))
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--quick", action="store_true", help="30 traced steps instead of 200")
    args = parser.parse_args()
    steps = 30 if args.quick else 200
    threads = configure_tensorflow_threads()
    topo = (args.width, args.width)
    spec = ExperimentSpec(variant=args.variant, batch_size_in_ts=args.batch, phi_nn_h_layer_topo=topo,
                          psi_nn_h_layer_topo=topo, theta_nn_h_layer_topo=topo)
    cores = len(os.sched_getaffinity(0))
    core_roof = matmul_gflops() / cores
    wall_ms = time_train_step(spec, 5, steps // 5) * 1e3  # untraced
    by_op = op_self_times(spec, steps)

    total_us = sum(us for us, _ in by_op.values())
    matmul_us = sum(by_op.get(op, (0.0, 0))[0] for op in MATMULS) / steps
    flops = estimated_step_flops(args.variant, args.width, args.batch)
    rows = [{"op_type": op, "us_per_step": us / steps, "share": us / total_us, "ops_per_step": count / steps}
            for op, (us, count) in sorted(by_op.items(), key=lambda item: -item[1][0])]
    console = wide_console()
    print_table(console, f"train_step {args.variant} {args.width}x{args.width}/{args.batch}: self-time per gradient "
                         f"step by op type, summed over threads ({steps} traced steps; {threads})",
                ["op type", "us / step", "share", "ops / step"],
                [[row["op_type"], f"{row['us_per_step']:.0f}", f"{100 * row['share']:.1f} %",
                  f"{row['ops_per_step']:.0f}"] for row in rows[:15]])
    per_thread = flops / matmul_us / 1e3
    console.print(f"untraced: {wall_ms:.2f} ms per step on {cores} cores; traced, the threads' time sums to "
                  f"{total_us / steps / 1e3:.2f} ms per step. Matmuls: {matmul_us / 1e3:.2f} ms of thread time "
                  f"for ~{flops / 1e9:.3f} GFLOP = {per_thread:.1f} GFLOP/s per thread, against {core_roof:.1f} "
                  f"GFLOP/s per core at the 2048x2048 matmul roof. At the roof, with no idle time and nothing "
                  f"else, a step would take {flops / (core_roof * cores) / 1e6:.2f} ms.")

    frame = pd.DataFrame(rows).assign(variant=args.variant, width=args.width, batch=args.batch, steps=steps,
                                      wall_ms_per_step=wall_ms, core_roof_gflops=core_roof,
                                      gflop_per_step=flops / 1e9, tf_threads=threads,
                                      mode="quick" if args.quick else "full")
    save_results(frame, RESULTS, append=True, float_format="%.4g")
    console.print(f"added to {RESULTS}")


if __name__ == "__main__":
    main()
