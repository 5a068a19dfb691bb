"""Run directories: `saved/<name>/<timestamp>/`, never reusing an existing one."""
from __future__ import annotations

import time
from pathlib import Path


def create_run_dir(save_dir: Path, name: str) -> Path:
    """Make a fresh `save_dir/name/YYYYmmdd-HHMMSS[-k]` directory and return it."""
    base = Path(save_dir) / name
    base.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for k in range(1000):
        path = base / (stamp if k == 0 else f"{stamp}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a run directory under {base}")
