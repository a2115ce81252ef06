"""IQM with bootstrap intervals wherever results are summarised: summary.csv and its table, the band of `sac plot`,
`sac compare` (hand-made run folders, no training; the commands themselves: test_experiment_runner.py)."""
import io
import subprocess
import sys
import tempfile
import unittest
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from matplotlib.collections import PolyCollection

from blocAndTools.errors import run_command
from blocAndTools.statistics import format_interval, iqm_interval, probability_of_improvement
from SoftActorCritic import compare, plotting, sweep_summary
from tests.helpers import REPO, kept_figures

# Five runs of point A: returns at env steps 100, 200, 300. IQM of five scores = mean of the middle three.
A_RETURNS = [[0.0, 5.0, 10.0], [0.0, 10.0, 20.0], [6.0, 21.0, 30.0], [0.0, 20.0, 40.0], [100.0, 500.0, 1000.0]]
A_FINAL_IQM = (20.0 + 30.0 + 40.0) / 3  # the mean would be 220
A_AUC = [5.0, 10.0, 19.0, 20.0, 533.3333333333334]  # each run's mean over its three evaluations
A_AUC_IQM = (10.0 + 19.0 + 20.0) / 3  # the AUC of the last evaluation only would give A_FINAL_IQM
B_FINALS = [15.0, 25.0, 35.0, 45.0, 55.0]
# P(A > B) by hand: 10 beats none of B, 20 beats 15, 30 two, 40 three, 1000 all five: 11 of 25 pairs.
P_A_OVER_B = 11 / 25


def write_run(folder: Path, seed: int, returns: list[float], max_epoch: int = 3, **spec) -> Path:
    """A run folder: spec.yaml (name, seed, max_epoch, spec) and progress.csv with one evaluation per epoch."""
    run = folder / f"seed{seed}"
    run.mkdir(parents=True)
    (run / "spec.yaml").write_text(yaml.safe_dump({"name": folder.name, "seed": seed, "max_epoch": max_epoch, **spec}))
    epochs = range(1, len(returns) + 1)
    pd.DataFrame({"epoch": epochs, "env_steps": [100 * epoch for epoch in epochs], "wall_time_s": list(epochs),
                  "eval_return_mean": returns}).to_csv(run / "progress.csv", index=False)
    return run


