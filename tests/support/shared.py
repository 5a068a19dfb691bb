"""Fixtures made once for all pytest-xdist workers of a session (`make test-fast` runs one per core): the first
worker to ask builds the thing under the session's shared temp folder while holding a lock; the others wait and
reuse it. Without xdist it is made in the session's own temp folder, as a session fixture would be."""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path
from typing import Any, Callable

DONE = ".made"


def shared_root(tmp_path_factory: Any) -> Path:
    """The temp folder every worker of this session sees (the session's own without xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if "PYTEST_XDIST_WORKER" in os.environ else base


def made_once(tmp_path_factory: Any, name: str, make: Callable[[Path], Any]) -> Path:
    """`root/name`, filled by `make(folder)` exactly once per session across workers; a half-made folder (a
    worker that failed) is made again."""
    root = shared_root(tmp_path_factory)
    folder = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / DONE).exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            (folder / DONE).touch()
    return folder
