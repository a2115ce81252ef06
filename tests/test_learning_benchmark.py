"""benchmarks/learning_benchmark.py and learning_report.py without training: records, CSV assembly, budget table
(IQM, CI, P(project > peer)), plot, skipping finished runs, locks, the peer (SB3 or sbx) of a task. The peer runner
itself needs the peer venv: its argument checks run here, its resume only where that venv exists (not in CI)."""
from __future__ import annotations

import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path
from unittest import mock

import gymnasium
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

from benchmarks import learning_benchmark, learning_report  # the repository root is on a test run's path
from blocAndTools.errors import stop_on_signals
from blocAndTools.experiment_spec import ExperimentSpec
from blocAndTools.statistics import iqm_interval, probability_of_improvement

TASK = learning_benchmark.QUICK_TASK  # Pendulum, 600 steps, epochs of 200: three evaluations per run
# The same compared with sbx's DroQ configuration, our side still the general default (no spec file needed)
SBX_TASK = replace(TASK, peer="sbx", peer_algo="droq")
# A record of SB3's seed 1 on pendulum written before the peer runner learned sbx: its config has no "algo"
OLD_SB3_RECORD = learning_report.REPO / "benchmarks/results/learning/pendulum/records/sb3-seed1.json"


def evaluations(*returns: float) -> list[dict]:
    return [{"env_steps": 200 * (index + 1), "eval_return_mean": value, "eval_return_std": 1.0, "wall_time_s": 1.0}
            for index, value in enumerate(returns)]


def iqm_cell(values: list[float]) -> str:
    """A report's cell for these seeds' scores, from blocAndTools.statistics: 'IQM [low, high], n=k'."""
    interval = iqm_interval(values)
    return f"{interval.point:.0f} [{interval.low:.0f}, {interval.high:.0f}], n={len(values)}"


def p_cell(ours: list[float], theirs: list[float]) -> str:
    """A report's P(project > peer) cell: 'P [low, high]'."""
    interval = probability_of_improvement(ours, theirs)
    return f"{interval.point:.2f} [{interval.low:.2f}, {interval.high:.2f}]"


def finishing_run(peer_returns: tuple[float, ...] = (-1000, -700, -400)):
    """A stand-in for run_project / run_peer that finishes at once; the list collects (library, seed). Our runs
    evaluate to -1000, -700, -400, the peer's to peer_returns."""
    started = []

    def fake_run(run, deadline, console):
        started.append((run.library, run.seed))
        returns = (-1000, -700, -400) if run.library == "project" else peer_returns
        learning_report.write_record(run, evaluations(*returns), finished=True)
        run.status = "finished"

    return started, fake_run


class LearningBenchmarkTestCase(unittest.TestCase):
    def setUp(self) -> None:
        self.temporary = tempfile.TemporaryDirectory()
        self.addCleanup(self.temporary.cleanup)
        self.out_dir = Path(self.temporary.name) / "results"
        self.runs_dir = Path(self.temporary.name) / "runs"

    def plan(self, library: str, seed: int, task=TASK, task_name: str = "pendulum"):
        return learning_benchmark.plan(task_name, task, library, seed, self.out_dir, self.runs_dir)