def printed_summary(path: Path) -> str:
    """The table print_summary makes of a summary.csv, in a child process (off a terminal, as in a log file)."""
    return subprocess.run([sys.executable, "-c", "import pandas as pd, sys; from SoftActorCritic.sweep_summary "
                           "import print_summary; print_summary(pd.read_csv(sys.argv[1]), 'summary')", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60).stdout


class FoldersTest(unittest.TestCase):
    """A sweep folder: point A (reward_scaling=1, five runs), point B (reward_scaling=5, five runs, finals B_FINALS)
    and point C (reward_scaling=20, one run)."""

    def setUp(self) -> None:
        temporary = tempfile.TemporaryDirectory()
        self.addCleanup(temporary.cleanup)
        self.sweep = Path(temporary.name) / "sweep"
        self.a, self.b, self.c = (self.sweep / f"x-reward_scaling={scale}" for scale in (1, 5, 20))
        for seed, returns in enumerate(A_RETURNS):
            write_run(self.a, seed, returns, reward_scaling=1)
        for seed, final in enumerate(B_FINALS):
            write_run(self.b, seed, [0.0, final / 2, final], reward_scaling=5)
        write_run(self.c, 0, [1.0, 2.0, 3.0], reward_scaling=20)

    def runs(self, *folders: Path) -> list[Path]:
        return [run for folder in folders for run in sweep_summary.find_runs(folder)]


class SummaryColumnsTest(FoldersTest):
    def test_final_and_auc_iqm_with_their_intervals_per_point(self):
        table = sweep_summary.write_summary(self.sweep, self.runs(self.a, self.c)).set_index("reward_scaling")
        a = table.loc["1"]
        self.assertEqual((a["seeds"], a["runs"]), (5, 5))
        self.assertAlmostEqual(a["final_iqm"], A_FINAL_IQM)
        self.assertAlmostEqual(a["auc_iqm"], A_AUC_IQM)
        finals = iqm_interval([returns[-1] for returns in A_RETURNS])  # seed 0, as summary.csv
        self.assertEqual((a["final_iqm_ci_low"], a["final_iqm_ci_high"]), (finals.low, finals.high))
        aucs = iqm_interval(A_AUC)
        self.assertEqual((a["auc_iqm_ci_low"], a["auc_iqm_ci_high"]), (aucs.low, aucs.high))
        self.assertLess(a["final_iqm_ci_low"], a["final_iqm"])
        self.assertAlmostEqual(a["final_eval_return_mean"], 220.0)  # mean, min, max stay beside the IQM
        self.assertEqual((a["final_eval_return_min"], a["final_eval_return_max"]), (10.0, 1000.0))

    def test_one_run_has_empty_interval_cells_and_a_dash_in_the_table(self):
        sweep_summary.write_summary(self.sweep, self.runs(self.a, self.c))
        rows = (self.sweep / sweep_summary.SUMMARY).read_text().splitlines()
        header, one_run = rows[0].split(","), rows[2].split(",")
        self.assertEqual(one_run[header.index("runs")], "1")
        self.assertEqual(one_run[header.index("final_iqm")], "3")
        for column in ("final_iqm_ci_low", "final_iqm_ci_high", "auc_iqm_ci_low", "auc_iqm_ci_high"):
            self.assertEqual(one_run[header.index(column)], "", column)
        out = printed_summary(self.sweep / sweep_summary.SUMMARY)
        self.assertIn("3.0 [–]", out)
        self.assertIn(format_interval(iqm_interval([returns[-1] for returns in A_RETURNS])), out)

    def test_goal_reached_counts_the_runs_whose_best_evaluation_reached_the_goal(self):
        goal = self.sweep / "x-goal"
        for seed, returns in enumerate(A_RETURNS):  # best of each run: 10, 20, 30, 40, 1000; last: the same
            write_run(goal, seed, returns[::-1], reward_scaling=1, expected_reward_goal=20.0)
        table = sweep_summary.write_summary(self.sweep, self.runs(goal, self.c)).set_index("point")
        self.assertEqual(table.loc["x-goal", "goal_reached"], 4)  # 20 reaches a goal of 20, as the runner says
        self.assertTrue(np.isnan(table.loc["x-reward_scaling=20", "goal_reached"]))  # no goal: an empty cell
        out = printed_summary(self.sweep / sweep_summary.SUMMARY)
        self.assertIn("4 of 5", out)

    def test_a_sweep_folders_runs_come_in_the_planned_order(self):
        by_path = sweep_summary.find_runs(self.sweep)  # x-reward_scaling=1, =20, =5
        self.assertEqual([run.parent for run in by_path[4:7]], [self.a, self.c, self.b])
        planned = [run for folder in (self.a, self.b, self.c) for run in sweep_summary.find_runs(folder)]
        (self.sweep / sweep_summary.MANIFEST).write_text(yaml.safe_dump(
            {"runs": [{"folder": str(run.relative_to(self.sweep))} for run in planned]}))
        self.assertEqual(sweep_summary.find_runs(self.sweep), planned)
        self.assertEqual(sweep_summary.summarize(planned)["reward_scaling"].tolist(), ["1", "5", "20"])

    def test_the_same_runs_give_the_same_summary(self):
        first = sweep_summary.summarize(self.runs(self.a, self.b))
        pd.testing.assert_frame_equal(first, sweep_summary.summarize(self.runs(self.b, self.a)).iloc[::-1]
                                      .reset_index(drop=True))


class PlotBandTest(FoldersTest):
    def figure_of(self, *args, **kwargs):
        """plot_learning_curves' figure, kept open; the PNG is still written."""
        with kept_figures() as figures:
            out = plotting.plot_learning_curves(*args, **kwargs)
        self.assertGreater(out.stat().st_size, 1000)
        return figures[0]

    def test_iqm_curve_with_its_interval_at_each_env_step(self):
        rows = pd.concat(pd.read_csv(run / "progress.csv") for run in self.runs(self.a))
        curve = plotting.band_curve(rows, "eval_return_mean")
        self.assertEqual(curve.index.tolist(), [100, 200, 300])
        for index, steps in enumerate(curve.index):
            expected = iqm_interval([returns[index] for returns in A_RETURNS])
            self.assertEqual(tuple(curve.loc[steps, ["line", "low", "high"]]), (expected.point, expected.low,
                                                                                expected.high))
        self.assertAlmostEqual(curve.loc[300, "line"], A_FINAL_IQM)
        minmax = plotting.band_curve(rows, "eval_return_mean", "minmax")
        self.assertEqual(tuple(minmax.loc[300, ["line", "low", "high"]]), (220.0, 10.0, 1000.0))

    def test_a_band_per_curve_of_several_runs_and_none_for_one_run(self):
        for band in ("iqm", "minmax"):
            with self.subTest(band=band):
                figure = self.figure_of([self.a, self.c], Path(self.sweep) / f"{band}.png", band=band)
                axis = figure.axes[0]
                self.assertEqual(len(axis.lines), 2)
                self.assertEqual(len([c for c in axis.collections if isinstance(c, PolyCollection)]), 1)
                line = axis.lines[0].get_ydata()
                self.assertAlmostEqual(line[-1], A_FINAL_IQM if band == "iqm" else 220.0)


class CompareTest(FoldersTest):
    def test_probability_and_iqms_are_the_statistics_of_the_runs_scores(self):
        result = compare.compare_runs(self.a, self.b)
        a_iqm, b_iqm, improvement = result.scores["final"]
        self.assertAlmostEqual(improvement.point, P_A_OVER_B)
        self.assertEqual(improvement, probability_of_improvement([r[-1] for r in A_RETURNS], B_FINALS))
        self.assertAlmostEqual(a_iqm.point, A_FINAL_IQM)
        self.assertEqual(b_iqm, iqm_interval(B_FINALS))
        b_auc = [(0.0 + final / 2 + final) / 3 for final in B_FINALS]
        self.assertEqual(result.scores["AUC"], (iqm_interval(A_AUC), iqm_interval(b_auc),
                                                probability_of_improvement(A_AUC, b_auc)))
        self.assertIn(format_interval(improvement, digits=2), result.report())

    def test_unfinished_runs_are_left_out(self):
        write_run(self.b, 9, [0.0, 9999.0], max_epoch=3, reward_scaling=5)  # two of three epochs
        result = compare.compare_runs(self.a, self.b)
        self.assertEqual(len(result.b.final), 5)
        self.assertIn("5 finished runs (1 unfinished left out)", result.report())

    def test_the_profile_plot_has_a_band_per_side(self):
        with kept_figures() as figures:
            compare.plot_profiles(compare.compare_runs(self.a, self.b), self.sweep / "p.png")
        axis = figures[0].axes[0]
        self.assertEqual(len([c for c in axis.collections if isinstance(c, PolyCollection)]), 2)
        np.testing.assert_allclose(axis.lines[0].get_ydata()[0], 0.8)  # 4 of A's 5 finals above the lowest score

    def test_bad_input_exits_2_with_one_line(self):
        unfinished = self.sweep.parent / "unfinished"
        write_run(unfinished, 0, [1.0], max_epoch=3)
        cases = {"no finished run": (unfinished, self.a, "eval_return_mean"),
                 "no common metric": (self.a, self.b, "q1_mean"),
                 "holds 3 grid points": (self.sweep, self.a, "eval_return_mean"),
                 "no progress.csv": (self.sweep / "nowhere", self.a, "eval_return_mean")}
        for expected, (a, b, metric) in cases.items():
            with self.subTest(expected):
                with redirect_stderr(io.StringIO()) as err:  # run_command: what `sac` does with an error
                    status = run_command(lambda a=a, b=b, metric=metric: compare.compare_runs(a, b, metric))
                self.assertEqual(status, 2)
                self.assertIn(expected, err.getvalue())
                self.assertEqual(len(err.getvalue().strip().splitlines()), 1, err.getvalue())


if __name__ == "__main__":
    unittest.main()
