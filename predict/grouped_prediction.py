"""`inference.py --group-people`: photo statistics and the network's person attributes, people grouped without
labels, gender and age pooled per group; measured first on the checkpoint's validation people, whose
identities are known (grouping purity, macro-F1 with and without pooling)."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch

from data_loader.datasets import build_dataset
from data_loader.images import load_image
from data_loader.loaders import build_loader
from data_loader.pipeline import build_pipeline
from predict.group_people import (
    completeness,
    group_photos,
    person_attributes,
    photo_statistics,
    pool_groups,
    purity,
)
from predict.predictor import model_from_checkpoint, predict_probs
from trainer.checkpoint import load_checkpoint
from utils.config import Config
from utils.io import atomic_write_text
from utils.metrics import macro_f1

LOG = logging.getLogger(__name__)
STATS_SIZE = (96, 128)  # (w, h) JPEG draft decode for the photo statistics


@dataclass(frozen=True)
class PhotoFeatures:
    """What grouping reads of a set of photos, in their order."""

    probs: np.ndarray
    statistics: np.ndarray


def photo_features(ckpt: Path, paths: Sequence[str], *, device: torch.device, tta: bool = False,
                   batch_size: Optional[int] = None, num_workers: Optional[int] = None,
                   eval_dir: Optional[Path] = None) -> PhotoFeatures:
    """Class probabilities of `paths` under checkpoint `ckpt` (its own evaluation pipeline) and each photo's
    border statistics."""
    model, config = model_from_checkpoint(load_checkpoint(str(ckpt)), str(ckpt))
    pipeline = build_pipeline(config, [eval_dir] if eval_dir else [Path(paths[0]).parent])
    loader = build_loader(pipeline.eval_dataset(list(paths), seed=config.seed), batch_size=batch_size or
                          config.data.batch_size, train=False, seed=config.seed,
                          num_workers=config.data.num_workers if num_workers is None else num_workers)
    probs = predict_probs(model, loader, device=device, amp=config.trainer.amp, tta=tta)
    statistics = np.stack([photo_statistics(load_image(p, STATS_SIZE)) for p in paths])
    return PhotoFeatures(probs, statistics)


def grouped(probs_for_groups: np.ndarray, statistics: np.ndarray, group_size: float) -> np.ndarray:
    """Group ids from the photo statistics and the person attributes of `probs_for_groups`."""
    return group_photos(statistics, person_attributes(probs_for_groups), group_size=group_size)


def validation_photos(config: Config) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(paths, competition labels, person ids) of the validation people of `config`'s split."""
    data = config.data
    dataset = build_dataset(data, draft_size=None, seed=config.seed)
    _, rows = dataset.split_indices(data.val_ratio, config.seed, data.n_folds, data.fold)
    people = dataset.split_units()["person_id"].to_numpy()
    return [dataset.paths[i] for i in rows], dataset.eval_labels[rows], people[rows]


def validation_report(ckpt: Path, *, group_size: float, **kwargs) -> Optional[dict[str, float]]:
    """Grouping purity and completeness, and macro-F1 without and with pooling, on the validation people of
    `ckpt`'s own split (None when it has none)."""
    config = model_from_checkpoint(load_checkpoint(str(ckpt)), str(ckpt))[1]
    paths, labels, people = validation_photos(config)
    if not paths:
        return None
    features = photo_features(ckpt, paths, **{**kwargs, "eval_dir": Path(config.data.train_dir)})
    groups = grouped(features.probs, features.statistics, group_size)
    pooled = pool_groups(features.probs, groups)
    return {"photos": len(paths), "people": int(len(set(people))), "groups": int(len(set(groups))),
            "purity": purity(groups, people), "completeness": completeness(groups, people),
            "f1": macro_f1(labels, features.probs.argmax(1)), "f1_pooled": macro_f1(labels, pooled.argmax(1))}


def log_validation(report: Optional[dict[str, float]], ckpt: Path) -> None:
    """The validation figures in the log, and a warning when pooling did not help there."""
    if report is None:
        LOG.warning("--group-people: %s has no validation people (data.val_ratio=0): grouping not measured", ckpt)
        return
    LOG.info("--group-people on the %d validation photos of %s (%d people -> %d groups): purity %.3f, "
             "completeness %.3f; macro-F1 %.4f per photo, %.4f pooled per group", report["photos"], ckpt,
             report["people"], report["groups"], report["purity"], report["completeness"], report["f1"],
             report["f1_pooled"])
    if report["f1_pooled"] <= report["f1"]:
        LOG.warning("--group-people did not help on validation (macro-F1 %.4f pooled vs %.4f per photo); the "
                    "submission is pooled as asked", report["f1_pooled"], report["f1"])


def group_eval(ckpt: Path, table: pd.DataFrame, probs: np.ndarray, *, group_size: float,
               **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """(pooled probabilities, group ids) of the eval photos in `table`, `probs` being the prediction to pool
    (one checkpoint's or an ensemble's; its gender and age outputs help the photos' statistics group them)."""
    features = photo_features(ckpt, table["path"].tolist(), **kwargs)
    groups = grouped(probs, features.statistics, group_size)
    return pool_groups(probs, groups), groups


def write_groups(table: pd.DataFrame, groups: np.ndarray, out: Path) -> Path:
    """`ImageID,group` in info.csv order, written atomically."""
    atomic_write_text(out, pd.DataFrame({"ImageID": table["ImageID"], "group": groups}).to_csv(index=False))
    return out
