"""atomic_files: a file or folder appears under its name whole, or not at all."""
import tempfile
import unittest
from pathlib import Path

from blocAndTools.atomic_files import temporary_name, write_folder_atomically


class FolderTest(unittest.TestCase):
    def setUp(self):
        self._folder = tempfile.TemporaryDirectory()
        self.root = Path(self._folder.name)

    def tearDown(self):
        self._folder.cleanup()

    def test_the_folder_gets_its_name_once_written_and_no_temporary_stays(self):
        def write(folder: Path) -> None:
            folder.mkdir()
            (folder / "model.pb").write_text("weights")

        temporary_name(self.root / "model").mkdir()  # left by a crash
        write_folder_atomically(self.root / "model", write)
        self.assertEqual((self.root / "model" / "model.pb").read_text(), "weights")
        self.assertEqual([path.name for path in self.root.iterdir()], ["model"])

    def test_a_failed_write_leaves_nothing(self):
        def write(folder: Path) -> None:
            folder.mkdir()
            (folder / "half").write_text("half")
            raise OSError("disk full")

        with self.assertRaises(OSError):
            write_folder_atomically(self.root / "model", write)
        self.assertEqual(list(self.root.iterdir()), [])


if __name__ == "__main__":
    unittest.main()
