"""The `sac` command line: every command, its options and their help."""
from __future__ import annotations

import argparse

from SoftActorCritic.experiment_runner.commands import (
    command_compare,
    command_eval,
    command_export,
    command_fields,
    command_list,
    command_play,
    command_plot,
    command_train,
    command_tune,
)

ENV_HELP = ("a gymnasium environment id (or package.module:EnvId-v0): without --spec, the general default (the "
            "ExperimentSpec defaults, see `sac fields`) on it; with --spec, that spec on this environment")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command; each subcommand's `func` is its function in commands.py."""
    parser = argparse.ArgumentParser(prog="sac", description="Soft Actor-Critic (TensorFlow 2): train, evaluate, "
                                     "watch and export policies on gymnasium continuous-control tasks.")
    parser.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train from a spec (a grid of specs, with reruns), or resume a run")
    train.add_argument("--env", metavar="ENV_ID", help=ENV_HELP)
    train.add_argument("--spec", help="spec YAML file, or a shipped experiment's name, e.g. pendulum (see `sac list`)")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a spec field (repeatable); a list value makes a grid search; with --resume "
                            "only max_epoch=N, to extend the run (a sweep folder: each of its runs)")
    train.add_argument("--run-dir", help="run folder (default runs/<name>/<date-time>-seed<N>); with a grid "
                                         "or reruns, the sweep folder (default runs/<name>/sweep-<date-time>)")
    train.add_argument("--reruns", type=int, default=1, help="seeds per grid point: seed, seed+1, ...")
    train.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint "
                                                             "(a sweep folder: its unfinished runs)")
    train.add_argument("--backend", choices=("local", "ray"), default="local",
                       help="local: the runs one after another in this process; ray: each run is a Ray Tune "
                            "trial (retried from its checkpoint if its process dies)")
    train.add_argument("--ray-address", metavar="HOST:PORT",
                       help="join the Ray cluster started with `ray start --head` there (default: start a local "
                            "one inside this command)")
    train.add_argument("--max-concurrent", type=int, metavar="K",
                       help="Ray trials at a time (default: one per CPU of the cluster); the CPUs are shared "
                            "evenly between them")
    train.set_defaults(func=command_train)

    search = commands.add_parser("tune", help="hyperparameter search on Ray Tune (Optuna sampler, ASHA stopping); "
                                              "writes the best configuration as a spec file")
    search.add_argument("--env", metavar="ENV_ID", help=ENV_HELP)
    search.add_argument("--spec", help="spec YAML file or a shipped experiment's name; a field written as a "
                                       "distribution, e.g. 'loguniform(1e-4, 1e-2)', is searched")
    search.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec field (repeatable)")
    search.add_argument("--search", action="append", default=[], metavar="FIELD=DISTRIBUTION",
                        help="search a field (repeatable): uniform(a, b), loguniform(a, b), randint(a, b) "
                             "(b excluded) or choice([v1, v2, ...])")
    search.add_argument("--samples", type=int, default=8, metavar="N", help="configurations to try (default 8)")
    search.add_argument("--scheduler", choices=("asha", "none"), default="asha",
                        help="asha: stop poor trials early on their per-epoch eval return; none: run all to the end")
    search.add_argument("--run-dir", help="search folder (default runs/<name>/tune-<date-time>): one run folder "
                                          "per trial, summary.csv and best_spec.yaml")
    search.add_argument("--ray-address", metavar="HOST:PORT",
                        help="join the Ray cluster started with `ray start --head` there (default: a local one)")
    search.add_argument("--max-concurrent", type=int, metavar="K",
                        help="trials at a time (default: one per CPU of the cluster)")
    search.set_defaults(func=command_tune)

    for name, helptext, func in (("eval", "deterministic return of a run's policy, tanh(mu)", command_eval),
                                 ("play", "watch a run's policy, or record videos", command_play)):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--run-dir", required=True, help="the run folder (or a policy file)")
        sub.add_argument("--episodes", type=int, default=10 if name == "eval" else 1, help="number of episodes")
        sub.add_argument("--best", action="store_true", help="the best evaluated policy instead of the newest one")
        if name == "eval":
            sub.add_argument("--episodes-of", choices=("play", "evaluation"), default="play",
                             help="play: start states unseen by training (default); evaluation: those of the "
                                  "run's evaluations after each epoch, to look into one of them")
        if name == "play":
            sub.add_argument("--record", action="store_true", help="write mp4 videos to <run-dir>/videos/")
        sub.set_defaults(func=func)

    export = commands.add_parser("export", help="write a run's policy as a TensorFlow SavedModel")
    export.add_argument("--run-dir", required=True, help="the run folder (or a policy file)")
    export.add_argument("--best", action="store_true", help="the best evaluated policy instead of the newest one")
    export.add_argument("--out", required=True, help="SavedModel folder to create (must not exist)")
    export.set_defaults(func=command_export)

    plot = commands.add_parser("plot", help="learning curves (eval return vs env steps) of one or more runs")
    plot.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                      help="run folders, or folders of runs (one curve per grid point over its reruns)")
    plot.add_argument("--out", help="image file to write (default: learning_curves.png next to the runs)")
    plot.add_argument("--metric", action="append", metavar="COLUMN",
                      help="progress.csv column to draw, one panel each (repeatable; default eval_return_mean), "
                           "e.g. q1_mean for overestimation")
    plot.add_argument("--band", choices=("iqm", "minmax"), default="iqm",
                      help="iqm: the IQM over the runs at each env step with its 95%% bootstrap CI band; minmax: "
                           "their mean, shaded from min to max (no band for one run)")
    plot.set_defaults(func=command_plot)

    compare = commands.add_parser(
        "compare", help="two sets of finished runs: IQM [95%% CI] of each and P(A > B), the probability that a run "
                        "of A beats a run of B, on the final eval return and its AUC; a performance-profile plot",
        description="Each side is a folder of runs of one grid point: a run folder, a grid point's folder in a sweep "
                    "(SWEEP/<name>-<field>=<value>), or a sweep folder with one grid point. Only finished runs count.")
    compare.add_argument("a", metavar="RUNS_A", help="folder of A's runs")
    compare.add_argument("b", metavar="RUNS_B", help="folder of B's runs")
    compare.add_argument("--metric", default="eval_return_mean", metavar="COLUMN",
                         help="progress.csv column that scores a run (default eval_return_mean)")
    compare.add_argument("--out", help="image file of the performance profiles (default: compare-<B>.png in RUNS_A)")
    compare.set_defaults(func=command_compare)

    listing = commands.add_parser("list", help="the shipped experiments, with a one-line description each")
    listing.add_argument("--dir", help="list the spec files of this folder instead")
    listing.set_defaults(func=command_list)

    fields = commands.add_parser("fields", help="every ExperimentSpec field with its default and meaning")
    fields.set_defaults(func=command_fields)
    return parser
