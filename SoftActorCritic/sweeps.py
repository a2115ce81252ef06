"""Sweeps: grid points x seeds run one after another (local backend) or as Ray Tune trials.

A sweep folder (`train --run-dir`) holds one folder per run, `sweep.yaml` (the planned runs, for
`--resume`) and `summary.csv` (one row per grid point: the varied fields, the number of seeds, and
the final and best eval return as mean, min and max over the seeds; see sweep_summary.py). On Ray
each (grid point, seed) is one Tune trial calling the runner's own `train_one`, so a trial writes the
same run folder as a local run. A trial that dies is retried by Tune and continues from its run's
own last checkpoint; Ctrl-C asks every running trial to checkpoint and stop.

Ray, Tune and TensorFlow are imported inside the functions that need them: the CLI's `--help`,
`list`, `fields` and spec errors stay fast.
"""
from __future__ import annotations

import contextlib
import datetime
import json
import math
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from blocAndTools.errors import UserInputError
from blocAndTools.tf_threads import thread_setting
from SoftActorCritic.sweep_summary import report_summary, short_value

if TYPE_CHECKING:
    from blocAndTools.experiment_spec import ExperimentSpec

REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = "sweep.yaml"
STOP_FLAG = ".stop_requested"  # written by the driver on Ctrl-C / SIGTERM; trials checkpoint and stop
TRIAL_RECORD = "ray_trial.json"  # in a run folder trained on Ray: one entry per process that ran it
MAX_FAILURES = 3  # Tune restarts of a trial whose process died (each continues from the run's checkpoint)
STOP_CHECK_STEPS = 50  # env steps between two looks at the stop flag


# ---------------------------------------------------------------------------------------------
# planning: the sweep folder and its manifest
# ---------------------------------------------------------------------------------------------

def default_sweep_dir(spec_path: str, overrides: Sequence[str], reruns: int) -> Path | None:
    """runs/<name>/sweep-<date-time> when the spec and --reruns make more than one run, else None."""
    from blocAndTools.experiment_spec import expand_grid, load_raw_spec

    raw = load_raw_spec(spec_path, overrides)
    if len(expand_grid(raw)) * reruns <= 1:
        return None
    return Path("runs") / raw["name"] / f"sweep-{datetime.datetime.now():%Y%m%d-%H%M%S}"


def is_sweep_folder(folder: Path) -> bool:
    """True for a folder written by a sweep (it holds sweep.yaml)."""
    return (Path(folder) / MANIFEST).is_file()


def write_manifest(sweep_dir: Path, runs: Sequence[tuple[ExperimentSpec, Path]], backend: str) -> None:
    """sweep.yaml: every planned run (folder relative to the sweep folder, resolved spec), for --resume."""
    sweep_dir.mkdir(parents=True, exist_ok=True)
    manifest = {"backend": backend, "command": " ".join(sys.argv),
                "runs": [{"folder": str(Path(run_dir).resolve().relative_to(sweep_dir.resolve())),
                          "spec": spec.to_dict()} for spec, run_dir in runs]}
    (sweep_dir / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))


def read_manifest(sweep_dir: Path) -> list[tuple[ExperimentSpec, Path]]:
    """The planned runs of a sweep folder, validated again."""
    from blocAndTools.experiment_spec import ExperimentSpec

    try:
        manifest = yaml.safe_load((sweep_dir / MANIFEST).read_text())
        return [(ExperimentSpec(**entry["spec"]), sweep_dir / entry["folder"]) for entry in manifest["runs"]]
    except (yaml.YAMLError, KeyError, TypeError) as error:
        raise UserInputError(f"{sweep_dir / MANIFEST} is not a sweep manifest ({error})") from None


def epochs_done(run_dir: Path) -> int:
    """Rows of the run's progress.csv (0 when there is none)."""
    path = Path(run_dir) / "progress.csv"
    if not path.is_file():
        return 0
    with path.open() as file:
        return max(0, sum(1 for line in file if line.strip()) - 1)


def has_checkpoint(run_dir: Path) -> bool:
    """True when the run folder holds a checkpoint `train --resume` can continue from."""
    return (Path(run_dir) / "checkpoints" / "checkpoint").is_file() and (Path(run_dir) / "spec.yaml").is_file()


def run_state(spec: ExperimentSpec, run_dir: Path) -> str:
    """'finished' (last epoch checkpointed), 'resume' (a checkpoint to continue from) or 'train' (nothing
    worth keeping)."""
    from SoftActorCritic.experiment_runner import latest_checkpoint_state

    state = latest_checkpoint_state(run_dir) if has_checkpoint(run_dir) else None
    if state is None:
        return "train"
    return "finished" if state["epoch"] >= spec.max_epoch else "resume"


def clear_unusable(run_dir: Path) -> None:
    """Remove a run folder that died before its first checkpoint, so the run starts clean."""
    if Path(run_dir).exists() and not has_checkpoint(run_dir):
        shutil.rmtree(run_dir)


