"""The learning benchmark's results, without training: run records, and the CSV, table and plot made from them.

benchmarks/learning_benchmark.py plans and runs the (task, library, seed) runs and calls write_report after each.
"""
from __future__ import annotations

import datetime
import json
import math
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from rich.console import Console

from benchmarks.report import print_table, save_results
from blocAndTools.atomic_files import write_text_atomically
from blocAndTools.errors import UserInputError
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.statistics import iqm_interval, probability_of_improvement
from SoftActorCritic.plotting import band_curve, draw_curve
from SoftActorCritic.sweep_summary import interval_cell, interval_columns

matplotlib.use("Agg")  # files only, no display (pyplot picks its backend at the first figure)

REPO = Path(__file__).resolve().parent.parent
PEERS = {"sb3": ("SB3", "Stable-Baselines3"), "sbx": ("sbx", "sbx")}  # library: (short name, name)
ALGORITHMS = {"sac": "SAC", "droq": "DroQ", "crossq": "CrossQ"}
PROJECT_NAME = "this project (SAC v1)"
# A family task's second table sets its project side against this project's SAC: the base task's project side,
# named "base" there
BASE_NAME = "this project's SAC (the general default)"
SHORT_NAMES = {**{library: names[0] for library, names in PEERS.items()}, "base": "SAC"}  # in P(project > ...)
COLUMNS = ["library", "seed", "env_steps", "eval_return_mean", "eval_return_std", "complete"]
EVALUATION_KEYS = ("env_steps", "eval_return_mean", "eval_return_std", "wall_time_s")


def library_names(peer: str = "sb3", algo: str = "sac", project: str = PROJECT_NAME) -> dict[str, str]:
    """A task's two libraries and their names in its table and plot: this project first, then the peer it is
    compared with (its library, sb3 or sbx, with the algorithm, e.g. 'sbx DroQ')."""
    return {"project": project, peer: f"{PEERS[peer][1]} {ALGORITHMS[algo]}"}


LIBRARIES = library_names()  # the tasks compared with SB3's SAC, and the functions' default


def improvement_label(libraries: dict[str, str]) -> str:
    """'P(project > SB3)', 'P(project > sbx)' or 'P(project > SAC)': the other side named by its short name."""
    return f"P(project > {SHORT_NAMES[peer_of(libraries)]})"


def peer_of(libraries: dict[str, str]) -> str:
    """The peer library of a task's libraries (the one that is not this project)."""
    return next(library for library in libraries if library != "project")


@dataclass
class Run:
    """One (task, library, seed) run of the benchmark: what makes it, where it lives, how it went."""
    task: str
    library: str
    seed: int
    config: dict  # everything that makes two runs the same: a record with another config is stale
    command: list[str]
    record: Path  # the finished run's JSON record (committed)
    work_dir: Path  # our run folder, or the peer's folder for its log and partial evaluations (gitignored)
    status: str = "pending"
    evaluations: list[dict] = field(default_factory=list)

    @property
    def lock(self) -> Path:
        """The file an invocation locks while it runs this (library, task, seed): see learning_benchmark.claim."""
        return self.work_dir.parent / f"seed{self.seed}.lock"


def comparable(spec: ExperimentSpec) -> dict:
    """The spec's fields that change the numbers (name, description and the announced goal do not)."""
    return {key: value for key, value in spec.to_dict().items()
            if key not in ("name", "description", "expected_reward_goal")}


def display(command: list[str]) -> str:
    """A command as a shell line, relative to the repository root (python: this project's interpreter)."""
    return shlex.join(["python" if part == sys.executable else part for part in command]).replace(str(REPO) + "/", "")


# ---------------------------------------------------------------------------------------------
# records: a finished run's JSON in the results, an unfinished one's evaluations in its folder
# ---------------------------------------------------------------------------------------------

