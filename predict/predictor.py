"""Predictions from one or more checkpoints: soft voting and flip TTA."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from data_loader.eval_table import read_eval_table
from data_loader.loaders import build_loader
from data_loader.pipeline import build_pipeline
from model.classifier import build_model
from predict.fitted_ensemble import decision_scores, load_ensemble
from trainer.checkpoint import best_weights_key, load_checkpoint, resolve_checkpoint
from utils.config import Config, build_config
from utils.device import amp_dtype
from utils.errors import UserError
from utils.labels import NUM_CLASSES
from utils.run_dir import FOLD_NAME, RunDir

LOG = logging.getLogger(__name__)


def model_from_checkpoint(state: dict, source: str) -> tuple[nn.Module, Config]:
    """Rebuild the network from a checkpoint's own config and load its weights."""
    config = build_config(dict(state["config"]), source)
    model = build_model(config.model.model_copy(update={"pretrained": False, "pretrained_path": None}))
    weights = state[best_weights_key(state)]
    bad = next((name for name, tensor in weights.items() if tensor.is_floating_point() and
                not torch.isfinite(tensor).all()), None)
    if bad is not None:
        raise UserError(f"{source}: non-finite weights (NaN/Inf) in {bad}; this checkpoint cannot predict")
    try:
        model.load_state_dict(state[best_weights_key(state)])
    except RuntimeError as err:
        raise UserError(f"{source}: weights do not fit {config.model.backbone}/{config.model.head} "
                        f"({str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err})") from None
    return model, config


@torch.no_grad()
def predict_probs(model: nn.Module, loader: DataLoader, *, device: torch.device,
                  amp: str = "none", tta: bool = False) -> np.ndarray:
    """Softmax probabilities (N, classes) in loader order; `tta` averages with a horizontal flip."""
    model.eval().to(device)
    dtype = amp_dtype(amp, device)
    out = []
    for images, *_ in tqdm(loader, desc="predict", leave=False, disable=None):
        images = images.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            probs = model(images).float().softmax(dim=1)
            if tta:
                probs = (probs + model(images.flip(-1)).float().softmax(dim=1)) / 2
        out.append(probs.cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, NUM_CLASSES), dtype=np.float32)


def soft_vote(probs: Sequence[np.ndarray], weights: Optional[Sequence[float]] = None) -> np.ndarray:
    """Weighted mean of probability arrays (equal weights by default)."""
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(w) != len(probs) or not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise UserError(f"need {len(probs)} non-negative weights with a positive sum, got {w.tolist()}")
    return np.tensordot(w / w.sum(), np.stack(probs), axes=1)


def expand_checkpoint(path: Path | str, which: Optional[str] = None) -> list[Path]:
    """A checkpoint file; a run directory (its model: `best.pth`, or `swa.pth` when `which` says so or, by
    default, its config's `trainer.swa.use`); or a folds directory / a run with folds (each fold's)."""
    path = Path(path)
    run = RunDir(path)
    if path.is_file():
        return [path]
    if path.is_dir() and not run.best.is_file():
        parent = RunDir(path.parent)
        top = parent if not run.folds_dir.is_dir() and parent.folds_dir == path else run
        folds = kfold_members(top, which or run_weights(top))
        if folds:
            return folds
    if path.is_dir() and (which or run_weights(run)) == "swa":
        return [swa_or_best(run, explicit=which == "swa")]
    return [resolve_checkpoint(path, "best")]


def run_weights(run: RunDir) -> str:
    """"swa" when the run's config.yaml sets `trainer.swa.use`, else "best" (read without torch)."""
    try:
        swa = ((yaml.safe_load(run.config.read_text()) or {}).get("trainer") or {}).get("swa")
    except (OSError, yaml.YAMLError, AttributeError):
        return "best"
    return "swa" if isinstance(swa, dict) and swa.get("use") else "best"


def swa_or_best(run: RunDir, explicit: bool) -> Path:
    """The run's `swa.pth`; when it has none (the run stopped before its first averaged epoch), one line if
    it was asked for by name, else its `best.pth` with a warning."""
    if run.swa.is_file():
        return run.swa
    if explicit or not run.best.is_file():
        raise UserError(f"{run.swa}: not found (a run writes it with trainer.swa, unless it stopped before its "
                        "first averaged epoch); use --which best")
    LOG.warning("%s: no swa.pth (stopped before its first averaged epoch); using %s", run.path, run.best.name)
    return run.best


