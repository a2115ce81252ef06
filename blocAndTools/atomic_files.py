"""Writing a run's files so that a crash never leaves half a file under the final name: every write goes to
a hidden temporary name in the same folder, then one rename (os.replace) gives it its name."""
from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def temporary_name(path: Path) -> Path:
    """The hidden name a file is written under before the rename: `.<name>.tmp` in the same folder."""
    return path.with_name(f".{path.name}.tmp")


def write_atomically(path: str | os.PathLike, write: Callable[[BinaryIO], None], sync: bool = False) -> None:
    """Call write(file) on a temporary file in path's folder, then rename it to path.

    The file is created by open(), so its mode is 0666 minus the umask, as for every other
    file of a run. sync=True flushes it to the disk before the rename (large data files).
    """
    path = Path(path)
    temporary = temporary_name(path)
    try:
        with open(temporary, "wb") as file:
            write(file)
            if sync:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write text (UTF-8) atomically: readers never see half a file."""
    write_atomically(path, lambda file: file.write(text.encode()))


def write_folder_atomically(path: str | os.PathLike, write: Callable[[Path], None]) -> None:
    """Call write(folder), which creates the folder, on a temporary name beside path, then rename it to path
    (absent or an empty folder): readers never see half a folder. A temporary folder left by a crash is
    removed first."""
    path = Path(path)
    temporary = temporary_name(path)
    shutil.rmtree(temporary, ignore_errors=True)
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
