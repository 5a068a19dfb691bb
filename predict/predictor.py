"""Predictions from one or more checkpoints: the models of a command resolved once (`resolve_models`), how
to predict (`PredictOptions`), soft voting and flip TTA."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from data_loader.eval_table import read_eval_table
from data_loader.loaders import build_loader
from data_loader.pipeline import build_image_pipeline
from model.classifier import build_model
from predict.fitted_ensemble import decision_scores
from trainer.checkpoint import best_weights_key, load_checkpoint
from utils.config import Config, build_config
from utils.device import amp_dtype
from utils.errors import UserError
from utils.labels import NUM_CLASSES
from utils.run import Which, model_files

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
                  amp: str = "none", tta: bool = False, channels_last: bool = False) -> np.ndarray:
    """Softmax probabilities (N, classes) in loader order; `tta` averages with a horizontal flip;
    `channels_last` runs in the memory format the Trainer validated in (`trainer.channels_last`)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model.eval().to(device, memory_format=layout)
    dtype = amp_dtype(amp, device)
    out = []
    for images, *_ in tqdm(loader, desc="predict", leave=False, disable=None):
        images = images.to(device, non_blocking=True, memory_format=layout)
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


@dataclass(frozen=True)
class PredictOptions:
    """How one command predicts, decided once: device, eval directory, flip TTA, loader batch and workers
    (None: each checkpoint's own config)."""

    device: torch.device
    eval_dir: Path
    tta: bool = False
    batch_size: Optional[int] = None
    num_workers: Optional[int] = None

    def loader_kwargs(self) -> dict[str, Any]:
        """The keywords of `predict_paths`."""
        return {"device": self.device, "tta": self.tta, "batch_size": self.batch_size,
                "num_workers": self.num_workers}


@dataclass(frozen=True)
class ModelSet:
    """Every `--ckpt` (or ensemble run) resolved once into its checkpoint files (one, or each fold's or
    member's), with the first checkpoint's state loaded once: its config names the default eval directory
    and `--group-people` measures it."""

    entries: tuple[tuple[Path, ...], ...]
    first_state: dict[str, Any]

    @property
    def first(self) -> Path:
        return self.entries[0][0]

    @property
    def files(self) -> list[Path]:
        return [path for entry in self.entries for path in entry]

    def eval_dir(self, given: Optional[Path | str] = None) -> Path:
        """`given`, or the `data.eval_dir` the first checkpoint was trained with; neither is one clear line."""
        eval_dir = given if given is not None else (self.first_state["config"].get("data") or {}).get("eval_dir")
        if eval_dir is None:
            raise UserError("no eval directory: pass --data or set data.eval_dir")
        return Path(eval_dir)

    def state(self, path: Path) -> dict[str, Any]:
        """The state of `path`: the first checkpoint's as loaded, any other loaded now (once per use)."""
        return self.first_state if path == self.first else load_checkpoint(path)


def resolve_models(ckpts: Sequence[Path | str], which: Optional[Which] = None) -> ModelSet:
    """Each of `ckpts` as its model files (`utils.run.model_files`), resolved once; the first one loaded."""
    entries = tuple(tuple(model_files(c, which)) for c in ckpts)
    return ModelSet(entries=entries, first_state=load_checkpoint(entries[0][0]))


def predict_groups(models: ModelSet, options: PredictOptions) -> tuple[pd.DataFrame, list[np.ndarray], list[int]]:
    """(eval table, probabilities per entry of `models`, checkpoints per entry): an entry with several
    checkpoints (folds, members) is soft-voted. The eval table, its image checks and the face boxes are read
    once for all entries, each checkpoint loaded once."""
    table, crops, logged, per_group = read_eval_table(options.eval_dir), {}, set(), []
    for entry in models.entries:
        probs = []
        for path in entry:
            model, config = model_from_checkpoint(models.state(path), str(path))
            probs.append(predict_paths(model, config, table["path"].tolist(), [options.eval_dir], source=str(path),
                                       crops=crops, logged=logged, **options.loader_kwargs()))
        per_group.append(soft_vote(probs))
    return table, per_group, [len(entry) for entry in models.entries]


def predict_paths(model: nn.Module, config: Config, paths: Sequence[str], photo_dirs: Sequence[Optional[Path]], *,
                  source: str, device: torch.device, tta: bool = False, batch_size: Optional[int] = None,
                  num_workers: Optional[int] = None, crops: Optional[dict] = None,
                  logged: Optional[set[int]] = None) -> np.ndarray:
    """Probabilities of `paths` under `model` through its config's evaluation pipeline (face boxes found
    under `photo_dirs`; `crops` memoises face crops, `logged` the ones whose summary is in the log)."""
    pipeline = build_image_pipeline(config, photo_dirs, crops=crops)
    logged = set() if logged is None else logged
    if pipeline.crop is not None and id(pipeline.crop) not in logged:
        logged.add(id(pipeline.crop))
        LOG.info(pipeline.crop.summary())
    dataset = pipeline.eval_dataset(list(paths), seed=config.seed)
    loader = build_loader(dataset, batch_size=batch_size or config.data.batch_size, train=False, seed=config.seed,
                          num_workers=config.data.num_workers if num_workers is None else num_workers,
                          pin_memory=device.type == "cuda")
    LOG.info("predicting %d images with %s", len(dataset), source)
    return predict_probs(model, loader, device=device, amp=config.trainer.amp, tta=tta,
                         channels_last=config.trainer.channels_last)


def ensemble_predict(models: ModelSet, options: PredictOptions, *, weights: Optional[Sequence[float]] = None
                     ) -> tuple[pd.DataFrame, np.ndarray]:
    """(eval table, soft-voted probabilities) of `models`. Without `weights` every checkpoint counts once;
    `weights` (one per entry) are shared evenly by the checkpoints of an entry (folds, members)."""
    if weights is not None and len(weights) != len(models.entries):
        raise UserError(f"--weights: {len(weights)} weight(s) for {len(models.entries)} --ckpt")
    table, per_group, sizes = predict_groups(models, options)
    return table, soft_vote(per_group, sizes if weights is None else weights)


def fitted_ensemble_scores(spec: dict[str, Any], models: ModelSet, options: PredictOptions
                           ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """(eval table, weighted probabilities, decision scores) of an `ensemble.py` file's `spec` (its runs
    resolved into `models`): each run's folds soft-voted, the runs mixed with the fitted weights, then
    log-probabilities plus the class offsets (the rule fitted on the out-of-fold predictions)."""
    table, per_run, _ = predict_groups(models, options)
    mixed, scores = decision_scores(np.stack(per_run), spec["weights"], spec["offsets"])
    return table, mixed, scores
