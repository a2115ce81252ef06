"""ConsoleView (live on a terminal, plain lines otherwise) and ProgressFiles (progress.csv, TensorBoard)."""
import contextlib
import io
import tempfile
import time
import unittest
from pathlib import Path

import pandas as pd
from rich.console import Console

from blocAndTools.run_logging import ConsoleView, ProgressFiles
from SoftActorCritic.metrics import COLUMNS, PROGRESS_COLUMNS

ROW = {"epoch": 1, "env_steps": 1000, "eval_return_mean": -150.25, "q1_loss": 0.5, "v_loss": None,
       "alpha": 0.2, "steps_per_s": 55.0}


class ConsoleViewTest(unittest.TestCase):
    def test_live_progress_bar_and_epoch_table_on_a_terminal(self):
        out = io.StringIO()
        view = ConsoleView(COLUMNS, Console(file=out, force_terminal=True, width=160))
        with view.epoch_progress(1, 50) as advance:
            for _ in range(50):
                advance(1)
                time.sleep(0.002)
        bar = out.getvalue()
        for part in ("epoch 1", "50/50", "ETA"):  # the live bar, before any table row
            self.assertIn(part, bar)
        view.print_epoch(ROW)
        text = out.getvalue()[len(bar):]
        self.assertIn("steps/s", text)
        self.assertIn("eval ret", text)
        self.assertIn("-150.2", text)

    def test_plain_line_per_epoch_off_a_terminal(self):
        out = io.StringIO()
        view = ConsoleView(COLUMNS, Console(file=out, force_terminal=False))
        with view.epoch_progress(1, 10) as advance:
            advance(10)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            view.print_epoch(ROW)
        self.assertEqual(out.getvalue(), "")  # no bar
        self.assertRegex(printed.getvalue(), r"^epoch 1 \| steps 1000 \| eval ret -150.2 .*V loss - .*steps/s 55\n$")


class ProgressFilesTest(unittest.TestCase):
    def test_rows_follow_the_header_and_resume_drops_rows_after_the_checkpoint(self):
        with tempfile.TemporaryDirectory() as folder:
            files = ProgressFiles(Path(folder), COLUMNS)
            for epoch in (1, 2, 3):
                files.write(dict(ROW, epoch=epoch, env_steps=1000 * epoch))
            files.close()
            frame = pd.read_csv(Path(folder) / "progress.csv")
            self.assertEqual(list(frame.columns), list(PROGRESS_COLUMNS))
            self.assertEqual(frame["epoch"].tolist(), [1, 2, 3])
            self.assertTrue(frame["v_loss"].isna().all())
            self.assertTrue(list((Path(folder) / "tb").glob("events.out.tfevents.*")))
            ProgressFiles(Path(folder), COLUMNS, keep_epochs=2).close()
            self.assertEqual(pd.read_csv(Path(folder) / "progress.csv")["epoch"].tolist(), [1, 2])

    def test_resuming_a_progress_csv_written_before_the_updates_column_keeps_its_rows_renamed(self):
        """Run folders written before the rename hold `gradient_steps`: its values move to `updates`."""
        with tempfile.TemporaryDirectory() as folder:
            old_columns = [name if name != "updates" else "gradient_steps" for name in PROGRESS_COLUMNS]
            old = pd.DataFrame([dict(ROW, epoch=epoch, env_steps=1000 * epoch, updates=900 * epoch)
                                for epoch in (1, 2, 3)]).rename(columns={"updates": "gradient_steps"})
            old.reindex(columns=old_columns).to_csv(Path(folder) / "progress.csv", index=False)
            files = ProgressFiles(Path(folder), COLUMNS, keep_epochs=2)
            files.write(dict(ROW, epoch=3, env_steps=3000, updates=2700))
            files.close()
            frame = pd.read_csv(Path(folder) / "progress.csv")
            self.assertEqual(list(frame.columns), list(PROGRESS_COLUMNS))
            self.assertEqual(frame["epoch"].tolist(), [1, 2, 3])
            self.assertEqual(frame["updates"].tolist(), [900, 1800, 2700])
            self.assertEqual(frame["eval_return_mean"].tolist(), [-150.25] * 3)


if __name__ == "__main__":
    unittest.main()
