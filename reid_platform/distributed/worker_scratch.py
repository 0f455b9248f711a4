"""Scratch folders for training workers that a killed worker does not leave behind for good.

Ray Tune stops a trial (ASHA's early stop, a failed sibling, Ctrl-C) by killing its worker
processes, so the `finally` of a `tempfile.TemporaryDirectory` never runs there: every stopped
trial left its last checkpoint in the temp folder (175 MB for a ResNet-18 with its optimizer
state), and a day of searches filled the disk until Ray and MLflow failed.

Each folder made here holds an exclusive `flock` on its lock file for as long as its owner
lives. The kernel drops that lock when the process dies, however it dies (SIGKILL included), so
a folder whose lock can be taken belongs to no live process: the next worker on the node removes
it before it makes its own. Folders without our lock file (someone else's) are never touched,
so the lock file is removed last: a removal cut short leaves a folder that is still swept.
"""

import fcntl
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCRATCH_PREFIX = "reid-train-"
LOCK_NAME = ".owner.lock"
LOCK_ATTEMPTS = 100
"""Folders made in a row, each swept by another worker before we locked it, before giving up
(one retry needs a sweep within microseconds of our open; a hundred means something is wrong)."""

logger = logging.getLogger(__name__)


@contextmanager
def worker_scratch(parent: Path | None = None, *, prefix: str = SCRATCH_PREFIX) -> Iterator[Path]:
    """A fresh folder under `parent` (the system temp folder by default), removed on exit.

    Orphans of dead owners under the same `parent` and `prefix` are removed first.
    """
    where = parent if parent is not None else Path(tempfile.gettempdir())
    remove_orphaned_scratch(where, prefix=prefix)
    folder, lock = _locked_folder(where, prefix)
    try:
        yield folder
    finally:
        _remove_locked(folder)
        os.close(lock)


def remove_orphaned_scratch(parent: Path, *, prefix: str = SCRATCH_PREFIX) -> list[Path]:
    """Remove the folders `parent/prefix*` whose owner process is gone; returns those removed."""
    removed: list[Path] = []
    for folder in sorted(parent.glob(f"{prefix}*")):
        if folder.is_symlink() or not folder.is_dir():
            continue
        lock = _try_lock(folder / LOCK_NAME)
        if lock is None:
            continue
        try:
            _remove_locked(folder)
        finally:
            os.close(lock)
        if not folder.exists():
            removed.append(folder)
    if removed:
        logger.info("removed %d scratch folders of stopped workers in %s", len(removed), parent)
    return removed


def _locked_folder(parent: Path, prefix: str) -> tuple[Path, int]:
    """Make a folder and lock its lock file; (folder, open descriptor holding the lock)."""
    for _ in range(LOCK_ATTEMPTS):
        folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
        lock_path = folder / LOCK_NAME
        lock = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Another worker's sweep may have taken the lock between our open and flock and removed
        # the folder; the lock we hold is then on an unlinked file. Start again in that case.
        if _still_linked(lock, lock_path):
            return folder, lock
        os.close(lock)
    raise OSError(f"could not keep a scratch folder in {parent}: each was removed as it was made")


def _try_lock(lock_path: Path) -> int | None:
    """An open descriptor holding `lock_path`'s lock, or None: absent, held by a live owner,
    not a regular file of ours (never follow a link or open a device someone put there)."""
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY
    try:
        lock = os.open(lock_path, flags)
    except OSError:
        return None
    status = os.fstat(lock)
    if not stat.S_ISREG(status.st_mode) or status.st_uid != os.getuid():
        os.close(lock)
        return None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(lock)
        return None
    if not _still_linked(lock, lock_path):  # swept by someone else while we opened it
        os.close(lock)
        return None
    return lock


def _still_linked(descriptor: int, path: Path) -> bool:
    """Whether the open file `descriptor` is still the file at `path` (False once a sweep
    removed it: the lock held is then on a file nobody else can find)."""
    try:
        linked = path.stat()
    except OSError:
        return False
    held = os.fstat(descriptor)
    return (held.st_dev, held.st_ino) == (linked.st_dev, linked.st_ino)


def _remove_locked(folder: Path) -> None:
    """Remove a folder whose lock is held: its lock file last, so that a removal cut short
    (the remover killed) leaves a folder the next sweep still recognises. Never raises: a
    failure here must not hide the error that ended the owner's work."""
    try:
        for entry in list(folder.iterdir()):
            if entry.name == LOCK_NAME:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
        (folder / LOCK_NAME).unlink(missing_ok=True)
        folder.rmdir()
    except FileNotFoundError:
        pass  # removed by someone else meanwhile
    except OSError as error:
        logger.warning("could not remove the scratch folder %s: %s", folder, error)