def kfold_members(run: RunDir, which: str = "best") -> list[Path]:
    """Each fold's model (`best.pth`, or with `which="swa"` its `swa.pth`) of a K-fold run: `fold_0 ..
    fold_{n-1}` for the run's `data.n_folds`; other entries of `folds/` (backups, copies, extra folds) are
    named in a warning and left out."""
    n_folds = None
    if run.config.is_file():
        try:
            n_folds = int((yaml.safe_load(run.config.read_text()) or {})["data"]["n_folds"])
        except (yaml.YAMLError, KeyError, TypeError, ValueError):
            pass  # no readable fold count: every fold directory with a best.pth counts
    kept, left_out = [], [p.name for p in run.strays()]
    for fold in run.folds():
        k = int(FOLD_NAME.fullmatch(fold.path.name).group(1))
        if fold.best.is_file() and (n_folds is None or k < n_folds):
            kept.append(swa_or_best(fold, explicit=False) if which == "swa" else fold.best)
        else:
            left_out.append(fold.path.name)
    if left_out and kept:
        LOG.warning("%s: %s left out (not one of the run's %s folds with a best.pth)", run.folds_dir,
                    ", ".join(left_out), n_folds if n_folds is not None else "K")
    return kept


def eval_dir_of(ckpts: Sequence[Path | str], eval_dir: Optional[Path | str] = None) -> Path:
    """`eval_dir`, or the `data.eval_dir` the first checkpoint was trained with; neither is one clear line."""
    if eval_dir is None:
        first = expand_checkpoint(ckpts[0])[0]
        eval_dir = load_checkpoint(first)["config"].get("data", {}).get("eval_dir")
    if eval_dir is None:
        raise UserError("no eval directory: pass --data or set data.eval_dir")
    return Path(eval_dir)


def predict_groups(ckpts: Sequence[Path | str], *, device: torch.device, eval_dir: Optional[Path] = None,
                   tta: bool = False, batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                   which: Optional[str] = None) -> tuple[pd.DataFrame, list[np.ndarray], list[int]]:
    """(eval table, probabilities per entry of `ckpts`, checkpoints per entry) for `eval_dir` (default:
    the first checkpoint's): an entry that is a folds directory is its folds soft-voted (`which`: see
    `expand_checkpoint`). The eval table, its image checks and the face boxes are read once for all entries."""
    groups = [expand_checkpoint(c, which) for c in ckpts]
    eval_dir = eval_dir_of(ckpts, eval_dir)
    table, crops, logged, per_group = read_eval_table(eval_dir), {}, set(), []
    for group in groups:
        probs = []
        for source in map(str, group):
            model, config = model_from_checkpoint(load_checkpoint(source), source)
            probs.append(predict_paths(model, config, table["path"].tolist(), [eval_dir], source=source,
                                       device=device, tta=tta, batch_size=batch_size, num_workers=num_workers,
                                       crops=crops, logged=logged))
        per_group.append(soft_vote(probs))
    return table, per_group, [len(g) for g in groups]


def predict_paths(model: nn.Module, config: Config, paths: Sequence[str], photo_dirs: Sequence[Optional[Path]], *,
                  source: str, device: torch.device, tta: bool = False, batch_size: Optional[int] = None,
                  num_workers: Optional[int] = None, crops: Optional[dict] = None,
                  logged: Optional[set[int]] = None) -> np.ndarray:
    """Probabilities of `paths` under `model` through its config's evaluation pipeline (face boxes found
    under `photo_dirs`; `crops` memoises face crops, `logged` the ones whose summary is in the log)."""
    pipeline = build_pipeline(config, photo_dirs, crops=crops)
    logged = set() if logged is None else logged
    if pipeline.crop is not None and id(pipeline.crop) not in logged:
        logged.add(id(pipeline.crop))
        LOG.info(pipeline.crop.summary())
    dataset = pipeline.eval_dataset(list(paths), seed=config.seed)
    loader = build_loader(dataset, batch_size=batch_size or config.data.batch_size, train=False, seed=config.seed,
                          num_workers=config.data.num_workers if num_workers is None else num_workers,
                          pin_memory=device.type == "cuda")
    LOG.info("predicting %d images with %s", len(dataset), source)
    return predict_probs(model, loader, device=device, amp=config.trainer.amp, tta=tta)


def ensemble_predict(ckpts: Sequence[Path | str], *, weights: Optional[Sequence[float]] = None,
                     **predict_kwargs) -> tuple[pd.DataFrame, np.ndarray]:
    """(eval table, soft-voted probabilities) of `ckpts` (see `predict_groups` for the keywords). Without
    `weights` every checkpoint counts once; `weights` (one per entry of `ckpts`) are shared evenly by the
    folds of a folds directory."""
    if weights is not None and len(weights) != len(ckpts):
        raise UserError(f"--weights: {len(weights)} weight(s) for {len(ckpts)} --ckpt")
    table, per_group, sizes = predict_groups(ckpts, **predict_kwargs)
    return table, soft_vote(per_group, sizes if weights is None else weights)


def fitted_ensemble_scores(path: Path, **predict_kwargs) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(eval table, weighted probabilities, decision scores) of an `ensemble.py` file: each run's folds
    soft-voted, the runs mixed with the fitted weights, then log-probabilities plus the class offsets
    (the rule fitted on the out-of-fold predictions)."""
    spec = load_ensemble(path)
    table, per_run, _ = predict_groups(spec["runs"], **predict_kwargs)
    mixed, scores = decision_scores(np.stack(per_run), spec["weights"], spec["offsets"])
    return table, mixed, scores
