"""`train.py --all-folds`: train every fold of `data.n_folds`, then out-of-fold predictions."""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from trainer.build import build_trainer
from trainer.checkpoint import best_weights_key, load_checkpoint
from trainer.metrics import macro_f1
from trainer.session import run_info, supervised_fit
from utils.config import Config, save_config
from utils.errors import ConfigError
from utils.io import atomic_write_text
from utils.logger import RunLogger, file_log
from utils.run_dir import create_run_dir
from utils.seed import seed_everything

LOG = logging.getLogger(__name__)


def fold_config(config: Config, fold: int) -> Config:
    return config.model_copy(update={"data": config.data.model_copy(update={"fold": fold})})


def out_of_fold(trainer, state: dict[str, Any], fold: int) -> pd.DataFrame:
    """Validation predictions of a fold's best checkpoint, one row per image."""
    key = best_weights_key(state)
    model = trainer.ema.module if key == "ema" else trainer.model
    model.load_state_dict(state[key])
    trainer.evaluate(trainer.val_loader, "ema_val" if key == "ema" else "val", model)
    y_true, probs = trainer.last_eval
    frame = pd.DataFrame({"path": trainer.val_loader.dataset.paths, "fold": fold, "label": y_true,
                          "pred": probs.argmax(axis=1)})
    return pd.concat([frame, pd.DataFrame(probs, columns=[f"prob_{c:02d}" for c in range(probs.shape[1])])], axis=1)


def run_all_folds(config: Config, overrides: Sequence[str]) -> dict[str, Any]:
    """Train folds 0..n-1 into `RUN/folds/fold_k/`, write `RUN/oof.csv` and the OOF macro-F1. The run
    directory is created only once fold 0's trainer is built (config and data validated)."""
    if config.data.n_folds < 2:
        raise ConfigError("--all-folds needs data.n_folds >= 2 (e.g. data.n_folds=5)")
    frames, run_dir = [], None
    for fold in range(config.data.n_folds):
        cfg = fold_config(config, fold)
        seed_everything(cfg.seed, cfg.trainer.deterministic)
        trainer = build_trainer(cfg, Path("."))
        if run_dir is None:
            run_dir = create_run_dir(config.save_dir, config.name)
            save_config(config, run_dir / "config.yaml")
        fold_dir = trainer.run_dir = run_dir / "folds" / f"fold_{fold}"
        fold_dir.mkdir(parents=True)
        save_config(cfg, fold_dir / "config.yaml")
        with file_log(fold_dir / "train.log"):
            LOG.info("fold %d/%d: %s", fold + 1, cfg.data.n_folds, fold_dir)
            supervised_fit(trainer, RunLogger(fold_dir, 0, run_info(cfg, [*overrides, f"data.fold={fold}"])))
        frames.append(out_of_fold(trainer, load_checkpoint(fold_dir / "best.pth"), fold))
    oof = pd.concat(frames, ignore_index=True)
    atomic_write_text(run_dir / "oof.csv", oof.to_csv(index=False))
    score = macro_f1(oof["label"].to_numpy(), oof["pred"].to_numpy())
    per_fold = {int(k): macro_f1(g["label"].to_numpy(), g["pred"].to_numpy()) for k, g in oof.groupby("fold")}
    summary = {"name": config.name, "status": "finished", "n_folds": config.data.n_folds, "oof_f1": score,
               "fold_f1": per_fold, "oof_images": len(oof)}
    atomic_write_text(run_dir / "folds_summary.json", json.dumps(summary, indent=2))
    LOG.info("out-of-fold macro-F1 %.4f over %d images (folds: %s); %s", score, len(oof),
             ", ".join(f"{v:.4f}" for v in per_fold.values()), run_dir / "oof.csv")
    return {**summary, "run_dir": str(run_dir), "mean_fold_f1": float(np.mean(list(per_fold.values())))}
