"""This project's SAC gradient step and action latency next to Stable-Baselines3 (PyTorch) and sbx (JAX).

The peers run in their own virtual environment (benchmarks/peers/.venv, made by
`bash benchmarks/peers/setup.sh`) through benchmarks/peers/peer_sac.py as a subprocess that
prints one JSON line: this project never imports torch, SB3, JAX or sbx. One invocation
measures, one after the other, this project (train_step_benchmark's time_train_step,
time_train_steps_apart and time_action, v1 and v2 with alpha 'auto'), then SB3, then sbx, at two sizes on
HalfCheetah-v5 dimensions (obs 17, act 6): 64x64 networks with batch 100, 256x256 with 256.
Each library is timed both ways: S gradient steps in one call (the project's train_steps,
the peers' train(gradient_steps=S); S = the steps of a timed block) and one step per call.

    python -m benchmarks.peer_benchmark            # a few minutes
    python -m benchmarks.peer_benchmark --quick    # under two minutes
    python -m benchmarks.peer_benchmark --family   # DroQ and CrossQ per env step against sbx's, and REDQ's
Results: benchmarks/results/peer_benchmark.csv (one row per library, variant and size; each run adds its rows),
peer_family_benchmark.csv (--family).

peer_python() and run_peer() are also used by other benchmarks (training_throughput.py).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

from benchmarks.report import print_table, save_results, wide_console

BENCHMARKS = Path(__file__).resolve().parent
PEER_VENV = BENCHMARKS / "peers" / ".venv"
PEER_SCRIPT = BENCHMARKS / "peers" / "peer_sac.py"
RESULTS = BENCHMARKS / "results" / "peer_benchmark.csv"
FAMILY_RESULTS = BENCHMARKS / "results" / "peer_family_benchmark.csv"
SETUP_HINT = "peer environment missing: run `bash benchmarks/peers/setup.sh` first (creates benchmarks/peers/.venv)"
SIZES = [(64, 100), (256, 256)]  # (network width, batch size)
PEERS = {"sb3": "Stable-Baselines3", "sbx": "sbx"}


def peer_python() -> Path | None:
    """The peer venv's python, or None when benchmarks/peers/.venv has not been set up."""
    python = PEER_VENV / "bin" / "python"
    return python if python.exists() else None


def run_peer(library: str, measure: str, **options) -> dict:
    """Run peers/peer_sac.py in the peer venv and return its JSON result.

    options become command-line flags (min_pool=1000 -> --min-pool 1000); see
    `peer_sac.py --help`. A missing venv, a failing child or output without a JSON line
    raises RuntimeError naming the command and quoting the child's last stderr lines.
    """
    python = peer_python()
    if python is None:
        raise RuntimeError(SETUP_HINT)
    command = [str(python), str(PEER_SCRIPT), "--library", library, "--measure", measure]
    for name, value in options.items():
        command += [f"--{name.replace('_', '-')}", str(value)]
    # The child gets nothing of this project's import path: it sees only its own packages.
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    child = subprocess.run(command, capture_output=True, text=True, env=env)
    lines = [line for line in child.stdout.splitlines() if line.strip()]
    if child.returncode == 0 and lines:
        try:
            return json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    stderr_tail = "\n".join(child.stderr.splitlines()[-15:])
    raise RuntimeError(f"{' '.join(command[1:])} failed (exit {child.returncode}, stdout {child.stdout[-200:]!r}):\n"
                       f"{stderr_tail}")


def measure_project(blocks: int, steps_per_block: int) -> list[dict]:
    """Rows for this project: v1 and v2 (alpha 'auto') at each size, train_steps (S steps per call) and
    train_step (one per call), and sample_action latency."""
    # Imported here, not at the top: peer_python/run_peer stay usable without loading TensorFlow.
    from benchmarks.train_step_benchmark import time_action, time_train_step, time_train_steps_apart
    from blocAndTools import ExperimentSpec
    from blocAndTools.tf_threads import configure_tensorflow_threads

    configure_tensorflow_threads()  # one step per call, before TensorFlow's first op, as the training runner does
    cases = [(label, variant, alpha, width, batch) for width, batch in SIZES
             for label, variant, alpha in (("v1", "v1", 1.0), ("v2-auto", "v2", "auto"))]
    specs = [ExperimentSpec(variant=variant, alpha=alpha, batch_size_in_ts=batch, phi_nn_h_layer_topo=(width, width),
                            psi_nn_h_layer_topo=(width, width), theta_nn_h_layer_topo=(width, width))
             for _, variant, alpha, width, batch in cases]
    k_per_call = time_train_steps_apart(specs, blocks, steps_per_block)
    rows = []
    for (label, _, _, width, batch), spec, fused in zip(cases, specs, k_per_call, strict=True):
        rows.append({"library": "project", "variant": label, "width": width, "batch": batch,
                     "ms_per_step": fused * 1e3,
                     "ms_per_step_one_per_call": time_train_step(spec, blocks, steps_per_block) * 1e3})
    action_us = {width: time_action(width) for width, _ in SIZES}
    for row in rows:
        row["action_us"] = action_us[row["width"]]
        row["action_policy_call_us"] = None
    return rows