# ---------------------------------------------------------------------------------------------
# the local backend's resume of a sweep folder
# ---------------------------------------------------------------------------------------------

def resume_sweep(sweep_dir: Path, backend: str, make_view: Callable[[], Any], ray_address: str | None = None,
                 max_concurrent: int | None = None) -> None:
    """Continue an interrupted sweep: finished runs are skipped, the others continue from their checkpoints.

    make_view() (which loads TensorFlow) is called only when a run is left to train locally."""
    from SoftActorCritic.experiment_runner import check_environments, train_one

    runs = read_manifest(sweep_dir)
    todo = [(spec, run_dir) for spec, run_dir in runs if run_state(spec, run_dir) != "finished"]
    print(f"resuming sweep {sweep_dir}: {len(runs) - len(todo)} of {len(runs)} runs finished earlier, "
          f"{len(todo)} to run", flush=True)
    check_environments([spec for spec, _ in todo])
    if todo and backend == "ray":
        run_on_ray(todo, sweep_dir, ray_address, max_concurrent)
    elif todo:
        view = make_view()
        for spec, run_dir in todo:
            resume = run_state(spec, run_dir) == "resume"
            clear_unusable(run_dir)
            train_one(spec, run_dir, resume=resume, view=view)
    report_summary(runs, sweep_dir)


# ---------------------------------------------------------------------------------------------
# Ray: starting or joining a cluster
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


def check_backend_options(args) -> None:
    """`train`'s --backend, --ray-address and --max-concurrent, checked before anything is written."""
    if args.backend != "ray":
        if args.ray_address is not None or args.max_concurrent is not None:
            raise UserInputError("--ray-address and --max-concurrent need --backend ray")
        return
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise UserInputError(f"--max-concurrent {args.max_concurrent}: must be >= 1")
    if args.ray_address is not None:
        check_address(args.ray_address)
    import importlib.util

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
# Ray: the trial (runs in a Ray worker process)
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
        from blocAndTools.errors import TrainingInterrupted

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
    """Append this process to the run folder's ray_trial.json (pid, trial id, where it started).

    An earlier entry still "running" is a process that died without a word (killed, out of memory):
    Tune retries a trial only after its process ended, so it is marked so here."""
    path = run_dir / TRIAL_RECORD
    sessions = json.loads(path.read_text()) if path.is_file() else []
    if sessions and sessions[-1].get("status") == "running":
        sessions[-1]["status"] = "died (the process ended without finishing; retried)"
    sessions.append(entry)
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sessions, indent=1))


def update_last_session(run_dir: Path, **changes: Any) -> None:
    path = run_dir / TRIAL_RECORD
    sessions = json.loads(path.read_text())
    sessions[-1].update(changes)
    path.write_text(json.dumps(sessions, indent=1))


