"""What several test modules share: a tiny spec (and a temporary folder holding it), a fast Pendulum
configuration, the CLI run in-process or as a command, the newest checkpoint, a random NumPy actor."""
from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import yaml

from SoftActorCritic import plotting
from SoftActorCritic.experiment_runner import main
from SoftActorCritic.numpy_policy import NumpyActor
from SoftActorCritic.runs import latest_checkpoint_state

REPO = Path(__file__).resolve().parent.parent

# Two short epochs on Pendulum with small networks: a whole run takes seconds.
TINY_SPEC = {
    "description": "two short epochs on Pendulum, for tests", "env_id": "Pendulum-v1", "max_epoch": 2,
    "timestep_per_epoch": 200, "max_trj_steps": 100, "min_pool_size": 100, "batch_size_in_ts": 32,
    "pool_capacity": 1000, "max_eval_trj": 1, "phi_nn_h_layer_topo": [16, 16], "psi_nn_h_layer_topo": [16, 16],
    "theta_nn_h_layer_topo": [16, 16], "seed": 3}

# Learns Pendulum within a few thousand steps (64x64 networks, learning rate 1e-3, batch 128, 500 random
# steps): each learning run of the slow tests takes about 20 seconds on two cores.
FAST = dict(env_id="Pendulum-v1", timestep_per_epoch=1000, min_pool_size=500, batch_size_in_ts=128,
            reward_scaling=1.0, alpha=0.2, actor_learning_rate=1e-3, critic_learning_rate=1e-3,
            phi_nn_h_layer_topo=(64, 64), psi_nn_h_layer_topo=(64, 64), theta_nn_h_layer_topo=(64, 64))


def write_spec(path: Path, **changes) -> Path:
    """TINY_SPEC with some fields changed, written as YAML to path."""
    path.write_text(yaml.safe_dump({**TINY_SPEC, **changes}, sort_keys=False))
    return path


class TempFolderTest(unittest.TestCase):
    """A temporary folder (self.root) holding TINY_SPEC with three epochs (self.spec_path)."""

    def setUp(self):
        self.folder = tempfile.TemporaryDirectory()
        self.root = Path(self.folder.name)
        self.spec_path = self.root / "tiny.yaml"
        self.spec_path = write_spec(self.spec_path, max_epoch=3)

    def tearDown(self):
        self.folder.cleanup()


def latest_checkpoint_steps(run_dir: Path) -> int | None:
    """The env steps of run_dir's newest checkpoint, or None when it has none."""
    state = latest_checkpoint_state(run_dir)
    return None if state is None else state["env_steps"]


def progress_rows(run_dir: Path) -> int:
    """How many epoch rows the run's progress.csv holds, counting complete lines only (0 before it exists)."""
    try:
        lines = (Path(run_dir) / "progress.csv").read_text().splitlines(keepends=True)
    except FileNotFoundError:
        return 0
    return sum(line.endswith("\n") for line in lines[1:])


@contextlib.contextmanager
def kept_figures():
    """plotting.save keeps each figure open (the PNG is still written): the list they are appended to."""
    figures = []

    def keep(figure, out):
        figures.append(figure)
        figure.savefig(out)
        return out

    with mock.patch.object(plotting, "save", keep):
        yield figures


def run_cli(*args: str) -> tuple[int, str, str]:
    """The CLI's main() in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(list(args))
        except SystemExit as exit_:  # argparse errors
            status = exit_.code
    return status, out.getvalue(), err.getvalue()


def wait_for(condition, timeout: float, what: str, process: subprocess.Popen | None = None) -> None:
    """Poll condition() until it is true; fail naming `what` on timeout, or when `process` (its stdout piped)
    ends first."""
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended before {what}: {process.stdout.read()[-3000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def run_command(*args: str, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """`python -m SoftActorCritic ARGS` as a separate process, run from the clone (so it imports this checkout)."""
    return subprocess.run([sys.executable, "-m", "SoftActorCritic", *args], capture_output=True, text=True,
                          cwd=REPO if cwd is None else cwd, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))


def random_actor(obs_dim: int = 3, act_dim: int = 2, seed: int = 0):
    """A NumpyActor with two 8-wide tanh hidden layers and random weights."""
    rng = np.random.default_rng(seed)
    sizes = [obs_dim, 8, 8]
    arrays = []
    for fan_in, fan_out in zip(sizes, sizes[1:], strict=False):
        arrays += [rng.normal(size=(fan_in, fan_out)).astype(np.float32), rng.normal(size=fan_out).astype(np.float32)]
    for _ in range(2):  # mu, log_std heads
        arrays += [rng.normal(size=(8, act_dim)).astype(np.float32), rng.normal(size=act_dim).astype(np.float32)]
    return NumpyActor.from_arrays(arrays, "tanh")