def read_record(run: Run) -> dict | None:
    """The finished run's record when it exists and matches the run's config, else None."""
    try:
        record = json.loads(run.record.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("finished") and same_config(record.get("config"), run.config) else None


# A peer record's config fields added since the first records, at the value the older records were measured with:
# the peer runner ran SB3's SAC only before "algo" existed.
PEER_CONFIG_DEFAULTS = {"algo": "sac"}


def same_config(recorded: dict | None, config: dict) -> bool:
    """True when a record's config is `config`. A project record's spec is read back through ExperimentSpec: a field
    added to the spec since the record was written takes its default there, which keeps the behaviour the record
    was measured with (a new field's default never changes a run). A peer record without a field added since
    (PEER_CONFIG_DEFAULTS) was measured with that field's default value."""
    if not isinstance(recorded, dict):
        return False
    if "spec" not in recorded:
        return {**PEER_CONFIG_DEFAULTS, **recorded} == config
    try:
        spec = comparable(ExperimentSpec(**recorded["spec"]))
    except (TypeError, UserInputError):  # a field removed since, or a value no longer valid
        return False
    return {**recorded, "spec": spec} == config


def write_record(run: Run, evaluations: list[dict], finished: bool, extra: dict | None = None) -> None:
    """A run's record: config, command, evaluations; finished=False marks a partial peer run."""
    path = run.record if finished else run.work_dir / "partial.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"library": run.library, "task": run.task, "seed": run.seed, "finished": finished,
              "config": run.config, "command": display(run.command), "evaluations": evaluations, **(extra or {})}
    write_text_atomically(path, json.dumps(record, indent=1) + "\n")


def project_evaluations(run_dir: Path) -> list[dict]:
    """The evaluations in our run folder's progress.csv (empty when there is none yet)."""
    try:
        frame = pd.read_csv(run_dir / "progress.csv")
    except (OSError, pd.errors.EmptyDataError):
        return []
    return frame[list(EVALUATION_KEYS)].to_dict("records")


def unfinished_evaluations(run: Run) -> list[dict]:
    """An unfinished run's evaluations so far: our run folder's progress.csv, or the peer's partial record; none when
    they were made with another configuration."""
    if run.library == "project":
        if run.work_dir.joinpath("spec.yaml").is_file():
            try:
                if comparable(ExperimentSpec.from_yaml(run.work_dir / "spec.yaml")) != run.config["spec"]:
                    return []
            except UserInputError:
                return []
        return project_evaluations(run.work_dir)
    try:
        partial = json.loads((run.work_dir / "partial.json").read_text())
    except (OSError, json.JSONDecodeError):
        return []
    return partial["evaluations"] if same_config(partial.get("config"), run.config) else []


# ---------------------------------------------------------------------------------------------
# assembling: CSV, table, plot
# ---------------------------------------------------------------------------------------------

def assemble(runs: list[Run]) -> pd.DataFrame:
    """Every evaluation of the task's runs, finished or not, as rows of COLUMNS (complete: from a finished record)."""
    rows = []
    for run in runs:
        record = read_record(run)
        evaluations = record["evaluations"] if record is not None else unfinished_evaluations(run)
        for item in evaluations:
            rows.append({"library": run.library, "seed": run.seed, "env_steps": int(item["env_steps"]),
                         "eval_return_mean": float(item["eval_return_mean"]),
                         "eval_return_std": float(item["eval_return_std"]), "complete": record is not None})
    return pd.DataFrame(rows, columns=COLUMNS)


def comparison(scores: dict[str, np.ndarray], libraries: dict[str, str]) -> dict:
    """Per library n and the IQM of its scores with the 95% bootstrap interval; P(project > peer) with its interval
    when both libraries have scores. Columns <library>_n and sweep_summary.interval_columns <library>_iqm(_ci_low,
    _ci_high), p(_ci_low, _ci_high): NaN where a library has no score, NaN bounds for an interval over one seed."""
    row = {}
    for library, values in scores.items():
        row[f"{library}_n"] = values.size if values.size else math.nan
        row.update(interval_columns(f"{library}_iqm", iqm_interval(values) if values.size else None))
    both = all(values.size for values in scores.values())
    row.update(interval_columns("p", probability_of_improvement(scores["project"], scores[peer_of(libraries)])
                                if both else None))
    return row


def budget_table(frame: pd.DataFrame, budgets: tuple[int, ...],
                 libraries: dict[str, str] = LIBRARIES) -> pd.DataFrame:
    """One row per budget that a seed reached (column env_steps): the comparison of the libraries' eval returns of
    the seeds that reached it."""
    rows = []
    for budget in budgets:
        scores = {library: frame.loc[(frame["library"] == library) & (frame["env_steps"] == budget),
                                     "eval_return_mean"].to_numpy() for library in libraries}
        if any(values.size for values in scores.values()):
            rows.append({"env_steps": budget, **comparison(scores, libraries)})
    return pd.DataFrame(rows)


