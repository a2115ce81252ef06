"""benchmarks/variant_comparison.py without training: the figure and the results table from fake
progress.csv files, the warm-up override and the resume/skip decisions."""
import importlib.util
import math
import sys
import tempfile
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from blocAndTools.errors import UserInputError
from blocAndTools.run_logging import PROGRESS_COLUMNS

REPO = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("variant_comparison", REPO / "benchmarks" / "variant_comparison.py")
vc = importlib.util.module_from_spec(_spec)
sys.modules["variant_comparison"] = vc
_spec.loader.exec_module(vc)


def write_progress(run_dir: Path, eval_returns: list[float], q1: list[float], epoch_steps: int = 1000) -> None:
    """A progress.csv with every column, one row per epoch."""
    run_dir.mkdir(parents=True)
    rows = len(eval_returns)
    frame = pd.DataFrame({column: np.full(rows, np.nan) for column in PROGRESS_COLUMNS})
    frame["epoch"] = np.arange(1, rows + 1)
    frame["env_steps"] = frame["epoch"] * epoch_steps
    frame["wall_time_s"] = frame["epoch"] * 60.0
    frame["eval_return_mean"] = eval_returns
    frame["q1_mean"] = q1
    frame.to_csv(run_dir / "progress.csv", index=False)


class PlotAndTableTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        nan = math.nan
        # experiment a: two complete seeds of 3 epochs; Q empty in the warm-up epoch
        write_progress(self.root / "a" / "seed0", [10.0, 20.0, 30.0], [nan, 1.0, 3.0])
        write_progress(self.root / "a" / "seed1", [0.0, 40.0, 10.0], [nan, 2.0, 5.0])
        # experiment b: seed 1 stopped after 2 epochs: the table stops at the step both reached
        write_progress(self.root / "b" / "seed0", [5.0, 7.0, 100.0], [nan, 4.0, 8.0])
        write_progress(self.root / "b" / "seed1", [1.0, 3.0], [nan, 6.0])
        self.experiments = [("a", "variant A", self.root / "a"), ("b", "variant B", self.root / "b"),
                            ("c", "variant C", self.root / "c")]  # c: no run yet

    def tearDown(self):
        self.tmp.cleanup()

    def test_png_and_table_numbers(self):
        png, csv = self.root / "out" / "group.png", self.root / "out" / "group.csv"
        table = vc.plot_and_tabulate(self.experiments, ["eval_return_mean", "q1_mean"], "test", png, csv,
                                     warmup_steps=1000)
        self.assertTrue(png.is_file())
        self.assertEqual(png.read_bytes()[:8], b"\x89PNG\r\n\x1a\n")
        self.assertGreater(png.stat().st_size, 10_000)
        self.assertEqual(list(table["experiment"]), ["a", "b"])  # c has no data: left out of the table
        a, b = table.set_index("experiment").loc["a"], table.set_index("experiment").loc["b"]
        self.assertEqual(a["seeds"], 2)
        self.assertEqual(a["env_steps"], 3000)
        self.assertAlmostEqual(a["final_eval_return_mean"], 20.0)  # (30 + 10) / 2
        self.assertAlmostEqual(a["final_eval_return_min"], 10.0)
        self.assertAlmostEqual(a["final_eval_return_max"], 30.0)
        self.assertAlmostEqual(a["best_eval_return_mean"], 30.0)  # (20 + 40) / 2 at 2000 steps
        self.assertEqual(a["best_at_env_steps"], 2000)
        self.assertAlmostEqual(a["final_q1_mean"], 4.0)  # (3 + 5) / 2
        self.assertAlmostEqual(a["wall_time_min"], 3.0)
        self.assertEqual(b["seeds"], 2)
        self.assertEqual(b["env_steps"], 2000)  # the partial seed holds the common step back
        self.assertAlmostEqual(b["final_eval_return_mean"], 5.0)  # (7 + 3) / 2, not seed 0's 100
        self.assertAlmostEqual(b["best_eval_return_mean"], 5.0)
        self.assertAlmostEqual(b["final_q1_mean"], 5.0)  # (4 + 6) / 2
        on_disk = pd.read_csv(csv)
        self.assertEqual(list(on_disk["experiment"]), ["a", "b"])
        self.assertAlmostEqual(on_disk.loc[0, "final_eval_return_mean"], 20.0)

    def test_one_panel_and_no_data_at_all(self):
        png, csv = self.root / "one.png", self.root / "one.csv"
        table = vc.plot_and_tabulate(self.experiments[2:], ["eval_return_mean"], "empty", png, csv)
        self.assertTrue(png.is_file())
        self.assertTrue(table.empty)
        self.assertIn("final_eval_return_mean", pd.read_csv(csv).columns)


class RunPlanTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def test_warm_up_shrunk_only_when_the_budget_needs_it(self):
        spec = vc.SPEC_DIR / "hopper.yaml"  # min_pool_size 10000, batch 256
        self.assertEqual(vc.train_overrides(spec, 2, 30000, 5000, []),
                         ["seed=2", "max_epoch=6", "timestep_per_epoch=5000"])
        small = vc.train_overrides(spec, 0, 600, 300, [])
        pool = int(next(text for text in small if text.startswith("min_pool_size=")).split("=")[1])
        self.assertLessEqual(pool, 600)
        self.assertGreaterEqual(pool, 256)
        tiny = vc.train_overrides(spec, 0, 100, 50, [])
        pool = int(next(text for text in tiny if text.startswith("min_pool_size=")).split("=")[1])
        batch = int(next(text for text in tiny if text.startswith("batch_size_in_ts=")).split("=")[1])
        self.assertLessEqual(batch, pool)
        self.assertLessEqual(pool, 100)
        quick = vc.train_overrides(spec, 0, 600, 300, vc.QUICK["set"])
        self.assertNotIn("batch_size_in_ts=200", quick)  # the quick batch of 64 already fits the pool of 200

    def test_skip_resume_train_and_foreign_run(self):
        (run,) = [r for r in vc.plan("qbackup", 1, 2000, 1000, ["max_eval_trj=1"], self.root)
                  if r.experiment == "hopper_clipq"]
        self.assertEqual(run.run_dir, self.root / "qbackup" / "hopper_clipq" / "seed0")
        self.assertEqual(run.spec.max_epoch, 2)
        self.assertEqual(vc.decide(run), "train")
        write_progress(run.run_dir, [1.0], [2.0])
        run.spec.to_yaml(run.run_dir / "spec.yaml")
        (run.run_dir / "checkpoints").mkdir()
        (run.run_dir / "checkpoints" / "run_state-1000.json").write_text("{}")
        self.assertEqual(vc.decide(run), "resume")
        pd.concat([pd.read_csv(run.run_dir / "progress.csv")] * 2).to_csv(run.run_dir / "progress.csv", index=False)
        self.assertEqual(vc.decide(run), "skip")
        run.spec.replace(max_eval_trj=5).to_yaml(run.run_dir / "spec.yaml")
        with self.assertRaisesRegex(UserInputError, "max_eval_trj"):
            vc.decide(run)


if __name__ == "__main__":
    unittest.main()
