"""The distribution: `pip install .` ships both packages, every experiment file and the `sac` command; the
source tree holds no unsafe serialisation, eval, TF1 idiom or sys.path edit."""
import re
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

import pytest

from tests.helpers import REPO


@pytest.mark.slow  # builds a wheel
class WheelTest(unittest.TestCase):
    def test_wheel_holds_the_packages_the_experiments_and_the_sac_command(self):
        with tempfile.TemporaryDirectory() as folder:
            result = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", folder, str(REPO)],
                                    capture_output=True, text=True, timeout=600)
            self.assertEqual(result.returncode, 0, result.stderr[-2000:])
            wheel, = Path(folder).glob("*.whl")
            with zipfile.ZipFile(wheel) as archive:
                names = set(archive.namelist())
                entry_points = next(name for name in names if name.endswith(".dist-info/entry_points.txt"))
                self.assertIn("sac = SoftActorCritic.experiment_runner:main", archive.read(entry_points).decode())
        shipped = {f"SoftActorCritic/experiments/{path.relative_to(REPO / 'experiments').as_posix()}"
                   for path in (REPO / "experiments").rglob("*.yaml")}
        self.assertIn("SoftActorCritic/experiments/pendulum.yaml", shipped)
        self.assertEqual(shipped - names, set())
        for module in ("SoftActorCritic/experiment_runner/__init__.py", "SoftActorCritic/numpy_policy.py",
                       "blocAndTools/replay_buffer.py", "blocAndTools/seeding.py"):
            self.assertIn(module, names)
        self.assertFalse([name for name in names if name.startswith(("tests/", "benchmarks/"))])


class NoUnsafeSerialisationTest(unittest.TestCase):
    def test_source_tree_has_no_pickle_eval_unsafe_yaml_or_sys_path_edits(self):
        banned = re.compile("|".join([r"\bimport " + "pickle", r"\bpickle" + r"\.", "allow_pickle" + "=True",
                                      r"yaml\.load" + r"\(", r"yaml\.unsafe" + "_load", r"(?<![\w.])eval" + r"\(",
                                      "compat" + ".v1", r"\bSession" + r"\(", r"sys\.path" + r"\.(insert|append)"]))
        offenders = []
        # the project's own files: tracked or not ignored (not build/, nor a virtual environment under .venv)
        listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"], cwd=REPO,
                                capture_output=True, text=True, check=True).stdout.split()
        self.assertIn("SoftActorCritic/experiment_runner/__init__.py", listed)
        for path in (REPO / name for name in listed):
            if not path.is_file():
                continue  # deleted in the working tree
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if banned.search(line):
                    offenders.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
        self.assertEqual(offenders, [])


if __name__ == "__main__":
    unittest.main()
