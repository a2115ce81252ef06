"""The Ray backend of sweeps and searches: Ray started or joined for one command, one Tune trial per run.

Each (grid point, seed) is one Tune trial calling the run library's `train_one`, so a trial writes the same
run folder as a local run. A trial whose process dies is retried by Tune and continues from its run's own
last checkpoint; Ctrl-C asks every running trial to checkpoint and stop. Ray binds to 127.0.0.1 unless the
user points the command at a cluster, and never reports usage statistics (docs: "Sweeps and Ray").

Ray, Tune and TensorFlow are imported inside the functions that need them: the CLI's `--help`, `list`,
`fields` and spec errors stay fast.
"""
from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.errors import EnvironmentFault, TrainingDiverged, TrainingInterrupted, UserInputError, stop_on_signals
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.tf_threads import thread_setting
from SoftActorCritic.runs import clear_unusable, epochs_done, run_status, train_one
from SoftActorCritic.search_space import trial_spec
from SoftActorCritic.sweep_progress import make_progress_callback

REPO_ROOT = Path(__file__).resolve().parent.parent
STOP_FLAG = ".stop_requested"  # written by the driver on Ctrl-C / SIGTERM; trials checkpoint and stop
TRIAL_RECORD = "ray_trial.json"  # in a run folder trained on Ray: one entry per process that ran it
MAX_FAILURES = 3  # Tune restarts of a trial whose process died (each continues from the run's checkpoint)
STOP_CHECK_STEPS = 50  # env steps between two looks at the stop flag


# ---------------------------------------------------------------------------------------------
# starting or joining a cluster
# ---------------------------------------------------------------------------------------------

def import_ray():
    """ray and ray.tune, or one line saying how to install them."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise UserInputError("--backend ray needs Ray Tune: python -m pip install 'ray[tune]'") from None
    return ray, tune


def check_address(address: str) -> None:
    """Refuse an address that is not host:port or where nothing listens, before Ray tries for minutes."""
    if address in ("auto", "local"):
        return
    host, sep, port = address.rpartition(":")
    host = host.removeprefix("ray://")
    if not sep or not host or not port.isdigit():
        raise UserInputError(f"--ray-address {address!r}: expected HOST:PORT of a `ray start --head` node, "
                             f"e.g. 127.0.0.1:6379")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as error:
        raise UserInputError(f"--ray-address {address!r}: no Ray cluster reachable there "
                             f"({error.strerror or error}); start one with `ray start --head`") from None


def check_backend_options(backend: str, ray_address: str | None, max_concurrent: int | None) -> None:
    """--backend, --ray-address and --max-concurrent, checked before anything is written."""
    if backend != "ray":
        if ray_address is not None or max_concurrent is not None:
            raise UserInputError("--ray-address and --max-concurrent need --backend ray")
        return
    if max_concurrent is not None and max_concurrent < 1:
        raise UserInputError(f"--max-concurrent {max_concurrent}: must be >= 1")
    if ray_address is not None:
        check_address(ray_address)
    if importlib.util.find_spec("ray") is None:  # without importing it: spec errors stay fast
        raise UserInputError("--backend ray needs Ray Tune: python -m pip install 'ray[tune]'")


def is_loopback(address: str | None) -> bool:
    """True for the embedded cluster (None) and for an address on this machine's loopback."""
    if address is None:
        return True
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    return host in ("127.0.0.1", "localhost", "::1")


def set_ray_environment(address: str | None) -> None:
    """Environment of Ray's processes: no usage statistics, loopback only for a cluster on this machine.

    Call before Ray is imported: ray_constants reads RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER at import."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"  # opt in, not out (and these machines have no outside network)
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    if is_loopback(address):
        # Measured with ray 2.60: without it Ray binds to the machine's network address, not 127.0.0.1.
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    if address is not None and "RAY_AUTH_MODE" not in os.environ and (Path.home() / ".ray" / "auth_token").is_file():
        os.environ["RAY_AUTH_MODE"] = "token"  # `ray start --head` turned token authentication on


def worker_environment() -> dict[str, str]:
    """Environment variables of the trials' processes (on every node): the project and the folder the command
    runs in on the path (a user's own environment module), quiet TF (the CLI's setting)."""
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH"), os.getcwd()]))
    return {"PYTHONPATH": python_path, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3"),
            "RAY_USAGE_STATS_ENABLED": "0"}


@contextlib.contextmanager
def ray_session(address: str | None) -> Iterator[Any]:
    """Ray for the length of a command: joins `address`, or starts a local cluster (no dashboard, every
    CPU of the machine); a Ray already initialised by the caller (tests, notebooks) is used as is."""
    if address is not None:
        check_address(address)
    if "ray" not in sys.modules:
        set_ray_environment(address)
    ray, _ = import_ray()
    if ray.is_initialized():
        yield ray
        return
    set_ray_environment(address)
    options: dict[str, Any] = {"include_dashboard": False} if address is None else {}
    if address is None:
        options["num_cpus"] = len(os.sched_getaffinity(0))
    if is_loopback(address):
        options["_node_ip_address"] = "127.0.0.1"  # even if Ray was imported before the variable was set
    try:
        # address "local": a new instance of our own even when a `ray start` cluster runs on the machine
        # (a plain init would try to join it and refuse num_cpus)
        ray.init(address=address or "local", log_to_driver=False, logging_level="ERROR",
                 runtime_env={"env_vars": worker_environment()}, **options)
    except (ConnectionError, RuntimeError, ValueError) as error:
        raise UserInputError(f"cannot {'join the Ray cluster at ' + address if address else 'start Ray'}: "
                             f"{str(error).splitlines()[0] if str(error) else type(error).__name__}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def plan_resources(ray, n_trials: int, max_concurrent: int | None) -> tuple[int, int]:
    """(trials at a time, CPUs per trial): the cluster's CPUs shared evenly, at most one node's CPUs each."""
    if max_concurrent is not None and max_concurrent < 1:
        raise UserInputError(f"--max-concurrent {max_concurrent}: must be >= 1")
    total = max(1, int(ray.cluster_resources().get("CPU", 1)))
    largest_node = max([int(node["Resources"].get("CPU", 0)) for node in ray.nodes() if node["Alive"]] or [1])
    concurrent = max(1, min(max_concurrent or total, n_trials))
    return concurrent, max(1, min(largest_node, total // concurrent))



# ---------------------------------------------------------------------------------------------
# the trial (runs in a Ray worker process)
# ---------------------------------------------------------------------------------------------

class TrialView:
    """The runner's ConsoleView for a Tune trial: each epoch row goes to Tune, the stop flag is polled.

    An epoch's row is reported once it is in progress.csv and checkpointed (at the start of the next
    epoch, or when the run ends): a trial that Tune stops (ASHA) or that dies right after a report has
    that epoch on disk, and a retry continues after it.
    """

    live = False

    def __init__(self, report: Callable[[dict], None], stop_flag: Path) -> None:
        self.report, self.stop_flag = report, stop_flag
        self.pending: dict[str, Any] | None = None

    def flush(self) -> None:
        """Report the last epoch's row to Tune (Tune may end the trial here)."""
        if self.pending is not None:
            row, self.pending = self.pending, None
            self.report(row)

    @contextlib.contextmanager
    def epoch_progress(self, epoch: int, total_steps: int) -> Iterator[Callable[[int], None]]:
        """`advance(n)`, called after each env step: raises TrainingInterrupted once the sweep is stopped
        (the agent then checkpoints its consistent state and stops)."""
        self.flush()  # the previous epoch is in progress.csv and checkpointed by now
        steps = 0

        def advance(n: int = 1) -> None:
            nonlocal steps
            steps += n
            if steps % STOP_CHECK_STEPS == 0 and self.stop_flag.exists():
                raise TrainingInterrupted("the sweep was stopped")

        yield advance

    def print_epoch(self, row: dict[str, Any]) -> None:
        self.pending = {key: value for key, value in row.items() if isinstance(value, (int, float))}

    def print(self, message: str) -> None:
        print(message, flush=True)  # the worker's log (ray's session folder)


