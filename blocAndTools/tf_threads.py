"""TensorFlow in this project's processes: imported quietly, its thread pools set for small networks on few cores.

On a 2-core CPU, one thread per op (intra_op 1) and one op per core at a time (inter_op 2)
runs the one-step SAC update faster than TensorFlow's defaults (README "Benchmarks"): the
networks' independent matmuls run side by side instead of each being split across both cores,
and small ops are not dispatched to a thread pool. Several gradient steps per call
(gradient_steps > 1) run as one XLA loop whose ops execute one after another, so there each op
gets every core (intra_op = cores). Measured on 2 cores only, so larger machines keep
TensorFlow's defaults. TF_NUM_INTRAOP_THREADS and TF_NUM_INTEROP_THREADS, when set, always win.
"""
from __future__ import annotations

import logging
import os

MEASURED_MAX_CPUS = 2
_setting: str | None = None  # what the first call chose: TensorFlow's pools are fixed for the process


def thread_setting(cpus: int, gradient_steps: int = 1) -> tuple[int, int]:
    """(intra-op, inter-op) threads for an update of `gradient_steps` steps per call on `cpus` CPUs (a Ray
    trial's share too): measured on 1-2 CPUs; a larger share is split between the two pools."""
    return (cpus if gradient_steps > 1 else max(1, cpus // 2)), min(cpus, 2)


def configure_tensorflow_threads(gradient_steps: int = 1) -> str:
    """Apply the measured setting where it applies, before TensorFlow runs its first op; say what is used."""
    global _setting
    if _setting is None:
        _setting = _choose_and_apply(gradient_steps)
    return _setting


def import_tensorflow_quietly() -> None:
    """Import TensorFlow (and TensorFlow Probability) without the lines it prints on a CPU-only machine.

    Those lines (CUDA probing, absl's "before InitializeLog" warning) come from C++ before any
    Python setting applies, so stderr is pointed at /dev/null while TensorFlow loads and probes
    its devices. TF_CPP_MIN_LOG_LEVEL below 2 (`sac --verbose` sets 0) keeps them.
    """
    if int(os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") or 0) < 2:
        import tensorflow  # noqa: F401
        return
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow as tf
        import tensorflow_probability  # noqa: F401
        tf.config.list_physical_devices("GPU")  # the CUDA probe; leaves the thread pools settable
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)
    tf.get_logger().setLevel(logging.ERROR)


def _choose_and_apply(gradient_steps: int) -> str:
    import tensorflow as tf

    cpus = len(os.sched_getaffinity(0))
    if "TF_NUM_INTRAOP_THREADS" in os.environ or "TF_NUM_INTEROP_THREADS" in os.environ:
        return "TensorFlow threads from TF_NUM_INTRAOP_THREADS / TF_NUM_INTEROP_THREADS"
    if cpus > MEASURED_MAX_CPUS:
        return f"TensorFlow's default threads ({cpus} CPUs)"
    intra, inter = thread_setting(cpus, gradient_steps)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError:  # TensorFlow already ran an op in this process: its pools are fixed
        return "TensorFlow's default threads (TensorFlow was already running)"
    return f"TensorFlow threads: {intra} per op, {inter} ops at a time"
