"""ConsoleView (live on a terminal, plain lines otherwise) and ProgressFiles (progress.csv, TensorBoard)."""
import contextlib
import io
import tempfile
import time
import unittest
from pathlib import Path

import pandas as pd
from rich.console import Console

from blocAndTools.run_logging import PROGRESS_COLUMNS, ConsoleView, ProgressFiles

ROW = {"epoch": 1, "env_steps": 1000, "eval_return_mean": -150.25, "q1_loss": 0.5, "v_loss": None,
       "alpha": 0.2, "steps_per_s": 55.0}


class ConsoleViewTest(unittest.TestCase):
    def test_live_progress_bar_and_epoch_table_on_a_terminal(self):
        out = io.StringIO()
        view = ConsoleView(Console(file=out, force_terminal=True, width=160))
        with view.epoch_progress(1, 50) as advance:
            for _ in range(50):
                advance(1)
                time.sleep(0.002)
        view.print_epoch(ROW)
        text = out.getvalue()
        self.assertIn("steps/s", text)
        self.assertIn("eval ret", text)
        self.assertIn("-150.2", text)

    def test_plain_line_per_epoch_off_a_terminal(self):
        out = io.StringIO()
        view = ConsoleView(Console(file=out, force_terminal=False))
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
            files = ProgressFiles(Path(folder))
            for epoch in (1, 2, 3):
                files.write(dict(ROW, epoch=epoch, env_steps=1000 * epoch))
            files.close()
            frame = pd.read_csv(Path(folder) / "progress.csv")
            self.assertEqual(list(frame.columns), list(PROGRESS_COLUMNS))
            self.assertEqual(frame["epoch"].tolist(), [1, 2, 3])
            self.assertTrue(frame["v_loss"].isna().all())
            self.assertTrue(list((Path(folder) / "tb").glob("events.out.tfevents.*")))
            ProgressFiles(Path(folder), keep_epochs=2).close()
            self.assertEqual(pd.read_csv(Path(folder) / "progress.csv")["epoch"].tolist(), [1, 2])


if __name__ == "__main__":
    unittest.main()