def record_session(run_dir: Path, entry: dict[str, Any]) -> None:
    """Append this process to the run folder's ray_trial.json (pid, trial id, where it started: node and Ray's
    address).

    An earlier entry still "running" is a process that died without a word (killed, out of memory):
    Tune retries a trial only after its process ended, so it is marked so here."""
    path = run_dir / TRIAL_RECORD
    sessions = json.loads(path.read_text()) if path.is_file() else []
    if sessions and sessions[-1].get("status") == "running":
        sessions[-1]["status"] = "died (the process ended without finishing; retried)"
    sessions.append(entry)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(sessions, indent=1))


def update_last_session(run_dir: Path, **changes: Any) -> None:
    path = run_dir / TRIAL_RECORD
    sessions = json.loads(path.read_text())
    sessions[-1].update(changes)
    write_text_atomically(path, json.dumps(sessions, indent=1))


def sweep_trial(config: dict[str, Any]) -> None:
    """One Tune trial: train (or continue from its checkpoint) one run with the runner's train_one."""
    ray, tune = import_ray()
    sweep_dir = Path(config["sweep_dir"])
    if "run" in config:  # a grid point and seed planned by the runner
        spec, run_dir = ExperimentSpec(**config["run"]["spec"]), Path(config["run"]["run_dir"])
    else:  # a search trial: its sampled values on the base spec, its folder named by the trial
        trial_name = tune.get_context().get_trial_name()
        spec, run_dir = trial_spec(config, trial_name), sweep_dir / trial_name
    if (sweep_dir / STOP_FLAG).exists():
        return  # the sweep was stopped before this trial started: `--resume` runs it
    intra, inter = thread_setting(int(config["cpus"]), spec.gradient_steps)  # read at TensorFlow's first op
    os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"] = str(intra), str(inter)
    state = run_status(spec, run_dir)
    if state == "finished":
        return
    clear_unusable(run_dir)
    record_session(run_dir, {"pid": os.getpid(), "trial": tune.get_context().get_trial_name(),
                              "node": socket.gethostname(), "ray_address": ray.get_runtime_context().gcs_address,
                              "resumed_from_epoch": epochs_done(run_dir)
                              if state == "resume" else None, "status": "running",
                              "tensorflow_threads": [intra, inter]})
    view = TrialView(tune.report, sweep_dir / STOP_FLAG)
    try:
        train_one(spec, run_dir, resume=state == "resume", view=view)
    except TrainingInterrupted:
        update_last_session(run_dir, status="interrupted (checkpointed)")
        return
    except (TrainingDiverged, EnvironmentFault) as error:  # deterministic: a retry would fail again
        update_last_session(run_dir, status=f"failed: {error}")
        return
    update_last_session(run_dir, status="finished")
    view.flush()


def trial_status(run_dir: Path) -> str:
    """The last status a trial process recorded in the run folder ('' when none)."""
    path = Path(run_dir) / TRIAL_RECORD
    try:
        return json.loads(path.read_text())[-1].get("status", "") if path.is_file() else ""
    except (json.JSONDecodeError, IndexError):
        return ""


# ---------------------------------------------------------------------------------------------
# the driver
# ---------------------------------------------------------------------------------------------

def stop_flag_writer(stop_flag: Path, resume_hint: str) -> Callable[[int], None]:
    """The sweep driver's answer to Ctrl-C / SIGTERM (errors.stop_on_signals): the stop flag, which running
    trials see and answer by checkpointing and stopping; pending trials do not start."""
    def request_stop(signum: int) -> None:
        stop_flag.write_text(f"signal {signum}\n")
        print(f"stopping the sweep: each running trial checkpoints, then {resume_hint}", file=sys.stderr,
              flush=True)
    return request_stop


def _trial_id(trial) -> str:
    return trial.trial_id


