"""Sweeps on Ray Tune (SoftActorCritic/sweeps.py, ray_backend.py, search.py): grids x seeds as trials,
summary.csv, retries from the run's own checkpoint, resume of an interrupted sweep, a search with ASHA, a
`ray start --head` cluster, and one-line answers to bad input. Everything Ray starts listens on 127.0.0.1 only."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from tests.helpers import REPO, kept_figures, progress_rows, run_cli, wait_for

# Before Ray's first import in this process (it reads the variable then): Ray on 127.0.0.1 only.
os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
os.environ["RAY_USAGE_STATS_ENABLED"] = "0"

TINY_SPEC = """\
description: two short epochs on Pendulum, for the sweep tests
env_id: Pendulum-v1
max_epoch: 2
timestep_per_epoch: 200
min_pool_size: 100
batch_size_in_ts: 32
pool_capacity: 2000
max_eval_trj: 1
phi_nn_h_layer_topo: [64, 64]
psi_nn_h_layer_topo: [64, 64]
theta_nn_h_layer_topo: [64, 64]
seed: 3
"""
# Ray's processes: loopback only, no usage statistics, the project importable by the workers.
RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
           "TF_CPP_MIN_LOG_LEVEL": "2"}


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    """The CLI in its own process (a driver that embeds its own Ray cluster)."""
    return subprocess.Popen([sys.executable, "-m", "SoftActorCritic", *args], cwd=cwd, text=True,
                            env=dict(os.environ, **RAY_ENV), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_folders(sweep: Path) -> list[Path]:
    return sorted(path.parent for path in sweep.rglob("spec.yaml") if ".ray_tune" not in path.parts)


def sessions(run_dir: Path) -> list[dict]:
    """The processes that trained a run on Ray (ray_trial.json)."""
    path = run_dir / "ray_trial.json"
    return json.loads(path.read_text()) if path.is_file() else []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SweepTestCase(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.spec_path = self.root / "tiny.yaml"
        self.spec_path.write_text(TINY_SPEC)

    def tearDown(self):
        self.tmp.cleanup()

    def assertGridSweep(self, sweep: Path, epochs: int = 2) -> None:
        """4 complete run folders (2 points x seeds 3, 4) and a summary.csv with one row per point."""
        runs = run_folders(sweep)
        self.assertEqual([(run.parent.name, run.name.split("-")[-1]) for run in runs],
                         [("tiny-reward_scaling=1", "seed3"), ("tiny-reward_scaling=1", "seed4"),
                          ("tiny-reward_scaling=5", "seed3"), ("tiny-reward_scaling=5", "seed4")])
        for run in runs:
            progress = pd.read_csv(run / "progress.csv")
            self.assertEqual(progress["epoch"].tolist(), list(range(1, epochs + 1)), run)
            self.assertTrue(progress["eval_return_mean"].notna().all())
            self.assertTrue((run / "checkpoints" / "checkpoint").is_file())
            self.assertTrue(list((run / "tb").glob("events.out.tfevents.*")))
            self.assertEqual(sessions(run)[-1]["status"], "finished")
        summary = pd.read_csv(sweep / "summary.csv")
        self.assertEqual(summary["reward_scaling"].tolist(), [1.0, 5.0])
        self.assertEqual(summary["seeds"].tolist(), [2, 2])
        for _, row in summary.iterrows():
            finals = [pd.read_csv(run / "progress.csv")["eval_return_mean"].iloc[-1] for run in runs
                      if run.parent.name == f"tiny-reward_scaling={int(row['reward_scaling'])}"]
            self.assertAlmostEqual(row["final_eval_return_mean"], sum(finals) / 2, places=3)
            self.assertAlmostEqual(row["final_eval_return_min"], min(finals), places=3)
            self.assertAlmostEqual(row["final_eval_return_max"], max(finals), places=3)
            self.assertGreaterEqual(row["best_eval_return_max"], row["final_eval_return_max"] - 1e-6)


@pytest.mark.slow  # a Ray instance and trials in processes of their own
class EmbeddedRayTest(SweepTestCase):
    """One local Ray cluster (2 CPUs, no dashboard, loopback) for the class; the commands run in this process
    and use it."""

    @classmethod
    def setUpClass(cls):
        cls.saved_env = {key: os.environ.get(key) for key in RAY_ENV}
        os.environ.update(RAY_ENV)
        import ray

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 _node_ip_address="127.0.0.1")

    @classmethod
    def tearDownClass(cls):
        import ray

        ray.shutdown()
        for key, value in cls.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    def test_ray_listens_on_loopback_only(self):
        import ray

        self.assertEqual({node["NodeManagerAddress"] for node in ray.nodes()}, {"127.0.0.1"})

    def test_grid_of_two_points_and_two_seeds_gives_four_runs_and_the_summary(self):
        sweep = self.root / "sweep"
        status, out, err = run_cli("train", "--spec", str(self.spec_path), "--set", "reward_scaling=[1, 5]",
                                   "--reruns", "2", "--backend", "ray", "--run-dir", str(sweep))
        self.assertEqual(status, 0, out + err)
        self.assertGridSweep(sweep)
        self.assertIn("sweep summary", out)
        self.assertIn("epoch 2 eval return", out)  # the progress lines (not a terminal here)
        status, out, err = run_cli("plot", str(sweep), "--metric", "q1_mean", "--out", str(self.root / "q.png"))
        self.assertEqual(status, 0, out + err)  # Tune's own files in the sweep folder are not taken for runs

    def test_search_with_asha_writes_a_loadable_best_spec(self):
        from blocAndTools.experiment_spec import ExperimentSpec

        search = self.root / "search"
        spec = self.root / "searched.yaml"
        spec.write_text(TINY_SPEC + "reward_scaling: choice([1, 5, 20])\n")
        status, out, err = run_cli("tune", "--spec", str(spec), "--search",
                                   "actor_learning_rate=loguniform(1e-4, 1e-2)",
                                   "--samples", "4", "--scheduler", "asha", "--run-dir", str(search))
        self.assertEqual(status, 0, out + err)
        best = ExperimentSpec.from_yaml(search / "best_spec.yaml")
        self.assertTrue(1e-4 <= best.actor_learning_rate <= 1e-2)
        self.assertIn(best.reward_scaling, (1.0, 5.0, 20.0))
        self.assertEqual(best.name, "searched-best")
        self.assertEqual(len(run_folders(search)), 4)
        summary = pd.read_csv(search / "summary.csv")
        self.assertEqual(len(summary), 4)
        self.assertIn("actor_learning_rate", summary.columns)
        self.assertIn(f"train --spec {search / 'best_spec.yaml'}", out)
        import optuna

        self.assertEqual(optuna.logging.get_verbosity(), optuna.logging.WARNING)  # no "A new study created ..."


@pytest.mark.slow
class FaultsTest(SweepTestCase):
    """The CLI in its own process, with its embedded Ray cluster: a killed trial, Ctrl-C and --resume."""

    def test_a_trial_whose_process_dies_is_retried_from_its_checkpoint(self):
        run_dir = self.root / "run"
        # epochs long enough (2 x 1000 steps after the first checkpoint) for the kill to land mid-run
        driver = start_cli("train", "--spec", str(self.spec_path), "--set", "max_epoch=3", "--set",
                           "timestep_per_epoch=1000", "--backend", "ray", "--run-dir", str(run_dir), cwd=self.root)
        try:
            wait_for(lambda: (run_dir / "checkpoints" / "checkpoint").is_file() and sessions(run_dir),
                     240, "the first checkpoint (its index file is written last)", driver)
            epochs_at_kill = len(pd.read_csv(run_dir / "progress.csv"))
            os.kill(sessions(run_dir)[0]["pid"], signal.SIGKILL)
            output, _ = driver.communicate(timeout=300)
        finally:
            driver.kill()
        self.assertEqual(driver.returncode, 0, output[-3000:])
        progress = pd.read_csv(run_dir / "progress.csv")
        self.assertEqual(progress["epoch"].tolist(), [1, 2, 3])  # no duplicate row, nothing missing
        runs = sessions(run_dir)
        self.assertEqual(len(runs), 2, f"killed after {epochs_at_kill} epochs; {runs}; {output[-3000:]}")
        self.assertTrue(runs[0]["status"].startswith("died"), runs[0])  # marked by the retry: it never wrote an end
        self.assertIn("retrying (1 of 3, from its checkpoint", output)  # one line, not Ray's traceback
        self.assertNotIn("Traceback", output)
        self.assertNotIn("(raylet)", output)
        self.assertGreaterEqual(runs[1]["resumed_from_epoch"], 1)  # continued, not restarted
        self.assertEqual(runs[1]["status"], "finished")

    def test_ctrl_c_checkpoints_the_running_trial_and_resume_skips_finished_ones(self):
        from SoftActorCritic.ray_backend import STOP_FLAG

        sweep = self.root / "sweep"
        # Ctrl-C after the second trial's first epoch, while that trial is held still (SIGSTOP) until the driver has
        # written the stop flag: it lands mid-trial whatever the machine's speed. The trial goes on once the flag is
        # there, sees it within STOP_CHECK_STEPS steps, checkpoints and stops.
        driver = start_cli("train", "--spec", str(self.spec_path), "--set", "reward_scaling=[1, 5]", "--set",
                           "max_epoch=3", "--set", "timestep_per_epoch=1000", "--backend", "ray", "--max-concurrent",
                           "1", "--run-dir", str(sweep), cwd=self.root)
        held = None  # the pid of the trial process while it is stopped
        try:
            def second_run_started():
                runs = run_folders(sweep)
                return len(runs) == 2 and sessions(runs[0]) and sessions(runs[0])[-1]["status"] == "finished" \
                    and sessions(runs[1])
            wait_for(second_run_started, 300, "the second trial", driver)
            first, second = run_folders(sweep)
            wait_for(lambda: progress_rows(second) >= 1, 240, "the second trial's first progress row", driver)
            held = sessions(second)[-1]["pid"]
            os.kill(held, signal.SIGSTOP)
            self.assertLess(progress_rows(second), 3, "the second trial ended before it was held")
            self.assertEqual(sessions(second)[-1]["status"], "running")
            driver.send_signal(signal.SIGINT)
            wait_for(lambda: (sweep / STOP_FLAG).is_file(), 60, "the driver's stop flag", driver)
            os.kill(held, signal.SIGCONT)
            held = None
            output, _ = driver.communicate(timeout=240)
        finally:
            if held is not None:
                os.kill(held, signal.SIGCONT)
            driver.kill()
        self.assertEqual(driver.returncode, 130, output[-3000:])
        self.assertLess(len(pd.read_csv(second / "progress.csv")), 3)  # stopped mid-run
        self.assertIn("--resume", output)
        self.assertEqual(sessions(second)[-1]["status"], "interrupted (checkpointed)")
        finished_progress = (first / "progress.csv").read_bytes()

        status, out, err = run_cli("train", "--resume", "--run-dir", str(sweep), "--backend", "ray")
        self.assertEqual(status, 0, out + err)
        self.assertIn("1 of 2 runs finished earlier", out)
        self.assertEqual(len(sessions(first)), 1)  # not rerun
        self.assertEqual((first / "progress.csv").read_bytes(), finished_progress)
        self.assertEqual(len(sessions(second)), 2)
        self.assertEqual(pd.read_csv(second / "progress.csv")["epoch"].tolist(), [1, 2, 3])
        self.assertEqual(pd.read_csv(sweep / "summary.csv")["seeds"].tolist(), [1, 1])


def start_ray_cluster(port: int) -> Path:
    """`ray start --head` on 127.0.0.1 with its own ports (a user's cluster may hold Ray's default ones) and its
    own --temp-dir, returned: how stop_ray_cluster finds its processes (short, under /tmp: Ray's socket paths
    live there)."""
    temp_dir = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    subprocess.run(["ray", "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                    "--num-cpus", "2", "--include-dashboard=false", "--disable-usage-stats",
                    "--temp-dir", str(temp_dir), "--dashboard-port", str(free_port()), "--ray-client-server-port",
                    str(free_port()), "--dashboard-agent-listen-port", str(free_port())],
                   env=dict(os.environ, **RAY_ENV), check=True, capture_output=True, timeout=120)
    return temp_dir


def stat_fields(pid: int | str) -> list[str]:
    """/proc/<pid>/stat after the command name: state, parent PID, ... (raises OSError once it is gone)."""
    return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def ray_cluster_processes(temp_dir: Path, port: int, children: bool = True) -> set[int]:
    """The processes of the cluster start_ray_cluster(port) started in temp_dir, read from /proc: those whose
    command line names its session folder or its address (gcs_server, raylet, ...) and, with `children`, their
    descendants (workers and agents rename themselves ray::...)."""
    command_lines, parents = {}, {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command_lines[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                parents[int(entry.name)] = int(stat_fields(entry.name)[1])
            except (OSError, ValueError, UnicodeDecodeError):
                continue  # exited meanwhile
    marks = (str(temp_dir / "session_"), f"=127.0.0.1:{port} ")  # its session folder, its address
    cluster = {pid for pid, line in command_lines.items() if any(mark in line for mark in marks)}
    while children and (grown := {pid for pid, parent in parents.items() if parent in cluster} - cluster):
        cluster |= grown
    return cluster


def exiting_or_gone(pid: int) -> bool:
    """A zombie or no process: its files (its sockets) are closed. An exiting process loses its command line
    before it closes them."""
    try:
        return stat_fields(pid)[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


def stop_ray_cluster(temp_dir: Path, port: int) -> None:
    """Kill that cluster's processes and no other: `ray stop` stops every Ray process on the machine (a user's
    sweep beside the tests included). Returns once they have closed their sockets, its temp dir removed."""
    killed = set()

    def stopped() -> bool:
        alive = ray_cluster_processes(temp_dir, port)
        for pid in alive - killed:  # a worker may have been forked since the last look
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        killed.update(alive)
        return not alive and all(map(exiting_or_gone, killed))

    wait_for(stopped, timeout=30, what=f"the end of Ray in {temp_dir}")
    shutil.rmtree(temp_dir, ignore_errors=True)


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.slow
@unittest.skipUnless(Path("/proc/self/cmdline").is_file(), "finds the test cluster's processes in /proc (Linux)")
class RayClusterTest(SweepTestCase):
    """A cluster started as a user would (`ray start --head` on 127.0.0.1), joined with --ray-address."""

    @classmethod
    def setUpClass(cls):
        cls.port = free_port()
        cls.temp_dir = start_ray_cluster(cls.port)

    @classmethod
    def tearDownClass(cls):
        stop_ray_cluster(cls.temp_dir, cls.port)

    def test_stopping_another_test_cluster_leaves_this_one_running(self):
        """What the class's teardown does to a cluster it did not start (a user's sweep beside the tests)."""
        ours = ray_cluster_processes(self.temp_dir, self.port, children=False)
        self.assertGreaterEqual(len(ours), 2)  # gcs_server, raylet, ... (its workers may come and go)
        other_port = free_port()
        other_dir = start_ray_cluster(other_port)
        self.addCleanup(stop_ray_cluster, other_dir, other_port)  # also when an assertion below fails
        self.assertTrue(ray_cluster_processes(other_dir, other_port))
        self.assertFalse(ours & ray_cluster_processes(other_dir, other_port))
        stop_ray_cluster(other_dir, other_port)
        self.assertFalse(accepts_connections(other_port))
        self.assertTrue(accepts_connections(self.port))
        self.assertEqual(ray_cluster_processes(self.temp_dir, self.port, children=False), ours)

    def test_grid_on_a_cluster_started_with_ray_start(self):
        sweep = self.root / "sweep"
        status, out, err = run_cli("train", "--spec", str(self.spec_path), "--set", "reward_scaling=[1, 5]",
                                   "--reruns", "2", "--backend", "ray", "--ray-address", f"127.0.0.1:{self.port}",
                                   "--run-dir", str(sweep))
        self.assertEqual(status, 0, out + err)
        self.assertGridSweep(sweep)
        self.assertEqual({sessions(run)[-1]["ray_address"] for run in run_folders(sweep)}, {f"127.0.0.1:{self.port}"})

    def test_without_an_address_the_command_starts_its_own_ray_beside_the_cluster(self):
        sweep = self.root / "sweep"
        status, out, err = run_cli("train", "--spec", str(self.spec_path), "--set", "reward_scaling=[1, 5]",
                                   "--reruns", "2", "--backend", "ray", "--run-dir", str(sweep))
        self.assertEqual(status, 0, out + err)
        self.assertGridSweep(sweep)
        addresses = {sessions(run)[-1]["ray_address"] for run in run_folders(sweep)}
        self.assertEqual(len(addresses), 1, addresses)  # one Ray of its own ran every trial, not the cluster
        self.assertNotIn(f"127.0.0.1:{self.port}", addresses)


class BadInputTest(SweepTestCase):
    """One line and exit status 2, before Ray (or TensorFlow) starts anything."""

    def assertRejected(self, expected: str, *args: str) -> None:
        status, out, err = run_cli(*args)
        self.assertEqual(status, 2, out + err)
        self.assertIn(expected, err)
        self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertNotIn("Traceback", err)

    def test_unknown_distribution(self):
        self.assertRejected("unknown distribution 'lognormal'", "tune", "--spec", str(self.spec_path),
                            "--search", "actor_learning_rate=lognormal(1e-4, 1e-2)", "--run-dir", str(self.root / "s"))

    def test_search_on_a_field_that_does_not_exist(self):
        self.assertRejected("unknown spec field 'learnig_rate' (did you mean 'actor_learning_rate'?)", "tune", "--spec",
                            str(self.spec_path), "--search", "learnig_rate=loguniform(1e-4, 1e-2)")

    def test_distribution_outside_the_field_range(self):
        self.assertRejected("'actor_learning_rate' = -0.1", "tune", "--spec", str(self.spec_path),
                            "--search", "actor_learning_rate=uniform(-0.1, 0.1)")

    def test_a_misspelled_distribution_in_a_spec_file(self):
        # learning_rate: the old name of actor_learning_rate, still read from spec files
        self.spec_path.write_text(TINY_SPEC + "learning_rate: loguniforn(1e-4, 1e-2)\n")
        self.assertRejected("unknown distribution 'loguniforn'", "tune", "--spec", str(self.spec_path))

    def test_unreachable_address(self):
        self.assertRejected("no Ray cluster reachable", "train", "--spec", str(self.spec_path), "--backend", "ray",
                            "--ray-address", f"127.0.0.1:{free_port()}", "--run-dir", str(self.root / "run"))
        self.assertFalse((self.root / "run").exists())

    def test_malformed_address_and_ray_options_without_ray(self):
        self.assertRejected("expected HOST:PORT", "train", "--spec", str(self.spec_path), "--backend", "ray",
                            "--ray-address", "nowhere", "--run-dir", str(self.root / "run"))
        self.assertRejected("need --backend ray", "train", "--spec", str(self.spec_path), "--max-concurrent", "2")


class SweepSpecsTest(unittest.TestCase):
    """The homework comparisons as sweep files, and the summary of a sweep folder (no training)."""

    def test_estimator_and_q_backup_sweeps_hold_three_variants_with_three_seeds(self):
        from blocAndTools.experiment_spec import expand_grid, load_raw_spec

        estimators = expand_grid(load_raw_spec(REPO / "experiments" / "sac" / "sweep_estimators.yaml"))
        self.assertEqual(sorted({(s.actor_gradient, s.num_actor_samples) for s in estimators}),
                         [("reinforce", 1), ("reinforce", 10), ("reparametrize", 1)])
        self.assertEqual(sorted(s.seed for s in estimators), [0, 0, 0, 1, 1, 1, 2, 2, 2])
        self.assertEqual({s.env_id for s in estimators}, {"HalfCheetah-v5"})
        backups = expand_grid(load_raw_spec(REPO / "experiments" / "sac" / "sweep_qbackup.yaml"))
        self.assertEqual(sorted({s.q_backup for s in backups}), ["clipped", "double", "single"])
        self.assertEqual(len(backups), 9)
        self.assertEqual(len({s.name for s in backups}), 3)  # the seed is not part of a point's name

    def test_grid_key_rejects_unknown_fields(self):
        from blocAndTools.errors import UserInputError
        from blocAndTools.experiment_spec import load_raw_spec

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bad.yaml"
            path.write_text("grid:\n  - {actor_gradiant: reinforce}\n")
            with self.assertRaisesRegex(UserInputError, "did you mean 'actor_gradient'"):
                load_raw_spec(path)

    def test_summary_gives_final_and_best_over_seeds_per_point(self):
        from SoftActorCritic.sweep_summary import summarize

        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            runs = []
            for scale, seed, returns in ((1, 0, [10.0, 30.0, 20.0]), (1, 1, [0.0, 40.0, 10.0]),
                                         (5, 0, [5.0, 7.0, 9.0]), (5, 1, [1.0, 3.0, 2.0])):
                run = root / f"p{scale}" / f"seed{seed}"
                run.mkdir(parents=True)
                (run / "spec.yaml").write_text(f"name: x-{scale}\nseed: {seed}\nreward_scaling: {scale}\n")
                pd.DataFrame({"epoch": [1, 2, 3], "env_steps": [100, 200, 300], "wall_time_s": [1.0, 2.0, 3.0],
                              "eval_return_mean": returns}).to_csv(run / "progress.csv", index=False)
                runs.append(run)
            table = summarize(runs).set_index("reward_scaling")
        self.assertEqual(table.loc["1", "seeds"], 2)
        self.assertAlmostEqual(table.loc["1", "final_eval_return_mean"], 15.0)  # (20 + 10) / 2
        self.assertAlmostEqual(table.loc["1", "final_eval_return_min"], 10.0)
        self.assertAlmostEqual(table.loc["1", "best_eval_return_mean"], 35.0)  # (30 + 40) / 2
        self.assertAlmostEqual(table.loc["1", "best_eval_return_max"], 40.0)
        self.assertAlmostEqual(table.loc["5", "final_eval_return_max"], 9.0)
        self.assertAlmostEqual(table.loc["5", "best_eval_return_min"], 3.0)


@pytest.mark.slow  # a grid of trainings
class SummaryWithoutRayTest(SweepTestCase):
    """The local backend ends with the sweep's summary too."""

    def test_local_grid_writes_the_summary_and_plot_draws_one_band_per_point(self):
        sweep = self.root / "sweep"
        status, out, err = run_cli("train", "--spec", str(self.spec_path), "--set", "reward_scaling=[1, 5]",
                                   "--set", "max_epoch=1", "--set", "max_eval_trj=1", "--reruns", "2",
                                   "--run-dir", str(sweep))
        self.assertEqual(status, 0, out + err)
        summary = pd.read_csv(sweep / "summary.csv")
        self.assertEqual(summary["seeds"].tolist(), [2, 2])
        self.assertEqual(summary["reward_scaling"].tolist(), [1.0, 5.0])
        status, out, err = run_cli("train", "--resume", "--run-dir", str(sweep))
        self.assertEqual(status, 0, out + err)
        self.assertIn("4 of 4 runs finished earlier, 0 to run", out)
        image = self.root / "q.png"
        with kept_figures() as figures:
            status, out, err = run_cli("plot", str(sweep), "--metric", "eval_return_mean", "--metric", "q1_mean",
                                       "--out", str(image))
        self.assertEqual(status, 0, out + err)
        self.assertTrue(image.is_file())
        axes = figures[0].axes
        self.assertEqual([axis.get_ylabel() for axis in axes], ["eval return mean", "q1 mean"])
        for axis in axes:  # one IQM line and one band per grid point (its two seeds), not per run
            self.assertEqual(len(axis.get_lines()), 2, axis.get_ylabel())
            self.assertEqual(sum(isinstance(item, PolyCollection) for item in axis.collections), 2, axis.get_ylabel())
        status, out, err = run_cli("plot", str(sweep), "--metric", "q_mean", "--out", str(image))
        self.assertEqual(status, 2)
        self.assertIn("'q_mean': not a column", err)


if __name__ == "__main__":
    unittest.main()
