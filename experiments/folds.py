"""`train.py --all-folds`: train every fold of `data.n_folds`, then out-of-fold predictions."""
from __future__ import annotations

import json
import logging
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from trainer.build import TrainerParts
from trainer.lifecycle import run_training, seeded_parts, shared_run_dir
from utils.bootstrap import f1_half_width
from utils.config import Config, save_config
from utils.errors import ConfigError, UserError
from utils.io import atomic_write_text
from utils.metrics import macro_f1
from utils.run import model_choice
from utils.run_dir import RunDir
from utils.run_report import checked_report

LOG = logging.getLogger(__name__)


def fold_config(config: Config, fold: int) -> Config:
    return config.model_copy(update={"data": config.data.model_copy(update={"fold": fold})})


def oof_frame(fold_dir: RunDir, fold: int) -> pd.DataFrame:
    """One row per validation image of a fold (its val_predictions.csv, by the fold's model): path, fold,
    person, label, prediction and probabilities."""
    if not fold_dir.val_predictions.is_file():
        raise UserError(f"{fold_dir.val_predictions}: not written (the fold kept no checkpoint)")
    frame = pd.read_csv(fold_dir.val_predictions, dtype={"path": str, "person": str}, keep_default_na=False)
    frame.insert(1, "fold", fold)
    return frame


def write_oof(run_dir: RunDir, config: Config, frames: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """`oof.csv` and `folds_summary.json` (OOF macro-F1 and per-fold F1)."""
    oof = pd.concat(frames, ignore_index=True)
    atomic_write_text(run_dir.oof, oof.to_csv(index=False))
    score = macro_f1(oof["label"].to_numpy(), oof["pred"].to_numpy())
    half = f1_half_width(oof["label"].to_numpy(), oof["pred"].to_numpy(), oof["person"].to_numpy())
    per_fold = {int(k): macro_f1(g["label"].to_numpy(), g["pred"].to_numpy()) for k, g in oof.groupby("fold")}
    summary = {"name": config.name, "status": "finished", "n_folds": config.data.n_folds, "oof_f1": score,
               "oof_f1_pm": half, "weights": model_choice(config),
               "fold_f1": per_fold, "oof_images": len(oof)}
    atomic_write_text(run_dir.folds_summary, json.dumps(summary, indent=2))
    LOG.info("out-of-fold macro-F1 %.4f over %d images (folds: %s); %s", score, len(oof),
             ", ".join(f"{v:.4f}" for v in per_fold.values()), run_dir.oof)
    return {**summary, "mean_fold_f1": float(np.mean(list(per_fold.values())))}


def check_folds(config: Config) -> None:
    if config.data.n_folds < 2:
        raise ConfigError("--all-folds needs data.n_folds >= 2 (e.g. data.n_folds=5)")


def run_all_folds(config: Config, overrides: Sequence[str] = (), *, run_dir: Optional[RunDir] = None,
                  parts: Optional[TrainerParts] = None) -> dict[str, Any]:
    """Train folds 0..n-1 into `RUN/folds/fold_k/` (each an ordinary run, see `run_training`), then
    write `RUN/oof.csv` and the OOF macro-F1. The run directory (`run_dir`, or a fresh one) is created
    only once fold 0's parts are built (config and data validated; `parts` may be prebuilt by
    `seeded_parts` for fold 0). Works under torchrun: every rank trains every fold."""
    check_folds(config)
    parts = parts if parts is not None else seeded_parts(fold_config(config, 0))
    run_dir = shared_run_dir(config, parts.dist_info, run_dir)
    if parts.dist_info.is_main:
        save_config(config, run_dir.config)
    frames = []
    for fold in range(config.data.n_folds):
        cfg = fold_config(config, fold)
        LOG.info("fold %d/%d: %s", fold + 1, cfg.data.n_folds, run_dir.fold(fold))
        _, trainer = run_training(cfg, overrides=[*overrides, f"data.fold={fold}"], run_dir=run_dir.fold(fold),
                                  parts=parts if fold == 0 else None)
        if parts.dist_info.is_main:  # every rank evaluated the fold's model; rank 0 wrote it
            frames.append(oof_frame(trainer.run_dir, fold))
    if not parts.dist_info.is_main:
        return {"run_dir": str(run_dir)}
    summary = write_oof(run_dir, config, frames)
    checked_report(run_dir.path)
    return {**summary, "run_dir": str(run_dir)}