def sweep_trial(config: dict[str, Any]) -> None:
    """One Tune trial: train (or continue from its checkpoint) one run with the runner's train_one."""
    from ray import tune

    from blocAndTools.errors import EnvironmentFault, TrainingDiverged, TrainingInterrupted
    from blocAndTools.experiment_spec import ExperimentSpec
    from SoftActorCritic.experiment_runner import train_one

    sweep_dir = Path(config["sweep_dir"])
    if "run" in config:  # a grid point and seed planned by the runner
        spec, run_dir = ExperimentSpec(**config["run"]["spec"]), Path(config["run"]["run_dir"])
    else:  # a search trial: its sampled values on the base spec, its folder named by the trial
        from SoftActorCritic.search import trial_spec
        trial_name = tune.get_context().get_trial_name()
        spec, run_dir = trial_spec(config, trial_name), sweep_dir / trial_name
    if (sweep_dir / STOP_FLAG).exists():
        return  # the sweep was stopped before this trial started: `--resume` runs it
    intra, inter = thread_setting(int(config["cpus"]), spec.gradient_steps)  # read at TensorFlow's first op
    os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"] = str(intra), str(inter)
    state = run_state(spec, run_dir)
    if state == "finished":
        return
    clear_unusable(run_dir)
    record_session(run_dir, {"pid": os.getpid(), "trial": tune.get_context().get_trial_name(),
                              "node": socket.gethostname(), "resumed_from_epoch": epochs_done(run_dir)
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
# Ray: the driver
# ---------------------------------------------------------------------------------------------

@contextlib.contextmanager
def stop_on_signals(stop_flag: Path, resume_hint: str) -> Iterator[None]:
    """Ctrl-C / SIGTERM write the stop flag: running trials checkpoint and stop, pending ones do not start.
    A second Ctrl-C stops at once (the trials keep their last epoch's checkpoint)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if stop_flag.exists() and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop_flag.write_text(f"signal {signum}\n")
        print(f"stopping the sweep: each running trial checkpoints, then {resume_hint}", file=sys.stderr,
              flush=True)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def make_progress_callback(tune, labels: dict[str, str] | None = None):
    """A Tune callback showing a table of trials (status, epoch, last eval return, steps/s): refreshed in
    place on a terminal, one plain line per event otherwise."""
    from rich.console import Console
    from rich.live import Live
    from rich.table import Table

    class SweepProgress(tune.Callback):
        def __init__(self) -> None:
            self.console = Console()
            self.rows: dict[str, dict[str, Any]] = {}
            self.live: Live | None = None
            self.started = time.monotonic()

        def __getstate__(self) -> dict:  # Tune saves its callbacks with the experiment: not the live console
            return {"rows": self.rows, "started": self.started, "console": None, "live": None}

        def __setstate__(self, state: dict) -> None:
            self.__dict__.update(state, console=Console())

        def _label(self, trial) -> str:
            if "run" in trial.config:
                return (labels or {}).get(trial.config["run"]["run_dir"], trial.trial_id)
            from SoftActorCritic.search import sampled_values
            values = sampled_values(trial.config).items()
            return f"{trial.trial_id} " + ", ".join(
                f"{key}={_fmt(value, '{:.3g}') if isinstance(value, float) else short_value(value)}"
                for key, value in values)

        def _table(self) -> Table:
            total = sum(row.get("steps_per_s") or 0 for row in list(self.rows.values()) if row["status"] == "RUNNING")
            table = Table(title=f"trials ({time.monotonic() - self.started:.0f} s, running: {total:.0f} env "
                                f"steps/s in total)", title_justify="left")
            for column in ("trial", "status", "epoch", "eval return", "steps/s"):
                table.add_column(column, justify="left" if column in ("trial", "status") else "right")
            for row in list(self.rows.values()):
                table.add_row(row["label"], row["status"], str(row.get("epoch", "-")),
                              _fmt(row.get("eval_return_mean")), _fmt(row.get("steps_per_s"), "{:.0f}"))
            return table

        def __rich__(self) -> Table:
            return self._table()

        def _update(self, trial, status: str, result: dict | None = None) -> None:
            row = self.rows.setdefault(trial.trial_id, {"label": self._label(trial)})
            row["status"] = status
            if result:
                row.update({key: result.get(key) for key in ("epoch", "eval_return_mean", "steps_per_s")})
            if self.console.is_terminal:
                if self.live is None:  # redrawn twice a second from __rich__ (the elapsed time moves)
                    self.live = Live(self, console=self.console, refresh_per_second=2)
                    self.live.start()
                self.live.refresh()
            else:
                detail = "" if not result else (f" epoch {row.get('epoch')} eval return "
                                                f"{_fmt(row.get('eval_return_mean'))} steps/s "
                                                f"{_fmt(row.get('steps_per_s'), '{:.0f}')}")
                print(f"trial {row['label']}: {status.lower()}{detail}", flush=True)

        def on_trial_start(self, iteration, trials, trial, **info):
            self._update(trial, "RUNNING")

        def on_trial_result(self, iteration, trials, trial, result, **info):
            self._update(trial, "RUNNING", result)

        def on_trial_recover(self, iteration, trials, trial, **info):
            self._update(trial, "RETRYING")

        def on_trial_complete(self, iteration, trials, trial, **info):
            self._update(trial, "ENDED")  # every epoch, or stopped early (ASHA, Ctrl-C): see the epoch

        def on_trial_error(self, iteration, trials, trial, **info):
            self._update(trial, "ERROR")

        def on_experiment_end(self, trials, **info):
            if self.live is not None:
                self.live.stop()
                self.live = None

    return SweepProgress()


def _trial_id(trial) -> str:
    return trial.trial_id


def _fmt(value: Any, fmt: str = "{:.1f}") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def run_tuner(tune, trainable, param_space: dict, sweep_dir: Path | None, concurrent: int, cpus: int,
              callback, tune_config: dict | None = None):
    """Tuner.fit with our retry policy, quiet output, Tune's own files out of the way; returns the ResultGrid."""
    os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"  # ours checkpoints the trials (stop_on_signals)
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
        return tuner.fit()
    finally:
        if sweep_dir is None:
            shutil.rmtree(storage, ignore_errors=True)


def finish(stop_flag: Path, results, run_dirs: Sequence[Path], resume_hint: str) -> None:
    """After the trials: interrupted -> TrainingInterrupted (exit 130); a failed trial -> TrainingDiverged-like
    error naming it (exit 1)."""
    from blocAndTools.errors import TrainingDiverged, TrainingInterrupted

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
        with stop_on_signals(stop_flag, resume_hint):
            results = run_tuner(tune, sweep_trial, param_space, sweep_dir, concurrent, cpus,
                                make_progress_callback(tune, labels))
    finish(stop_flag, results, [Path(run_dir) for _, run_dir in runs], resume_hint)