def curve_row(frame: pd.DataFrame, libraries: dict[str, str] = LIBRARIES) -> dict | None:
    """The comparison over whole curves (AUC): each finished seed's mean over all its evaluations (both libraries
    evaluate at the same steps); None before any seed has finished. An unfinished seed's curve is shorter: left out."""
    finished = frame[frame.groupby(["library", "seed"])["complete"].transform("all")]
    scores = {library: finished[finished["library"] == library].groupby("seed")["eval_return_mean"].mean().to_numpy()
              for library in libraries}
    return comparison(scores, libraries) if any(values.size for values in scores.values()) else None


CURVE_LABEL = "AUC (each finished seed's mean evaluation)"
SCORES_LEGEND = ("deterministic eval return, mean of the evaluation episodes; IQM over seeds [95% bootstrap CI], n = "
                 "seeds that reached")  # the tables' legend, then what was reached


def budget_cells(row: dict, libraries: dict[str, str] = LIBRARIES) -> list[str]:
    """One row's cells: each library's 'IQM [low, high], n=k' (empty: no seed), then P(project > peer)."""
    cells = [f"{interval_cell(row, f'{library}_iqm', digits=0)}, n={int(row[f'{library}_n'])}"
             if row[f"{library}_n"] > 0 else "" for library in libraries]
    return [*cells, interval_cell(row, "p", digits=2) if not math.isnan(row["p"]) else ""]


def table_lines(table: pd.DataFrame, curve: dict | None, libraries: dict[str, str]) -> list[list[str]]:
    """The table's rows of cells: one per budget, then the whole curves' when a seed has finished."""
    rows = [[f"{row['env_steps']:,}", *budget_cells(row, libraries)] for row in table.to_dict("records")]
    return rows + ([[CURVE_LABEL, *budget_cells(curve, libraries)]] if curve is not None else [])


def markdown_table(table: pd.DataFrame, title: str, libraries: dict[str, str] = LIBRARIES,
                   curve: dict | None = None) -> str:
    """The budget table as markdown: one row per budget (and the curve_row), one column per library, then
    P(project > peer)."""
    improvement, peer = improvement_label(libraries), SHORT_NAMES[peer_of(libraries)]
    lines = [f"**{title}** ({SCORES_LEGEND} the step; {improvement} = the probability that a seed "
             f"of this project scores higher than a seed of {peer} there, 0.5 = no difference)", "",
             "| env steps | " + " | ".join(libraries.values()) + f" | {improvement} |",
             "|---|" + "---|" * (len(libraries) + 1)]
    lines += ["| " + " | ".join(cells) + " |" for cells in table_lines(table, curve, libraries)]
    return "\n".join(lines) + "\n"


def overview_line(task: str, frame: pd.DataFrame, budget: int, libraries: dict[str, str]) -> list[str] | None:
    """A task's line of the overview: the task, its last budget, both sides' names, then each side's IQM [95% CI], n
    and P(project > peer) at that budget, then the same over the whole curves (curve_row). None before a seed has
    reached the last budget."""
    table = budget_table(frame, (budget,), libraries)
    if table.empty:
        return None
    return [task, f"{budget:,}", *libraries.values(), *budget_cells(table.iloc[0].to_dict(), libraries),
            *budget_cells(curve_row(frame, libraries), libraries)]


OVERVIEW_COLUMNS = ["task", "env steps", "this project", "peer", "this project, end", "peer, end",
                    "P(project > peer), end", "this project, AUC", "peer, AUC", "P(project > peer), AUC"]


def overview_markdown(lines: list[list[str]]) -> str:
    """The overview: one line per task (overview_line) under a legend."""
    return "\n".join([
        f"**Every task of the learning benchmark** ({SCORES_LEGEND} it; end: at the task's last budget; AUC: each "
        "finished seed's mean over all its evaluations; P(project > peer) = the probability that a seed of this "
        "project scores higher than a seed of the peer, 0.5 = no difference)", "",
        "| " + " | ".join(OVERVIEW_COLUMNS) + " |", "|---" * len(OVERVIEW_COLUMNS) + "|",
        *("| " + " | ".join(cells) + " |" for cells in lines)]) + "\n"