class TestRecordsAndAssembly(LearningBenchmarkTestCase):
    def test_sb3_gets_the_projects_evaluation_seeds_and_interval(self) -> None:
        project, sb3 = self.plan("project", 3), self.plan("sb3", 3)
        self.assertEqual(project.config["eval_seeds"], sb3.config["eval_seeds"])
        self.assertEqual(len(sb3.config["eval_seeds"]), 2)  # QUICK_TASK's max_eval_trj
        command = sb3.command
        self.assertEqual(command[command.index("--eval-interval") + 1], "200")
        self.assertEqual(command[command.index("--eval-seeds") + 1], ",".join(map(str, sb3.config["eval_seeds"])))

    def test_finished_records_partial_runs_and_stale_records_make_the_csv(self) -> None:
        finished_sb3, partial_sb3 = self.plan("sb3", 1), self.plan("sb3", 2)
        learning_report.write_record(finished_sb3, evaluations(-1500, -800, -300), finished=True)
        learning_report.write_record(partial_sb3, evaluations(-1400), finished=False)
        # our run 1 is in progress: its folder holds the resolved spec and two epochs of progress.csv
        running = self.plan("project", 1)
        running.work_dir.mkdir(parents=True)
        learning_benchmark.project_spec(TASK, 1).to_yaml(running.work_dir / "spec.yaml")
        pd.DataFrame(evaluations(-1200, -600)).to_csv(running.work_dir / "progress.csv", index=False)
        # our run 2 has a record made with another configuration: stale, left out
        stale = self.plan("project", 2)
        stale.config = {**stale.config, "eval_seeds": [0, 0]}
        learning_report.write_record(stale, evaluations(-100, -100, -100), finished=True)

        frame = learning_report.assemble([finished_sb3, partial_sb3, running, self.plan("project", 2)])
        self.assertEqual(list(frame.columns), learning_report.COLUMNS)
        self.assertEqual(len(frame), 3 + 1 + 2)
        self.assertEqual(frame[frame["complete"]]["seed"].tolist(), [1, 1, 1])
        self.assertEqual(frame[(frame["library"] == "project")]["eval_return_mean"].tolist(), [-1200, -600])
        self.assertIsNone(learning_report.read_record(self.plan("project", 2)))

    def test_a_record_from_before_a_spec_field_was_added_is_still_read(self) -> None:
        """A field added since (at its default) leaves the record valid; the same field at another value, a field
        the spec no longer has, or another value of a recorded field make it stale."""
        run = self.plan("project", 1)
        learning_report.write_record(run, evaluations(-1000), finished=True)
        record = json.loads(run.record.read_text())
        for recorded_spec, valid in (({k: v for k, v in record["config"]["spec"].items() if k != "n_step"}, True),
                                     ({**record["config"]["spec"], "n_step": 3}, False),
                                     ({**record["config"]["spec"], "retired_field": 1}, False),
                                     ({**record["config"]["spec"], "seed": 99}, False)):
            run.record.write_text(json.dumps({**record, "config": {**record["config"], "spec": recorded_spec}}))
            self.assertEqual(learning_report.read_record(run) is not None, valid, recorded_spec)

    def test_record_is_valid_json_with_a_relative_command(self) -> None:
        run = self.plan("project", 1)
        learning_report.write_record(run, evaluations(-1000), finished=True)
        record = json.loads(run.record.read_text())
        self.assertTrue(record["command"].startswith("python -m SoftActorCritic train --env Pendulum-v1 --set "))
        self.assertNotIn(str(learning_report.REPO), record["command"].replace(str(self.runs_dir), ""))


