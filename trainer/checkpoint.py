"""Checkpoints: written atomically, loaded with `weights_only=True`."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Literal

import torch

from utils.errors import UserError
from utils.io import atomic_torch_save
from utils.run_dir import RunDir

FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "config", "class_names")


def monitors_ema(monitor_metric: str) -> bool:
    """Whether the best epoch is judged on the EMA weights (`ema_val_*`)."""
    return monitor_metric.startswith("ema_")


def best_weights_key(state: dict[str, Any]) -> str:
    """"ema" when the checkpoint's monitor judged the EMA weights (and it holds them), else "model"."""
    metric = state["config"]["trainer"]["monitor"].split()[1]
    return "ema" if monitors_ema(metric) and state.get("ema") is not None else "model"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Save `state` (tensors, dicts, lists, numbers, strings) atomically."""
    atomic_torch_save({"format": FORMAT_VERSION, **state}, path)


def resolve_checkpoint(path: Path | str, which: Literal["last", "best"] = "last") -> Path:
    """A checkpoint file, or a run directory's `last.pth` / `best.pth` (`which`)."""
    path = Path(path)
    if path.is_dir():
        path = getattr(RunDir(path), which)
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    return path


def load_checkpoint(path: Path | str, which: Literal["last", "best"] = "last") -> dict[str, Any]:
    """Load on CPU with `weights_only=True`; a corrupt or foreign file is a `UserError` naming it."""
    path = resolve_checkpoint(path, which)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise UserError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0][:120]})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UserError(f"{path}: not a checkpoint of this framework (needs keys {', '.join(REQUIRED_KEYS)})")
    return state