def plot(frame: pd.DataFrame, title: str, png: Path, libraries: dict[str, str] = LIBRARIES) -> None:
    """Per library: the IQM over seeds against env steps and its 95% bootstrap CI band (SoftActorCritic.plotting)."""
    figure, axis = plt.subplots(figsize=(8, 4.6))
    for index, library in enumerate(libraries):
        own = frame[frame["library"] == library]
        if own.empty:
            continue
        seeds = own["seed"].nunique()
        finished = own.groupby("seed")["complete"].all().sum()
        label = f"{libraries[library]}: {seeds} seed{'s' if seeds > 1 else ''}"
        if finished < seeds:
            label += f" ({seeds - finished} unfinished)"
        draw_curve(axis, band_curve(own, "eval_return_mean"), f"C{index}", label)
    axis.set_xlabel("environment steps")
    axis.set_ylabel("eval return (deterministic, mean of episodes)")
    axis.ticklabel_format(axis="x", style="plain")
    axis.grid(alpha=0.3)
    if axis.get_legend_handles_labels()[0]:
        axis.legend(fontsize=9)
    axis.set_title(f"{title}: IQM over seeds, 95% bootstrap CI band", fontsize=11)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=100)
    plt.close(figure)


def against_base(frame: pd.DataFrame, base_runs: list[Run], budgets: tuple[int, ...], title: str,
                 libraries: dict[str, str]) -> str | None:
    """A family task's project side (of its assembled `frame`) against this project's SAC, as markdown: base_runs
    are the project runs of the task it derives from (the general default, same environment, seeds and evaluation
    episodes), their evaluations up to the family task's last budget, so that both AUCs cover the same env steps.
    None before both sides have an evaluation."""
    family = frame[frame["library"] == "project"]
    base = assemble(base_runs)
    base = base[base["env_steps"] <= budgets[-1]].assign(library="base")
    if family.empty or base.empty:
        return None
    frame = pd.concat([family, base], ignore_index=True)
    pair = {"project": libraries["project"], "base": BASE_NAME}
    return markdown_table(budget_table(frame, budgets, pair), f"{title}, against this project's SAC", pair,
                          curve_row(frame, pair))


def write_report(folder: Path, title: str, budgets: tuple[int, ...], runs: list[Run], argv: list[str],
                 console: Console, quiet: bool = False, libraries: dict[str, str] = LIBRARIES,
                 base_runs: list[Run] | None = None) -> None:
    """Write the task's evaluations.csv, curves.png, table.md and command.txt in `folder`, and with base_runs
    against_sac.md (against_base); print the table unless quiet. `libraries`: the task's two (library_names)."""
    frame = assemble(runs)
    if frame.empty:  # no run has started: no empty files to commit
        console.print(f"{folder.name}: no evaluations yet")
        return
    folder.mkdir(parents=True, exist_ok=True)
    save_results(frame, folder / "evaluations.csv", float_format="%.2f")
    plot(frame, title, folder / "curves.png", libraries)
    table, curve = budget_table(frame, budgets, libraries), curve_row(frame, libraries)
    (folder / "table.md").write_text(markdown_table(table, title, libraries, curve))
    against = against_base(frame, base_runs, budgets, title, libraries) if base_runs else None
    if against is not None:
        (folder / "against_sac.md").write_text(against)
    lines = [f"# {datetime.datetime.now():%Y-%m-%d %H:%M}",
             f"python -m benchmarks.learning_benchmark {shlex.join(argv)}", "",
             "# runs (status at the end of this invocation)"]
    for run in runs:
        status = run.status
        if status.startswith("not run") and read_record(run) is not None:  # an invocation running beside this one
            status = "finished (by another invocation)"
        lines += [f"{run.library} seed {run.seed}: {status}", f"  {display(run.command)}"]
    (folder / "command.txt").write_text("\n".join(lines) + "\n")
    if not quiet:
        print_table(console, title, ["env steps", *(f"{library}: IQM [95% CI], n" for library in libraries),
                                     improvement_label(libraries)],
                    table_lines(table, curve, libraries))