class TestBudgetTable(unittest.TestCase):
    CSV = """library,seed,env_steps,eval_return_mean,eval_return_std,complete
project,1,1000,-300,1,True
project,2,1000,-100,1,True
project,3,1000,-200,1,False
project,4,1000,-1000,1,True
project,5,1000,-150,1,True
project,1,2000,-150,1,True
project,2,2000,-120,1,False
project,1,4000,-80,1,True
sb3,1,1000,-110,1,True
sb3,2,1000,-130,1,True
sb3,3,1000,-500,1,True
sb3,4,1000,-90,1,True
sb3,1,2000,-90,1,True
"""
    PROJECT_1000, SB3_1000 = [-300, -100, -200, -1000, -150], [-110, -130, -500, -90]

    def table(self) -> pd.DataFrame:
        return learning_report.budget_table(pd.read_csv(io.StringIO(self.CSV)), (1000, 2000, 3000, 4000))

    def test_iqm_over_the_seeds_that_reached_each_budget_and_the_probability_of_improvement(self) -> None:
        table = self.table().set_index("env_steps")
        self.assertEqual(table.index.tolist(), [1000, 2000, 4000])  # nobody reached 3000
        row = table.loc[1000]
        self.assertEqual((row["project_n"], row["sb3_n"]), (5, 4))
        self.assertAlmostEqual(row["project_iqm"], (-300 - 200 - 150) / 3)  # the middle three of five; mean -350
        self.assertAlmostEqual(row["sb3_iqm"], (-130 - 110) / 2)  # the middle two of four; mean -207.5
        project = iqm_interval(self.PROJECT_1000)
        self.assertEqual((row["project_iqm_ci_low"], row["project_iqm_ci_high"]), (project.low, project.high))
        # P(project > SB3): -300, -200, -150 beat only -500; -100 beats -500, -130, -110; -1000 none: 6 of 20 pairs
        self.assertAlmostEqual(row["p"], 6 / 20)
        improvement = probability_of_improvement(self.PROJECT_1000, self.SB3_1000)
        self.assertEqual((row["p_ci_low"], row["p_ci_high"]), (improvement.low, improvement.high))
        row = table.loc[2000]  # SB3 has one seed there: no interval for it nor for P
        self.assertEqual((row["sb3_n"], row["sb3_iqm"], row["p"]), (1, -90, 0.0))
        self.assertTrue(math.isnan(row["sb3_iqm_ci_low"]) and math.isnan(row["p_ci_low"]))
        self.assertTrue(math.isnan(table.loc[4000, "sb3_n"]) and math.isnan(table.loc[4000, "p"]))

    def test_markdown_table_has_one_row_per_budget_iqm_ci_n_and_p(self) -> None:
        text = learning_report.markdown_table(self.table(), "Pendulum")
        self.assertIn("| env steps | this project (SAC v1) | Stable-Baselines3 SAC | P(project > SB3) |", text)
        project, sb3 = iqm_interval(self.PROJECT_1000), iqm_interval(self.SB3_1000)
        improvement = probability_of_improvement(self.PROJECT_1000, self.SB3_1000)
        self.assertIn(f"| 1,000 | -217 [{project.low:.0f}, {project.high:.0f}], n=5 | "
                      f"-120 [{sb3.low:.0f}, {sb3.high:.0f}], n=4 | "
                      f"0.30 [{improvement.low:.2f}, {improvement.high:.2f}] |", text)
        two = iqm_interval([-150, -120])
        self.assertIn(f"| 2,000 | -135 [{two.low:.0f}, {two.high:.0f}], n=2 | -90 [–], n=1 | 0.00 [–] |", text)
        self.assertIn("| 4,000 | -80 [–], n=1 |  |  |", text)

    def test_the_auc_row_compares_the_finished_seeds_mean_evaluations(self) -> None:
        frame = pd.read_csv(io.StringIO(self.CSV))
        curve = learning_report.curve_row(frame)
        # finished: project seeds 1, 4, 5 (seed 2 has an unfinished evaluation, seed 3 none finished); SB3's four
        project, sb3 = [(-300 - 150 - 80) / 3, -1000, -150], [(-110 - 90) / 2, -130, -500, -90]
        self.assertEqual((curve["project_n"], curve["sb3_n"]), (3, 4))
        self.assertAlmostEqual(curve["project_iqm"], iqm_interval(project).point)
        self.assertAlmostEqual(curve["sb3_iqm"], (-130 - 100) / 2)  # the middle two of four
        # P: -176.7 beats -500; -1000 none; -150 beats -500: 2 of 12 pairs
        self.assertAlmostEqual(curve["p"], 2 / 12)
        improvement = probability_of_improvement(project, sb3)
        self.assertEqual((curve["p_ci_low"], curve["p_ci_high"]), (improvement.low, improvement.high))
        text = learning_report.markdown_table(self.table(), "Pendulum", curve=curve)
        self.assertEqual(text.strip().splitlines()[-1].split(" | ")[0], f"| {learning_report.CURVE_LABEL}")
        self.assertIsNone(learning_report.curve_row(frame.assign(complete=False)))

    def test_an_sbx_tasks_table_and_plot_name_sbx(self) -> None:
        frame = pd.read_csv(io.StringIO(self.CSV.replace("sb3,", "sbx,")))
        libraries = learning_report.library_names("sbx", "crossq", "this project (experiments/crossq.yaml)")
        table = learning_report.budget_table(frame, (1000, 2000, 3000, 4000), libraries)
        self.assertAlmostEqual(table.set_index("env_steps").loc[1000, "p"], 6 / 20)  # against sbx's seeds
        text = learning_report.markdown_table(table, "Pendulum", libraries)
        self.assertIn("| env steps | this project (experiments/crossq.yaml) | sbx CrossQ | P(project > sbx) |", text)
        figures = []
        with tempfile.TemporaryDirectory() as folder, \
                mock.patch.object(learning_report.plt, "close", side_effect=figures.append):
            learning_report.plot(frame, "Pendulum", Path(folder) / "curves.png", libraries)
        legend = [text.get_text() for text in figures[0].axes[0].get_legend().get_texts()]
        self.assertEqual(legend, ["this project (experiments/crossq.yaml): 5 seeds (2 unfinished)",
                                  "sbx CrossQ: 4 seeds"])

    def test_the_plot_draws_each_librarys_iqm_and_its_band(self) -> None:
        figures = []
        with tempfile.TemporaryDirectory() as folder, \
                mock.patch.object(learning_report.plt, "close", side_effect=figures.append):
            learning_report.plot(pd.read_csv(io.StringIO(self.CSV)), "Pendulum", Path(folder) / "curves.png")
            self.assertGreater((Path(folder) / "curves.png").stat().st_size, 1000)
        axis = figures[0].axes[0]
        project, sb3 = axis.lines
        self.assertEqual(project.get_xdata().tolist(), [1000, 2000, 4000])
        np.testing.assert_allclose(project.get_ydata(), [(-300 - 200 - 150) / 3, -135, -80])
        np.testing.assert_allclose(sb3.get_ydata(), [-120, -90])
        self.assertEqual(len([c for c in axis.collections if isinstance(c, PolyCollection)]), 2)


