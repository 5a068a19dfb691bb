"""Checkpoints: written atomically, loaded with `weights_only=True`."""
from __future__ import annotations

import pickle
import shutil
import zipfile
from pathlib import Path
from typing import Any, Literal, Optional

import torch

from utils.config import MonitorSpec
from utils.errors import UserError, first_line
from utils.io import atomic_torch_save
from utils.run import checkpoint_file
from utils.run_dir import RunDir

FORMAT_VERSION = 1
REQUIRED_KEYS = ("model", "config", "class_names")
CONFIG_SECTIONS = ("data", "augment", "model", "trainer")
TRAINING_STATE = ("optimizer", "scheduler", "scaler", "rng", "swa")  # only last.pth needs these (to resume)


def for_inference(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint without the training state: what `best.pth` keeps (weights, EMA, config, classes,
    epoch and monitor) — about a third of `last.pth` with AdamW."""
    return {k: v for k, v in state.items() if k not in TRAINING_STATE}


def best_weights_key(state: dict[str, Any]) -> str:
    """"ema" when the checkpoint's monitor judged the EMA weights (and it holds them), else "model"."""
    on_ema = MonitorSpec.parse(state["config"]["trainer"]["monitor"]).on_ema
    return "ema" if on_ema and state.get("ema") is not None else "model"


def reconcile(run_dir: RunDir) -> Optional[str]:
    """Make `best.pth` agree with what `last.pth` says the best epoch is, after a crash at any point;
    returns what was repaired, or None. `best.pth` is written before `last.pth`, so a crash between
    the two leaves `last.pth` one epoch behind (that epoch is redone on resume); a run directory from
    before that order may hold a `last.pth` whose best epoch is newer than `best.pth`: when that best
    epoch is the last one, `last.pth` holds its weights and becomes `best.pth`."""
    if not run_dir.last.is_file():
        return None
    last = load_checkpoint(run_dir.last)
    best_epoch = last["monitor"]["best_epoch"]
    if best_epoch <= 0:
        return None
    best_held = load_checkpoint(run_dir.best)["epoch"] if run_dir.best.is_file() else None
    if best_held is not None and best_held >= best_epoch:
        return None
    if last["epoch"] == best_epoch:
        shutil.copyfile(run_dir.last, run_dir.best.with_suffix(".pth.repair"))
        run_dir.best.with_suffix(".pth.repair").replace(run_dir.best)
        return f"{run_dir.best} restored from {run_dir.last} (epoch {best_epoch})"
    return (f"{run_dir.best} holds epoch {best_held} but the best epoch was {best_epoch}; its weights are lost, "
            "so best.pth stays at the older epoch until a better one is found")


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Save `state` (tensors, dicts, lists, numbers, strings) atomically."""
    atomic_torch_save({"format": FORMAT_VERSION, **state}, path)


def load_checkpoint(path: Path | str, which: Literal["last", "best"] = "last") -> dict[str, Any]:
    """Load on CPU with `weights_only=True`; a corrupt or foreign file is a `UserError` naming it."""
    path = checkpoint_file(path, which)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile, EOFError, ValueError) as err:
        raise UserError(f"{path}: not a readable checkpoint ({first_line(err)[:120]})") from None
    if not isinstance(state, dict) or any(k not in state for k in REQUIRED_KEYS):
        raise UserError(f"{path}: not a checkpoint of this framework (needs keys {', '.join(REQUIRED_KEYS)})")
    config = state["config"]
    missing = [s for s in CONFIG_SECTIONS if not isinstance(config, dict) or not isinstance(config.get(s), dict)]
    if missing:
        raise UserError(f"{path}: its stored config lacks section(s) {', '.join(missing)}")
    return state