def measure_peer(library: str, blocks: int, steps_per_block: int, quick: bool) -> tuple[list[dict], dict]:
    """Rows for one peer library at each size (train_step, then action), and its reported versions.

    The buffer holds 10,000 random HalfCheetah transitions like the project's benchmark
    (2,000 in quick mode: sampling a minibatch costs the same, filling it costs less).
    """
    rows, versions = [], {}
    for width, batch in SIZES:
        step = run_peer(library, "train_step", width=width, batch=batch, env="HalfCheetah-v5",
                        steps=2_000 if quick else 10_000, blocks=blocks, steps_per_block=steps_per_block)
        rows.append({"library": library, "variant": "sac-auto", "width": width, "batch": batch,
                     "ms_per_step": step["ms_per_step"], "ms_per_step_one_per_call": step["ms_per_step_train1"]})
        versions = step["versions"]
    for row in rows:
        action = run_peer(library, "action", width=row["width"], batch=row["batch"], env="HalfCheetah-v5",
                          blocks=5, steps_per_block=200 if quick else 400)
        row["action_us"] = action["action_predict_us"]
        row["action_policy_call_us"] = action["action_policy_call_us"]
    return rows, versions


# The SAC family per env step (issue 27): each variant's shipped spec against sbx's same algorithm (sbx has no REDQ).
FAMILY = {"droq": "experiments/droq.yaml", "crossq": "experiments/crossq.yaml", "redq": "experiments/redq.yaml"}
SBX_FAMILY = ("droq", "crossq")


def measure_family(blocks: int, quick: bool) -> list[dict]:
    """Milliseconds per env step of DroQ and REDQ (their gradient_steps, 20, in one call) and CrossQ (one step per
    call): this project with the FAMILY specs at HalfCheetah's sizes, and sbx's DroQ and CrossQ (peer_sac.py's
    make_model) with the same batch."""
    from benchmarks.train_step_benchmark import time_train_step, time_train_steps_apart
    from blocAndTools import ExperimentSpec

    rows = []
    for algo, spec_file in FAMILY.items():
        spec = ExperimentSpec.from_yaml(BENCHMARKS.parent / spec_file)
        utd = spec.gradient_steps
        ours = (time_train_steps_apart([spec], blocks, utd)[0] * utd if utd > 1 else
                time_train_step(spec, blocks, 20 if quick else 50))
        rows.append({"library": "project", "variant": algo, "gradient_steps": utd, "batch": spec.batch_size_in_ts,
                     "ms_per_env_step": ours * 1e3})
        if algo not in SBX_FAMILY:
            continue
        peer = run_peer("sbx", "train_step", algo=algo, width=spec.phi_nn_h_layer_topo[0], batch=spec.batch_size_in_ts,
                        env="HalfCheetah-v5", steps=2_000 if quick else 10_000, blocks=blocks,
                        steps_per_block=utd if utd > 1 else (20 if quick else 50))
        peer_ms = peer["ms_per_step"] * utd if utd > 1 else peer["ms_per_step_train1"]
        rows.append({"library": "sbx", "variant": algo, "gradient_steps": utd, "batch": spec.batch_size_in_ts,
                     "ms_per_env_step": peer_ms})
    return rows


def family_table(console, blocks: int, quick: bool) -> None:
    """measure_family's table, with sbx's time over ours (> 1: this project is faster), saved to FAMILY_RESULTS."""
    start = time.perf_counter()
    rows = measure_family(blocks, quick)
    ours = {row["variant"]: row["ms_per_env_step"] for row in rows if row["library"] == "project"}
    for row in rows:
        row["peer_over_project"] = row["ms_per_env_step"] / ours[row["variant"]] if row["library"] == "sbx" else None
    print_table(console, f"SAC family, ms per env step, HalfCheetah-v5 sizes, {cpu_model()}, {os.cpu_count()} cores "
                         f"(medians, {'quick' if quick else 'full'})",
                ["library", "variant", "gradient steps per env step", "batch", "ms / env step", "sbx / project"],
                [[row["library"], row["variant"], row["gradient_steps"], row["batch"], f"{row['ms_per_env_step']:.1f}",
                  optional(row["peer_over_project"], ".2f")] for row in rows])
    console.print("DroQ and REDQ: their gradient_steps in one call per env step (the project's train_steps, sbx's "
                  "train(gradient_steps=20)); CrossQ: one gradient step per call. sbx / project > 1: this project "
                  "takes less time per env step; sbx has no REDQ. Specs: " + ", ".join(FAMILY.values())
                  + "; sbx: peer_sac.py.")
    frame = pd.DataFrame(rows)
    frame["mode"], frame["blocks"], frame["processor"] = "quick" if quick else "full", blocks, cpu_model()
    save_results(frame, FAMILY_RESULTS, append=True, float_format="%.4g")
    console.print(f"added to {FAMILY_RESULTS} ({time.perf_counter() - start:.0f} s)")