class TestPeers(LearningBenchmarkTestCase):
    """A task's peer: SB3's SAC (the first tasks, whose records and commands stay as they were) or sbx's
    algorithm (the SAC family's tasks)."""

    def test_an_sbx_droq_tasks_peer_command_names_library_and_algorithm_with_our_eval_seeds(self) -> None:
        project, sbx = (self.plan(library, 3, SBX_TASK, "pendulum_droq") for library in ("project", "sbx"))
        command = sbx.command
        self.assertEqual(command[:6], [str(learning_benchmark.PEER_PYTHON), str(learning_benchmark.PEER_RUNNER),
                                       "--library", "sbx", "--algo", "droq"])
        self.assertEqual(command[command.index("--eval-seeds") + 1], ",".join(map(str, project.config["eval_seeds"])))
        self.assertEqual(command[command.index("--eval-interval") + 1], "200")
        self.assertEqual(command[command.index("--state") + 1], str(sbx.work_dir / "sbx_state.npz"))
        self.assertNotIn("--state", self.plan("sb3", 3).command)  # SB3 runs do not resume
        self.assertNotIn("--jax-cores", command)  # the runner's default: a pool for one core
        all_cores = learning_benchmark.plan("pendulum_droq", SBX_TASK, "sbx", 3, self.out_dir, self.runs_dir, "all")
        self.assertEqual(all_cores.command, [*command, "--jax-cores", "all"])
        self.assertEqual(all_cores.config, sbx.config)  # the same run: its record stays valid
        self.assertEqual((sbx.config["eval_seeds"], sbx.config["algo"]), (project.config["eval_seeds"], "droq"))
        self.assertEqual(sbx.record, self.out_dir / "pendulum_droq" / "records" / "sbx-seed3.json")
        self.assertEqual(sbx.work_dir, self.runs_dir / "pendulum_droq" / "sbx" / "seed3")
        with self.assertRaises(ValueError):  # the task's peer is sbx
            self.plan("sb3", 3, SBX_TASK, "pendulum_droq")

    def test_the_family_tasks_come_after_the_first_ones_against_sbx(self) -> None:
        tasks = learning_benchmark.TASKS
        self.assertEqual(list(tasks), ["pendulum", "lunarlander", "halfcheetah", "hopper", "walker2d",
                                       "pendulum_droq", "pendulum_crossq", "hopper_droq", "hopper_crossq"])
        self.assertTrue(all(tasks[name].peer == "sb3" and tasks[name].spec is None for name in list(tasks)[:5]))
        for name in ("pendulum_droq", "pendulum_crossq", "hopper_droq", "hopper_crossq"):
            base, algo = name.split("_")
            task = tasks[name]
            self.assertEqual((task.peer, task.peer_algo, task.spec), ("sbx", algo, f"experiments/{algo}.yaml"), name)
            self.assertEqual(task.base, base, name)  # its report also sets it against our SAC on that task
            self.assertEqual((task.env_id, task.seeds, task.overrides), (tasks[base].env_id, tasks[base].seeds,
                                                                         tasks[base].overrides), name)
            # sbx warms up as long as our spec does (min_pool_size auto, resolved for the task's time limit)
            spec = ExperimentSpec.from_yaml(Path(learning_benchmark.__file__).parent.parent / task.spec)
            warmup = spec.warmup_steps(gymnasium.spec(task.env_id).max_episode_steps)
            self.assertEqual(task.peer_learning_starts, warmup, name)
            steps = 5_000 if base == "pendulum" else 50_000
            self.assertEqual((task.steps, task.budgets), (steps, tuple(steps // 5 * k for k in range(1, 6))), name)
        self.assertEqual(tasks["pendulum_droq"].seeds, 5)
        self.assertEqual((tasks["hopper_crossq"].seeds, tasks["hopper_crossq"].peer_learning_starts), (3, 5_000))
        with self.assertRaises(ValueError):  # SB3 has SAC only
            replace(TASK, peer_algo="droq")

    def test_an_sb3_record_written_before_sbx_joined_is_still_read(self) -> None:
        old = json.loads(OLD_SB3_RECORD.read_text())
        self.assertNotIn("algo", old["config"])  # the format this test is about
        run = learning_benchmark.plan("pendulum", learning_benchmark.TASKS["pendulum"], "sb3", 1, self.out_dir,
                                      self.runs_dir)
        run.record.parent.mkdir(parents=True)
        shutil.copy(OLD_SB3_RECORD, run.record)
        self.assertEqual(learning_report.read_record(run), old)
        frame = learning_report.assemble([run])
        self.assertEqual((len(frame), frame["complete"].all()), (10, True))
        # the same command, but for the runner's new name
        self.assertEqual(learning_report.display(run.command),
                         old["command"].replace("peers/sb3_learning.py", "peers/peer_learning.py"))
        # its evaluations as an unfinished run's too
        run.work_dir.mkdir(parents=True)
        (run.work_dir / "partial.json").write_text(json.dumps({**old, "finished": False}))
        self.assertEqual(learning_report.unfinished_evaluations(run), old["evaluations"])
        # another algorithm's record is not SB3's SAC
        run.record.write_text(json.dumps({**old, "config": {**old["config"], "algo": "droq"}}))
        self.assertIsNone(learning_report.read_record(run))

    def test_an_sbx_tasks_report_names_sbx(self) -> None:
        started, fake_run = finishing_run(peer_returns=(-1100, -800, -500))
        with mock.patch.dict(learning_benchmark.TASKS, {"pendulum_droq": SBX_TASK}), \
                mock.patch.object(learning_benchmark, "run_project", fake_run), \
                mock.patch.object(learning_benchmark, "run_peer", fake_run), redirect_stdout(io.StringIO()) as out:
            self.assertEqual(learning_benchmark.main(["--tasks", "pendulum_droq", "--seeds", "1", "--out-dir",
                                                      str(self.out_dir), "--runs-dir", str(self.runs_dir)]), 0)
        self.assertEqual(started, [("project", 1), ("sbx", 1)])
        folder = self.out_dir / "pendulum_droq"
        self.assertTrue((folder / "records" / "sbx-seed1.json").is_file())
        table = (folder / "table.md").read_text()
        self.assertIn("| env steps | this project (SAC v1) | sbx DroQ | P(project > sbx) |", table)
        self.assertIn("P(project > sbx) = the probability that a seed of this project scores higher than a seed of "
                      "sbx there", table)
        self.assertIn("| 600 | -400 [–], n=1 | -500 [–], n=1 | 1.00 [–] |", table)
        self.assertNotIn("SB3", table)
        self.assertIn("P(project > sbx)", out.getvalue())
        self.assertIn("sbx seed 1: finished", (folder / "command.txt").read_text())
        self.assertEqual(set(pd.read_csv(folder / "evaluations.csv")["library"]), {"project", "sbx"})

    def test_a_family_task_is_also_set_against_this_projects_sac_over_the_same_env_steps(self) -> None:
        base_task = replace(TASK, steps=1000, budgets=(200, 400, 600, 800, 1000))  # a longer base: 5 evaluations
        base_returns = {1: (-900, -600, -450, -300, -200), 2: (-800, -500, -380, -250, -100)}
        for seed, returns in base_returns.items():
            learning_report.write_record(self.plan("project", seed, base_task, "pendulum_base"),
                                         evaluations(*returns), finished=True)
        _, fake_run = finishing_run()  # the family's runs: -1000, -700, -400 on both seeds
        tasks = {"pendulum_droq": replace(SBX_TASK, base="pendulum_base"), "pendulum_base": base_task}
        with mock.patch.dict(learning_benchmark.TASKS, tasks), \
                mock.patch.object(learning_benchmark, "run_project", fake_run), \
                mock.patch.object(learning_benchmark, "run_peer", fake_run), redirect_stdout(io.StringIO()):
            self.assertEqual(learning_benchmark.main(["--tasks", "pendulum_droq", "--seeds", "2", "--out-dir",
                                                      str(self.out_dir), "--runs-dir", str(self.runs_dir)]), 0)
        text = (self.out_dir / "pendulum_droq" / "against_sac.md").read_text()
        self.assertIn("| env steps | this project (SAC v1) | this project's SAC (the general default) | "
                      "P(project > SAC) |", text)
        self.assertIn("a seed of this project scores higher than a seed of SAC there", text)
        # at 600 the family's -400 beats the base's -450, not its -380: P 0.5
        self.assertIn(f"| 600 | {iqm_cell([-400, -400])} | {iqm_cell([-450, -380])} | "
                      f"{p_cell([-400, -400], [-450, -380])} |", text)
        # the base's AUC over its evaluations up to the family's budget (600), not over its whole curve
        base_auc = [(-900 - 600 - 450) / 3, (-800 - 500 - 380) / 3]
        auc_row = (f"| {learning_report.CURVE_LABEL} | {iqm_cell([-700, -700])} | {iqm_cell(base_auc)} | "
                   "0.00 [0.00, 0.00] |")
        self.assertIn(auc_row, text)
        self.assertNotIn("| 800 |", text)
        # the base task is only read: its folder holds the records written above, no report
        self.assertEqual([path.name for path in (self.out_dir / "pendulum_base").iterdir()], ["records"])


class TestOverview(LearningBenchmarkTestCase):
    def test_the_overview_has_every_task_with_records_at_its_last_budget_and_over_the_curve(self) -> None:
        two_seeds = replace(TASK, seeds=2)
        returns = {("project", 1): (-1000, -700, -400), ("project", 2): (-900, -600, -300),
                   ("sb3", 1): (-1100, -800, -500), ("sb3", 2): (-800, -500, -350)}
        for (library, seed), values in returns.items():
            learning_report.write_record(self.plan(library, seed, two_seeds), evaluations(*values), finished=True)
        # the family task: our seed 1 only, no sbx run yet; the third task: no record at all
        learning_report.write_record(self.plan("project", 1, SBX_TASK, "pendulum_droq"), evaluations(-500, -300, -200),
                                     finished=True)
        tasks = {"pendulum": two_seeds, "pendulum_droq": SBX_TASK, "hopper": two_seeds}
        with mock.patch.dict(learning_benchmark.TASKS, tasks, clear=True):
            path = learning_benchmark.write_overview(self.out_dir, self.runs_dir)
        self.assertEqual(path, self.out_dir / "overview.md")

        end, sb3_end = [-400, -300], [-500, -350]  # at the last budget, 600
        auc, sb3_auc = [-700, -600], [-800, (-800 - 500 - 350) / 3]  # each seed's mean evaluation
        rows = [line for line in path.read_text().splitlines() if line.startswith("| pendulum") or "hopper" in line]
        self.assertEqual(rows, [
            f"| pendulum | 600 | this project (SAC v1) | Stable-Baselines3 SAC | {iqm_cell(end)} | "
            f"{iqm_cell(sb3_end)} | {p_cell(end, sb3_end)} | {iqm_cell(auc)} | {iqm_cell(sb3_auc)} | "
            f"{p_cell(auc, sb3_auc)} |",
            "| pendulum_droq | 600 | this project (SAC v1) | sbx DroQ | -200 [–], n=1 |  |  | -333 [–], n=1 |  |  |"])


class TestResumability(LearningBenchmarkTestCase):
    def main(self, *extra: str) -> int:
        with mock.patch.object(learning_benchmark, "QUICK_TASK", TASK), \
                mock.patch.dict(learning_benchmark.TASKS, {"pendulum": TASK}):
            return learning_benchmark.main(["--tasks", "pendulum", "--seeds", "1", "--out-dir", str(self.out_dir),
                                            "--runs-dir", str(self.runs_dir), *extra])

    def test_finished_runs_are_not_run_again(self) -> None:
        for library in ("project", "sb3"):
            learning_report.write_record(self.plan(library, 1), evaluations(-900, -500, -200), finished=True)
        never = mock.Mock(side_effect=AssertionError("a finished run was started again"))
        with mock.patch.object(learning_benchmark, "run_project", never), \
                mock.patch.object(learning_benchmark, "run_peer", never):
            self.assertEqual(self.main(), 0)
        folder = self.out_dir / "pendulum"
        self.assertEqual(len(pd.read_csv(folder / "evaluations.csv")), 6)
        self.assertIn("project seed 1: finished (kept from an earlier invocation)",
                      (folder / "command.txt").read_text())
        self.assertTrue((folder / "curves.png").stat().st_size > 0)

    def test_runs_without_a_record_are_started(self) -> None:
        started, fake_run = finishing_run()
        learning_report.write_record(self.plan("sb3", 1), evaluations(-900, -500, -200), finished=True)
        with mock.patch.object(learning_benchmark, "run_project", fake_run), \
                mock.patch.object(learning_benchmark, "run_peer", fake_run), redirect_stdout(io.StringIO()) as out:
            self.assertEqual(self.main(), 0)
        self.assertEqual(started, [("project", 1)])
        self.assertEqual(out.getvalue().count("Pendulum-v1"), 1, "the table is printed once, at the end")

    def test_a_runner_beside_this_one_and_a_task_not_started(self) -> None:
        def sb3_finishes_meanwhile(run, deadline, console):  # `--libraries sb3` running beside this invocation
            if run.seed == 2:  # after this invocation passed SB3's seed 1
                learning_report.write_record(self.plan("sb3", 1), evaluations(-900, -500, -200), finished=True)
            learning_report.write_record(run, evaluations(-1000, -700, -400), finished=True)
            run.status = "finished"

        with mock.patch.object(learning_benchmark, "run_project", sb3_finishes_meanwhile):
            self.assertEqual(self.main("--libraries", "project", "--seeds", "2"), 0)
        self.assertIn("sb3 seed 1: finished (by another invocation)",
                      (self.out_dir / "pendulum" / "command.txt").read_text())
        with mock.patch.object(learning_benchmark, "run_project", mock.Mock()):  # starts nothing
            self.assertEqual(learning_benchmark.main(["--tasks", "lunarlander", "--seeds", "1", "--report-only",
                                                      "--out-dir", str(self.out_dir), "--runs-dir",
                                                      str(self.runs_dir)]), 0)
        self.assertFalse((self.out_dir / "lunarlander").exists())  # no empty report

    def test_a_run_claimed_by_another_invocation_is_skipped_until_released(self) -> None:
        started, fake_run = finishing_run()
        with learning_benchmark.claim(self.plan("project", 1)) as mine:  # another invocation holds seed 1
            self.assertTrue(mine)
            with mock.patch.object(learning_benchmark, "run_project", fake_run):
                self.assertEqual(self.main("--libraries", "project", "--seeds", "2"), 0)
        self.assertEqual(started, [("project", 2)])
        self.assertIn("project seed 1: not run (another invocation is running it)",
                      (self.out_dir / "pendulum" / "command.txt").read_text())
        with mock.patch.object(learning_benchmark, "run_project", fake_run):  # released: this one runs it
            self.assertEqual(self.main("--libraries", "project", "--seeds", "2"), 0)
        self.assertEqual(started, [("project", 2), ("project", 1)])

    def test_a_killed_holder_leaves_no_stale_lock(self) -> None:
        run = self.plan("sb3", 1)
        with learning_benchmark.claim(run):  # creates the lock file
            pass
        holder = subprocess.Popen([sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1]); "
                                   "fcntl.flock(f, fcntl.LOCK_EX); print(flush=True); time.sleep(60)", str(run.lock)],
                                  stdout=subprocess.PIPE, text=True)
        self.addCleanup(holder.kill)
        holder.stdout.readline()  # the child holds the lock
        with learning_benchmark.claim(run) as mine:
            self.assertFalse(mine)
        holder.kill()
        holder.wait()
        holder.stdout.close()
        with learning_benchmark.claim(run) as mine:
            self.assertTrue(mine)

    def test_bad_arguments_exit_2_with_one_line(self) -> None:
        """Should the check miss one, nothing is trained and the committed results are not touched."""
        never = mock.Mock(side_effect=AssertionError("a run was started"))
        safe = ["--report-only", "--out-dir", str(self.out_dir), "--runs-dir", str(self.runs_dir)]
        for bad in (["--tasks", "walker"], ["--tasks", "pendulum,pendulum_sac"], ["--libraries", "sb3,jax"],
                    ["--seeds", "0"], ["--jax-cores", "2"]):
            with self.subTest(bad=bad), redirect_stderr(io.StringIO()) as stderr, \
                    mock.patch.multiple(learning_benchmark, run_project=never, run_peer=never), \
                    self.assertRaises(SystemExit) as exit:
                learning_benchmark.main([*bad, *safe])
            self.assertEqual(exit.exception.code, 2)
            self.assertEqual(len(stderr.getvalue().strip().splitlines()), 1)


# A stand-in for our training child: on SIGTERM it "writes its checkpoint" (a line in the log) and exits 0.
CHECKPOINTING_CHILD = ("import signal, sys, time\n"
                       "def stop(*_):\n    print('checkpoint written', flush=True)\n    sys.exit(0)\n"
                       "signal.signal(signal.SIGTERM, stop)\nprint('ready', flush=True)\ntime.sleep(60)\n")


class TestChildren(LearningBenchmarkTestCase):
    def test_the_deadline_stops_the_child_with_sigterm_so_that_it_checkpoints(self) -> None:
        log = self.runs_dir / "child.log"
        with self.assertRaises(learning_benchmark.Stop) as stop:
            learning_benchmark.run_child([sys.executable, "-c", CHECKPOINTING_CHILD], log, time.time() + 2)
        self.assertEqual(str(stop.exception), "deadline")
        self.assertEqual(log.read_text().splitlines()[-2:], ["ready", "checkpoint written"])

    def test_a_signal_to_the_benchmark_stops_the_child_with_sigterm(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            self.skipTest("signal handlers are set on the main thread only")
        log = self.runs_dir / "child.log"
        timer = threading.Timer(2, os.kill, (os.getpid(), signal.SIGTERM))
        with stop_on_signals(learning_benchmark.stop_on_signal):
            timer.start()
            try:
                with self.assertRaises(learning_benchmark.Stop) as stop:
                    learning_benchmark.run_child([sys.executable, "-c", CHECKPOINTING_CHILD], log, math.inf)
            finally:  # never a SIGTERM after the handler is gone: it would end the test run
                timer.cancel()
                timer.join()
        self.assertEqual(str(stop.exception), "signal")
        self.assertEqual(log.read_text().splitlines()[-2:], ["ready", "checkpoint written"])

    def sb3_stand_in(self, *lines: str, exit_code: int = 0, run=None):
        """SB3's seed-1 run (or `run`) with a child that prints `lines` on stdout and exits with exit_code."""
        run = run or self.plan("sb3", 1)
        run.command = [sys.executable, "-c", f"import sys; print({chr(10).join(lines)!r}); sys.exit({exit_code})"]
        with mock.patch.object(learning_benchmark, "PEER_PYTHON", Path(sys.executable)):
            learning_benchmark.run_peer(run, math.inf, mock.Mock())
        return run

    def test_sb3s_json_lines_make_its_record(self) -> None:
        items = [{**item, "gradient_steps": 100} for item in evaluations(-1000, -500)]
        done = {"done": True, "versions": {"stable_baselines3": "2.9"}, "hyperparameters": {}, "torch_threads": 1}
        run = self.sb3_stand_in(json.dumps(items[0]), "a line that is not JSON", json.dumps(items[1]), json.dumps(done))
        self.assertEqual(run.status, "finished")
        record = learning_report.read_record(run)
        self.assertEqual(record["evaluations"], evaluations(-1000, -500))
        self.assertEqual(record["sb3"], {key: done[key] for key in ("versions", "hyperparameters", "torch_threads")})

    def test_sbxs_json_lines_make_its_record_under_its_name(self) -> None:
        run = self.plan("sbx", 1, SBX_TASK, "pendulum_droq")
        done = {"done": True, "env_steps": 600, "wall_time_s": 9.0, "library": "sbx", "algo": "droq",
                "xla_cpu_pool_cpus": 1, "versions": {"sbx-rl": "0.28.0"}, "hyperparameters": {"policy_delay": 20}}
        self.sb3_stand_in(json.dumps(evaluations(-1000)[0]), json.dumps(done), run=run)
        self.assertEqual(run.status, "finished")
        record = learning_report.read_record(run)
        self.assertEqual((record["library"], record["config"]["algo"]), ("sbx", "droq"))
        self.assertEqual(record["sbx"], {key: value for key, value in done.items()
                                         if key not in ("done", "env_steps", "wall_time_s")})
        self.assertNotIn("sb3", record)
        self.assertTrue((self.runs_dir / "pendulum_droq" / "sbx" / "seed1" / "sbx.jsonl").is_file())

    @staticmethod
    def peer_runner(*options: str) -> subprocess.CompletedProcess:
        """The peer runner, with this project's interpreter, on a 10-step Pendulum run with `options` added: its
        argument checks come before torch or JAX is imported, so they run without the peer venv."""
        return subprocess.run([sys.executable, str(learning_benchmark.PEER_RUNNER), "--env", "Pendulum-v1", "--seed",
                               "1", "--steps", "10", "--eval-interval", "5", "--eval-seeds", "1", "--learning-starts",
                               "1", *options], capture_output=True, text=True, timeout=120)

    def test_the_peer_runner_refuses_an_algorithm_its_library_does_not_have(self) -> None:
        done = self.peer_runner("--library", "sb3", "--algo", "droq")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--algo droq: sb3 runs sac only", done.stderr)
        self.assertEqual(done.stdout, "")

    def test_the_peer_runner_resumes_sbx_runs_only(self) -> None:
        done = self.peer_runner("--state", str(self.runs_dir / "state.npz"))
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--state: only sbx runs resume", done.stderr)

    def test_the_peer_runner_sizes_jaxs_pool_for_sbx_runs_only(self) -> None:
        done = self.peer_runner("--jax-cores", "all")
        self.assertEqual(done.returncode, 2, done.stderr)
        self.assertIn("--jax-cores: sbx only", done.stderr)

    @pytest.mark.slow  # two sbx training processes: about 45 seconds
    @unittest.skipUnless(learning_benchmark.PEER_PYTHON.exists(), "needs the peer venv: benchmarks/peers/setup.sh")
    def test_an_interrupted_sbx_run_resumes_from_its_last_evaluation(self) -> None:
        """The state written at 200 steps of a 400-step run brings the run back there: the evaluations before are
        printed again, the one at 200 recomputed from the restored state matches (else the runner exits 1), the
        update counter goes on; a state of another seed is refused."""
        state = self.runs_dir / "state.npz"

        def peer(seed: int = 1) -> tuple[subprocess.CompletedProcess, list[dict]]:
            done = subprocess.run([str(learning_benchmark.PEER_PYTHON), str(learning_benchmark.PEER_RUNNER),
                                   "--library", "sbx", "--env", "Pendulum-v1", "--seed", str(seed), "--steps", "400",
                                   "--eval-interval", "200", "--eval-seeds", "1,2", "--learning-starts", "100",
                                   "--state", str(state)], capture_output=True, text=True, timeout=600)
            return done, [json.loads(line) for line in done.stdout.splitlines()]

        done, first = peer()  # evaluates at 200 and 400, writes its state at 200 only (400 is the last)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertNotIn("resumed_at", first[-1])
        done, resumed = peer()  # resumes at 200; its evaluation at 400 is the last, so the state stays at 200
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(resumed[0], first[0])  # printed again from the state
        self.assertEqual(resumed[-1]["resumed_at"], [200])
        self.assertEqual([item["gradient_steps"] for item in resumed[:2]], [99, 299])
        done, _ = peer(seed=2)
        self.assertEqual(done.returncode, 2)
        self.assertIn(f"--state {state} was written by a run with another seed", done.stderr)

    def test_a_failed_sb3_run_leaves_a_partial_record_of_its_evaluations(self) -> None:
        run = self.sb3_stand_in(json.dumps(evaluations(-1000)[0]), exit_code=1)
        self.assertTrue(run.status.startswith("failed (exit 1"))
        self.assertIsNone(learning_report.read_record(run))
        frame = learning_report.assemble([run])
        self.assertEqual((frame["env_steps"].tolist(), frame["complete"].tolist()), ([200], [False]))


if __name__ == "__main__":
    unittest.main()
