"""Scratch folders of killed workers: real child processes, killed with SIGKILL as Tune does."""

import fcntl
import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reid_platform.distributed import worker_scratch as scratch_module
from reid_platform.distributed.worker_scratch import (
    LOCK_NAME,
    SCRATCH_PREFIX,
    remove_orphaned_scratch,
    worker_scratch,
)

# A worker in miniature: makes its scratch, writes a checkpoint there, says where, then waits.
OWNER = """
import sys, time
from pathlib import Path
from reid_platform.distributed.worker_scratch import worker_scratch
with worker_scratch(Path(sys.argv[1])) as folder:
    (folder / "checkpoints").mkdir()
    (folder / "checkpoints" / "model.pt").write_bytes(b"0" * 4096)
    print(folder, flush=True)
    time.sleep(600)
"""


@pytest.fixture
def owner(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    """A live child process holding a scratch folder under `tmp_path`; killed after the test."""
    child = subprocess.Popen(
        [sys.executable, "-c", OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], 60)
    if not ready:
        child.kill()
        pytest.fail("the scratch owner process said nothing in 60 s")
    folder = Path(child.stdout.readline().strip())
    try:
        yield child, folder
    finally:
        child.kill()
        child.wait()


def _kill(child: subprocess.Popen[str]) -> None:
    os.kill(child.pid, signal.SIGKILL)
    child.wait()


def test_a_killed_owner_leaves_its_folder_which_the_sweep_removes(
    tmp_path: Path, owner: tuple[subprocess.Popen[str], Path]
) -> None:
    child, folder = owner
    assert folder.parent == tmp_path and folder.name.startswith(SCRATCH_PREFIX)
    _kill(child)
    assert (folder / "checkpoints" / "model.pt").is_file()  # what the killed worker left
    assert remove_orphaned_scratch(tmp_path) == [folder]
    assert not folder.exists()


def test_a_live_owner_keeps_its_folder(
    tmp_path: Path, owner: tuple[subprocess.Popen[str], Path]
) -> None:
    child, folder = owner
    assert remove_orphaned_scratch(tmp_path) == []
    with worker_scratch(tmp_path) as mine:
        assert folder.is_dir() and mine.is_dir() and mine != folder
    assert child.poll() is None
    assert (folder / "checkpoints" / "model.pt").is_file()


def test_the_next_worker_removes_orphans_before_making_its_own(
    tmp_path: Path, owner: tuple[subprocess.Popen[str], Path]
) -> None:
    child, folder = owner
    _kill(child)
    with worker_scratch(tmp_path) as mine:
        assert not folder.exists()
        assert sorted(tmp_path.iterdir()) == [mine]
    assert list(tmp_path.iterdir()) == []


def test_folders_it_did_not_make_are_left_alone(tmp_path: Path) -> None:
    foreign = tmp_path / f"{SCRATCH_PREFIX}foreign"  # our prefix, but no lock file
    foreign.mkdir()
    (foreign / "data.bin").write_bytes(b"1")
    locked_elsewhere = tmp_path / "elsewhere"
    locked_elsewhere.mkdir()
    (locked_elsewhere / LOCK_NAME).touch()
    link = tmp_path / f"{SCRATCH_PREFIX}link"
    link.symlink_to(locked_elsewhere)
    other_prefix = tmp_path / "reid-export-abc"
    other_prefix.mkdir()
    (other_prefix / LOCK_NAME).touch()
    linked_lock = tmp_path / f"{SCRATCH_PREFIX}linked-lock"  # its lock file a link elsewhere
    linked_lock.mkdir()
    (linked_lock / LOCK_NAME).symlink_to(locked_elsewhere / LOCK_NAME)

    assert remove_orphaned_scratch(tmp_path) == []
    assert (foreign / "data.bin").is_file() and link.is_symlink() and other_prefix.is_dir()
    assert (locked_elsewhere / LOCK_NAME).is_file() and (linked_lock / LOCK_NAME).is_symlink()


def test_the_folder_goes_on_normal_exit_and_on_error(tmp_path: Path) -> None:
    with worker_scratch(tmp_path) as folder:
        (folder / "state.pt").write_bytes(b"2")
    assert not folder.exists()
    with pytest.raises(RuntimeError, match="diverged"), worker_scratch(tmp_path) as failing:
        raise RuntimeError("loss diverged")
    assert not failing.exists()
    assert list(tmp_path.iterdir()) == []


def test_nested_folders_in_one_process_do_not_sweep_each_other(tmp_path: Path) -> None:
    # flock belongs to the open file, not the process: the inner sweep must not take the
    # outer folder's lock although the same process holds it.
    with worker_scratch(tmp_path) as outer, worker_scratch(tmp_path) as inner:
        assert outer.is_dir() and inner.is_dir()
        assert remove_orphaned_scratch(tmp_path) == []


def test_a_folder_swept_before_its_owner_locked_it_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The race in miniature: another worker's sweep runs between the owner's open of its lock
    # file and its flock, so it takes the lock and removes the folder.
    real_flock = fcntl.flock
    blocking_locks: list[int] = []
    swept: list[Path] = []

    def flock_after_a_sweep(descriptor: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX:  # the owner's (a sweep never waits)
            blocking_locks.append(descriptor)
            if len(blocking_locks) == 1:
                swept.extend(remove_orphaned_scratch(tmp_path))
        real_flock(descriptor, operation)

    monkeypatch.setattr(scratch_module.fcntl, "flock", flock_after_a_sweep)
    with worker_scratch(tmp_path) as folder:
        assert len(swept) == 1 and not swept[0].exists()
        assert len(blocking_locks) == 2 and folder != swept[0]
        assert folder.is_dir() and sorted(tmp_path.iterdir()) == [folder]
        assert remove_orphaned_scratch(tmp_path) == []  # and it is locked
    assert list(tmp_path.iterdir()) == []


def test_two_sweeps_at_once_remove_an_orphan_once(
    tmp_path: Path, owner: tuple[subprocess.Popen[str], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    child, folder = owner
    _kill(child)
    real_flock = fcntl.flock
    inner: list[list[Path]] = []

    def flock_after_another_sweep(descriptor: int, operation: int) -> None:
        if not inner:  # the outer sweep has the lock file open: a second sweep runs now
            inner.append([])
            inner[0] = remove_orphaned_scratch(tmp_path)
        real_flock(descriptor, operation)

    monkeypatch.setattr(scratch_module.fcntl, "flock", flock_after_another_sweep)
    assert remove_orphaned_scratch(tmp_path) == []
    assert inner == [[folder]] and not folder.exists()