def optional(value: float | None, fmt: str) -> str:
    """A table cell: the formatted value, or empty where the row has none."""
    return "" if value is None else format(value, fmt)


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo, else what platform reports."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed blocks (under two minutes)")
    parser.add_argument("--family", action="store_true",
                        help="the SAC family instead: DroQ and CrossQ per env step against sbx's, and REDQ's")
    args = parser.parse_args()
    if peer_python() is None:
        print(SETUP_HINT)
        sys.exit(2)
    blocks, steps = (3, 30) if args.quick else (10, 100)

    console = wide_console()
    if args.family:
        family_table(console, blocks, args.quick)
        return
    console.print(f"this project (v1, v2 alpha auto): {blocks} blocks of {steps} gradient steps per size")
    start = time.perf_counter()
    rows = measure_project(blocks, steps)
    import tensorflow as tf  # already loaded by measure_project

    versions = {"python": platform.python_version(), "tensorflow": tf.__version__}
    for library, name in PEERS.items():
        console.print(f"({time.perf_counter() - start:.0f} s) {name} SAC in {PEER_VENV}")
        peer_rows, peer_versions = measure_peer(library, blocks, steps, args.quick)
        rows += peer_rows
        versions.update({key: value for key, value in peer_versions.items() if key != "python"})

    for row in rows:
        row["steps_per_s"] = 1e3 / row["ms_per_step"]
    # Ratios of gradient steps per second, each way against the same way: S steps per call, one per call.
    project = {(row["variant"], row["width"]): row for row in rows if row["library"] == "project"}
    for row in rows:
        peer = row["library"] != "project"
        for label, key in (("v1", "v1_over_peer"), ("v2-auto", "v2_over_peer")):
            ours = project[(label, row["width"])]
            row[key] = row["ms_per_step"] / ours["ms_per_step"] if peer else None
            row[f"{key}_one_per_call"] = (row["ms_per_step_one_per_call"] / ours["ms_per_step_one_per_call"]
                                          if peer else None)

    names = {"project": "project", "sb3": "SB3", "sbx": "sbx"}
    steps_rows, action_rows = [], []
    for width, batch in SIZES:
        for row in (row for row in rows if row["width"] == width):
            steps_rows.append([names[row["library"]], row["variant"], f"{width}x{width}", batch,
                               f"{row['ms_per_step']:.2f}", f"{row['steps_per_s']:.0f}",
                               f"{row['ms_per_step_one_per_call']:.2f}", optional(row["v1_over_peer"], ".2f"),
                               optional(row["v2_over_peer"], ".2f"), optional(row["v1_over_peer_one_per_call"], ".2f"),
                               optional(row["v2_over_peer_one_per_call"], ".2f")])
            if row["variant"] != "v2-auto":  # the project's actor is the same in v1 and v2
                action_rows.append([names[row["library"]], f"{width}x{width}", f"{row['action_us']:.0f}",
                                    optional(row["action_policy_call_us"], ".0f")])
        steps_rows.append(None)  # a section per size
        action_rows.append(None)
    print_table(console, f"SAC gradient step, HalfCheetah-v5 sizes, {cpu_model()}, {os.cpu_count()} cores "
                         f"(medians, {'quick' if args.quick else 'full'})",
                ["library", "variant", "network", "batch", "ms/step, S per call", "steps/s", "ms/step 1 per call",
                 "v1 / peer", "v2 / peer", "v1 / peer, 1 per call", "v2 / peer, 1 per call"], steps_rows)
    console.print(f"S = {steps}. v1 / peer, v2 / peer: this project's gradient steps per second divided by the "
                  "peer's, S steps per call on both sides (> 1: this project is faster): the project's "
                  "train_steps (S minibatches from one sample, one XLA-compiled call) against the peers' "
                  "model.train(gradient_steps=S) (sbx runs the S steps in one compiled loop, SB3 loops in Python). "
                  "'1 per call': train_step against S calls of train(gradient_steps=1), as learn() does with "
                  "train_freq=1.")
    print_table(console, "one stochastic action for one observation (medians)",
                ["library", "network", "us / action", "us, policy network alone"], action_rows)
    console.print("us / action: this project's sample_action, the peers' model.predict(obs, deterministic=False) "
                  "as their training loop calls it; policy network alone: the peers' actor call without predict's "
                  "conversions.")

    frame = pd.DataFrame(rows)
    frame["library_version"] = frame["library"].map(
        {"project": "", "sb3": versions.get("stable_baselines3"), "sbx": versions.get("sbx-rl")})
    frame["mode"] = "quick" if args.quick else "full"
    frame["blocks"], frame["steps_per_block"] = blocks, steps
    frame["cpu_count"], frame["processor"] = os.cpu_count(), cpu_model()
    for name in ("python", "tensorflow", "torch", "stable_baselines3", "sbx-rl", "jax", "gymnasium", "mujoco"):
        frame[name.replace("-", "_")] = versions.get(name)
    save_results(frame, RESULTS, append=True, float_format="%.4g")
    console.print(f"added to {RESULTS} ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
