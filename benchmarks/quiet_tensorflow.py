"""TensorFlow for the benchmark scripts, loaded without the lines it prints on a CPU-only machine.

A script that uses TensorFlow takes `tf` from here (`from benchmarks.quiet_tensorflow import tf`): that import sorts
first among the project's imports, so TensorFlow is loaded here before SoftActorCritic's brain or agent loads it.
"""
import os
import sys

from blocAndTools.tf_threads import import_tensorflow_quietly

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ warnings off too; a caller's own value is kept
import_tensorflow_quietly()  # without the CUDA-probe lines TensorFlow prints on a CPU-only machine
tf = sys.modules["tensorflow"]  # the module import_tensorflow_quietly loaded
