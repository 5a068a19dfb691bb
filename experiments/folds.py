"""`train.py --all-folds`: train every fold of `data.n_folds`, then out-of-fold predictions."""
from __future__ import annotations

import json
import logging
from typing import Any, Sequence

import numpy as np
import pandas as pd

from trainer.lifecycle import evaluate_best, run_training, seeded_parts, shared_run_dir
from trainer.trainer import EvalResult
from utils.config import Config, save_config
from utils.errors import ConfigError
from utils.io import atomic_write_text
from utils.metrics import macro_f1
from utils.run_dir import PROB_COLUMNS, RunDir

LOG = logging.getLogger(__name__)


def fold_config(config: Config, fold: int) -> Config:
    return config.model_copy(update={"data": config.data.model_copy(update={"fold": fold})})


def oof_frame(result: EvalResult, fold: int) -> pd.DataFrame:
    """One row per validation image of a fold: path, fold, label, prediction and probabilities."""
    frame = pd.DataFrame({"path": result.paths, "fold": fold, "label": result.y_true,
                          "pred": result.probs.argmax(axis=1)})
    probs = pd.DataFrame(result.probs, columns=PROB_COLUMNS)
    return pd.concat([frame, probs], axis=1)


def write_oof(run_dir: RunDir, config: Config, frames: Sequence[pd.DataFrame]) -> dict[str, Any]:
    """`oof.csv` and `folds_summary.json` (OOF macro-F1 and per-fold F1)."""
    oof = pd.concat(frames, ignore_index=True)
    atomic_write_text(run_dir.oof, oof.to_csv(index=False))
    score = macro_f1(oof["label"].to_numpy(), oof["pred"].to_numpy())
    per_fold = {int(k): macro_f1(g["label"].to_numpy(), g["pred"].to_numpy()) for k, g in oof.groupby("fold")}
    summary = {"name": config.name, "status": "finished", "n_folds": config.data.n_folds, "oof_f1": score,
               "weights": run_weights(config),
               "fold_f1": per_fold, "oof_images": len(oof)}
    atomic_write_text(run_dir.folds_summary, json.dumps(summary, indent=2))
    LOG.info("out-of-fold macro-F1 %.4f over %d images (folds: %s); %s", score, len(oof),
             ", ".join(f"{v:.4f}" for v in per_fold.values()), run_dir.oof)
    return {**summary, "mean_fold_f1": float(np.mean(list(per_fold.values())))}


def run_weights(config: Config) -> str:
    """Which checkpoint is a run's model: "swa" with `trainer.swa.use`, else "best"."""
    return "swa" if config.trainer.swa is not None and config.trainer.swa.use else "best"


def run_all_folds(config: Config, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """Train folds 0..n-1 into `RUN/folds/fold_k/` (each an ordinary run, see `run_training`), then
    write `RUN/oof.csv` and the OOF macro-F1. The run directory is created only once fold 0's parts
    are built (config and data validated). Works under torchrun: every rank trains every fold."""
    if config.data.n_folds < 2:
        raise ConfigError("--all-folds needs data.n_folds >= 2 (e.g. data.n_folds=5)")
    parts = seeded_parts(fold_config(config, 0))
    run_dir = shared_run_dir(config, parts.dist_info)
    if parts.dist_info.is_main:
        save_config(config, run_dir.config)
    frames = []
    for fold in range(config.data.n_folds):
        cfg = fold_config(config, fold)
        LOG.info("fold %d/%d: %s", fold + 1, cfg.data.n_folds, run_dir.fold(fold))
        _, trainer = run_training(cfg, overrides=[*overrides, f"data.fold={fold}"], run_dir=run_dir.fold(fold),
                                  parts=parts if fold == 0 else None)
        which = run_weights(cfg)
        if which == "swa" and not trainer.run_dir.swa.is_file():
            LOG.warning("fold %d: no swa.pth (stopped before its first averaged epoch); oof.csv uses its best.pth",
                        fold)
            which = "best"
        frames.append(oof_frame(evaluate_best(trainer, which=which), fold))
    if not parts.dist_info.is_main:
        return {"run_dir": str(run_dir)}
    return {**write_oof(run_dir, config, frames), "run_dir": str(run_dir)}
