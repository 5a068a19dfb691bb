"""Outputs never destroy inputs, or each other: every path a command will write is checked, before
anything is written, against every file it reads, every other output and the files of run directories,
and is known to be writable."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping, Optional

from utils.errors import UserError
from utils.run_dir import RunDir

# what a run directory holds about itself (every file `RunDir` names but other commands' outputs); an
# output given by the user must not replace one of these
RUN_FILES = RunDir.own_files()


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (also through links, `..` or a different spelling)."""
    if a.exists() and b.exists():
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def in_run_directory(path: Path) -> bool:
    """Whether `path`'s folder is a run directory of this project (it holds a config and a checkpoint
    or a summary)."""
    run = RunDir(path.parent)
    return run.config.is_file() and (run.best.is_file() or run.last.is_file() or run.summary.is_file())


def writable_place(path: Path) -> Optional[str]:
    """Why `path` cannot be written, or None: it is a directory, or its nearest existing folder is not
    writable."""
    if path.is_dir():
        return "is a directory"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is not a directory"
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return "is not writable"
    return None


def check_outputs(outputs: Mapping[str, Optional[Path]], inputs: Mapping[str, Iterable[Path]] = {}) -> None:
    """Refuse, in one line naming the option and the path, an output that is one of the `inputs` (by
    option), another output, a run directory's own file, or not writable. Call before writing anything."""
    given = {option: Path(path) for option, path in outputs.items() if path is not None}
    names = list(given)
    for i, (option, path) in enumerate(given.items()):
        for other in names[:i]:
            if same_file(path, given[other]):
                raise UserError(f"{option} {path}: the same file as {other}; give each output its own path")
        for source, paths in inputs.items():
            for read in paths:
                if same_file(path, Path(read)):
                    raise UserError(f"{option} {path}: that is {source} ({read}), which this command reads; "
                                    "writing there would destroy it")
        if path.name in RUN_FILES and in_run_directory(path):
            raise UserError(f"{option} {path}: a file of run directory {path.parent}; write elsewhere")
        problem = writable_place(path)
        if problem is not None:
            raise UserError(f"{option} {path}: {problem}")