def run_tuner(tune, trainable, param_space: dict, sweep_dir: Path | None, concurrent: int, cpus: int,
              callback, tune_config: dict | None = None):
    """Tuner.fit with our retry policy, quiet output, Tune's own files out of the way; returns the ResultGrid."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours checkpoints the trials (stop_on_signals)
    os.environ["TUNE_PRINT_ALL_TRIAL_ERRORS"] = "0"  # a dead trial's traceback: our table says it in one line
    storage = Path(tempfile.mkdtemp(prefix="sac-tune-")) if sweep_dir is None else sweep_dir.resolve() / ".ray_tune"
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": cpus}),
        param_space=param_space,
        tune_config=tune.TuneConfig(max_concurrent_trials=concurrent, reuse_actors=True,
                                    trial_dirname_creator=_trial_id, trial_name_creator=_trial_id,
                                    **(tune_config or {})),
        run_config=tune.RunConfig(name="tune", storage_path=str(storage), verbose=0, callbacks=[callback],
                                  failure_config=tune.FailureConfig(max_failures=MAX_FAILURES)))
    try:
        with contextlib.redirect_stdout(WithoutRayWorkerErrors(sys.stdout)), \
                contextlib.redirect_stderr(WithoutRayWorkerErrors(sys.stderr)):
            return tuner.fit()
    finally:
        if sweep_dir is None:
            shutil.rmtree(storage, ignore_errors=True)


class WithoutRayWorkerErrors(io.TextIOBase):
    """A stdout or stderr without the lines Ray's driver prints when a worker dies ("(raylet) A worker died or
    was killed ..."): the progress table says it in one line, and Ray offers no setting for them."""

    def __init__(self, stream) -> None:
        self.stream, self.pending = stream, ""

    def isatty(self) -> bool:  # rich draws its live table only on a terminal
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def write(self, text: str) -> int:
        self.pending += text
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            if "(raylet)" not in line:
                self.stream.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending and "(raylet)" not in self.pending:
            self.stream.write(self.pending)
        self.pending = ""
        self.stream.flush()


def finish(stop_flag: Path, results, run_dirs: Sequence[Path], resume_hint: str) -> None:
    """After the trials: interrupted -> TrainingInterrupted (exit 130); a failed trial -> TrainingDiverged-like
    error naming it (exit 1)."""
    interrupted = stop_flag.exists()
    stop_flag.unlink(missing_ok=True)
    if interrupted:
        raise TrainingInterrupted(f"sweep stopped, running trials checkpointed; {resume_hint}")
    failed = [f"{run_dir}: {trial_status(run_dir)[8:]}" for run_dir in run_dirs
              if trial_status(run_dir).startswith("failed")]
    errors = [f"trial {result.path}: {str(result.error).splitlines()[0]}" for result in results if result.error]
    if failed or errors:
        raise TrainingDiverged("; ".join(failed + errors))


def run_on_ray(runs: Sequence[tuple[ExperimentSpec, Path]], sweep_dir: Path | None, address: str | None,
               max_concurrent: int | None) -> None:
    """Every (grid point, seed) as one Tune trial on the embedded or the given Ray cluster."""
    if not runs:
        return
    control_dir = sweep_dir if sweep_dir is not None else Path(runs[0][1])
    resume_hint = (f"continue with: sac train --resume --run-dir {control_dir} "
                   f"--backend ray" + (f" --ray-address {address}" if address else ""))
    with ray_session(address) as ray:
        control_dir.mkdir(parents=True, exist_ok=True)  # once Ray runs: a failed start leaves nothing
        stop_flag = control_dir.resolve() / STOP_FLAG
        stop_flag.unlink(missing_ok=True)
        _, tune = import_ray()
        concurrent, cpus = plan_resources(ray, len(runs), max_concurrent)
        print(f"Ray: {int(ray.cluster_resources().get('CPU', 0))} CPUs, {len(runs)} trials, {concurrent} at a "
              f"time, {cpus} CPU{'s' if cpus > 1 else ''} each", flush=True)
        labels = {str(Path(run_dir).resolve()): f"{spec.name} seed {spec.seed}" for spec, run_dir in runs}
        trials = [{"spec": spec.to_dict(), "run_dir": str(Path(run_dir).resolve())} for spec, run_dir in runs]
        param_space = {"cpus": cpus, "sweep_dir": str(control_dir.resolve()), "run": tune.grid_search(trials)}
        with stop_on_signals(stop_flag_writer(stop_flag, resume_hint)):
            results = run_tuner(tune, sweep_trial, param_space, sweep_dir, concurrent, cpus,
                                make_progress_callback(tune, MAX_FAILURES, labels))
    finish(stop_flag, results, [Path(run_dir) for _, run_dir in runs], resume_hint)

