"""The experiment runner CLI: `sac {train,tune,eval,play,export,plot,compare,list,fields}` (python -m SoftActorCritic).

A hallway, not a storeroom: parser.py reads the command line, commands.py checks it and calls the library
(SoftActorCritic.runs, sweeps, search, ...), which never imports the CLI. Bad input (spec, files,
environment, run folder) prints one line and exits with status 2 before anything is written.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from blocAndTools.errors import run_command
from SoftActorCritic.experiment_runner.parser import build_parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit status 0 done, 1 environment fault or divergence, 2 bad input, 130 interrupted."""
    args = build_parser().parse_args(argv)
    # Quiet whatever the caller's TF_CPP_MIN_LOG_LEVEL: at 2, TensorFlow still prints ERROR-level notices
    # that are not errors (e.g. oneDNN's DT_INT32 fallback on AVX-512 CPUs). --verbose shows everything.
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0" if args.verbose else "3"
    try:
        return run_command(lambda: args.func(args))
    except BrokenPipeError:  # e.g. `sac list | head`: the reader left; say nothing more (Python docs' recipe)
        if sys.stdout is sys.__stdout__:  # the process's own stdout, never a caller's redirection
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
