"""One training process per run directory: an advisory lock file holding the owner's pid."""
from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from typing import Iterator

from utils.errors import UserError


@contextlib.contextmanager
def run_lock(lock_path: Path, wait: bool = False) -> Iterator[None]:
    """Hold `lock_path` for the block; another process asking for it gets a one-line `UserError` (or,
    with `wait`, waits its turn). The lock dies with its process (kill -9 included), so a crashed run
    never stays locked. A lock that is not waited for is removed when the block ends (a finished run
    directory keeps no `.lock`); a waited-for lock file stays, since a waiter may hold it open."""
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            raise UserError(f"{lock_path.parent}: another training process (pid {owner}) is using this run "
                            "directory") from None
        held = True
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if held and not wait:
            lock_path.unlink(missing_ok=True)  # while still locked: nobody else can hold this file
        os.close(fd)  # closing releases the lock


def clean_temp_files(run_dir: Path) -> list[Path]:
    """Remove temp files a killed process left behind (`.<name>.<random>.tmp`, see `utils.io`)."""
    removed = []
    for path in Path(run_dir).glob(".*.tmp"):
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed
