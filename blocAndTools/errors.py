"""The exceptions that end a command, each with its exit status, the one place that maps them, and the one
signal handler that asks a command to stop.

The CLI (SoftActorCritic.experiment_runner) and the TensorFlow-free video recorder print
such an error as one line and exit with its status; anything else is a bug and keeps its
traceback. This module imports nothing heavy, so commands fail fast on bad input.
"""
from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator


class UserInputError(ValueError):
    """Bad input from the user (spec values, files, environments): exit status 2."""


class EnvironmentFault(RuntimeError):
    """The environment itself raised during `step` or `reset`, or returned a non-finite value: exit status 1."""


class TrainingDiverged(Exception):
    """A loss, metric or weight became NaN or infinite: the run stopped without checkpointing it (exit 1)."""


class TrainingInterrupted(Exception):
    """SIGINT or SIGTERM arrived: a checkpoint was written and the run stopped (exit 130)."""


EXIT_STATUS: dict[type[Exception], tuple[int, str]] = {
    UserInputError: (2, "error"), EnvironmentFault: (1, "error"), TrainingDiverged: (1, "error"),
    TrainingInterrupted: (130, "interrupted")}


def run_command(command: Callable[[], int | None]) -> int:
    """Run command(); an error of EXIT_STATUS is printed on one line to stderr and becomes its exit status."""
    try:
        return command() or 0
    except tuple(EXIT_STATUS) as error:
        status, prefix = next(value for kind, value in EXIT_STATUS.items() if isinstance(error, kind))
        print(f"{prefix}: {error}", file=sys.stderr)
        return status


@contextlib.contextmanager
def stop_on_signals(request_stop: Callable[[int], None]) -> Iterator[None]:
    """While inside: SIGINT (Ctrl-C) and SIGTERM call request_stop(signum), which asks the work to checkpoint and
    stop (it then raises TrainingInterrupted); a second Ctrl-C stops at once (KeyboardInterrupt).

    The one signal handler of the project (a run, a sweep's driver). Off the main thread, where Python
    cannot set handlers (a Ray Tune trial), it does nothing: the trial's driver stops it.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    asked = []

    def handler(signum, frame):
        if asked and signum == signal.SIGINT:
            raise KeyboardInterrupt
        asked.append(signum)
        request_stop(signum)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
