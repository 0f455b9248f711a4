"""Scratch folders for training workers that a killed worker does not leave behind for good.

Ray Tune stops a trial (ASHA's early stop, a failed sibling, Ctrl-C) by killing its worker
processes, so the `finally` of a `tempfile.TemporaryDirectory` never runs there: every stopped
trial left its last checkpoint in the temp folder (175 MB for a ResNet-18 with its optimizer
state), and a day of searches filled the disk until Ray refused to start.

Each folder made here holds an exclusive `flock` on its lock file for as long as its owner
lives. The kernel drops that lock when the process dies, however it dies (SIGKILL included), so
a folder whose lock can be taken belongs to no live process: the next worker on the node removes
it before it makes its own. Folders without a lock file (someone else's) are never touched.
"""

import fcntl
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH_PREFIX = "reid-train-"
LOCK_NAME = ".owner.lock"

logger = logging.getLogger(__name__)


@contextmanager
def worker_scratch(parent: Path | None = None, *, prefix: str = SCRATCH_PREFIX) -> Iterator[Path]:
    """A fresh folder under `parent` (the system temp folder by default), removed on exit.

    Orphans of dead owners under the same `parent` and `prefix` are removed first.
    """
    where = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    remove_orphaned_scratch(where, prefix=prefix)
    folder, lock = _locked_folder(where, prefix)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        os.close(lock)


def remove_orphaned_scratch(parent: Path, *, prefix: str = SCRATCH_PREFIX) -> list[Path]:
    """Remove the folders `parent/prefix*` whose owner process is gone; returns them."""
    removed: list[Path] = []
    for folder in sorted(parent.glob(f"{prefix}*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        lock = _try_lock(folder / LOCK_NAME)
        if lock is None:
            continue
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(lock)
        removed.append(folder)
    if removed:
        logger.info("removed %d scratch folders of stopped workers in %s", len(removed), parent)
    return removed


def _locked_folder(parent: Path, prefix: str) -> tuple[Path, int]:
    """Make a folder and lock its lock file; (folder, open descriptor holding the lock)."""
    while True:
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        lock_path = folder / LOCK_NAME
        lock = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another worker's sweep may have taken the lock between our open and flock and removed
        # the folder; the lock we hold is then on an unlinked file. Start again in that case.
        if _same_file(lock, lock_path):
            return folder, lock
        os.close(lock)


def _try_lock(lock_path: Path) -> int | None:
    """An open descriptor holding `lock_path`'s lock, or None: absent or held by a live owner."""
    try:
        lock = os.open(lock_path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return None
    if not _same_file(lock, lock_path):  # swept by someone else while we opened it
        os.close(lock)
        return None
    return lock


def _same_file(descriptor: int, path: Path) -> bool:
    try:
        linked = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (linked.st_dev, linked.st_ino)
