"""`inference.py --group-people`: photo statistics and the network's person attributes, people grouped without
labels, gender and age pooled per group; measured first on the checkpoint's validation people, whose
identities are known (grouping purity, macro-F1 with and without pooling and the people-bootstrap interval of
the difference). Pooling stands down unless that interval lies above zero (`use_pooling`)."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import pandas as pd

from data_loader.datasets import build_dataset
from data_loader.images import load_image
from predict.person_groups import (
    completeness,
    group_photos,
    person_attributes,
    photo_statistics,
    pool_groups,
    purity,
)
from predict.predictor import model_from_checkpoint, predict_paths
from utils.bootstrap import paired_f1_delta
from utils.config import Config
from utils.io import atomic_write_text
from utils.metrics import macro_f1

LOG = logging.getLogger(__name__)
STATS_SIZE = (96, 128)  # (w, h) JPEG draft decode for the photo statistics


def photo_statistics_of(paths: Sequence[str]) -> np.ndarray:
    """Each photo's border statistics (`photo_statistics`), from a small JPEG draft decode."""
    return np.stack([photo_statistics(load_image(p, STATS_SIZE)) for p in paths])


def grouped(probs_for_groups: np.ndarray, statistics: np.ndarray, group_size: float) -> np.ndarray:
    """Group ids from the photo statistics and the person attributes of `probs_for_groups`."""
    return group_photos(statistics, person_attributes(probs_for_groups), group_size=group_size)


def validation_photos(config: Config) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(paths, competition labels, person ids) of the validation people of `config`'s split."""
    data = config.data
    dataset = build_dataset(data, draft_size=None, seed=config.seed)
    _, rows = dataset.split_indices(data.val_ratio, config.split_seed, data.n_folds, data.fold)
    people = dataset.split_units()["person_id"].to_numpy()
    return [dataset.paths[i] for i in rows], dataset.eval_labels[rows], people[rows]


def validation_report(state: dict[str, Any], source: str, *, group_size: float, **predict_kwargs: Any
                      ) -> Optional[dict[str, float]]:
    """Grouping purity and completeness, and macro-F1 without and with pooling, on the validation people of
    the split of the checkpoint `state` (loaded from `source`; None when it has none); `predict_kwargs` as for
    `predict_paths`."""
    model, config = model_from_checkpoint(state, source)
    paths, labels, people = validation_photos(config)
    if not paths:
        return None
    probs = predict_paths(model, config, paths, [Path(config.data.train_dir)], source=source, **predict_kwargs)
    groups = grouped(probs, photo_statistics_of(paths), group_size)
    pooled = pool_groups(probs, groups)
    delta, low, high = paired_f1_delta(labels, probs.argmax(1), pooled.argmax(1), people)
    return {"photos": len(paths), "people": int(len(set(people))), "groups": int(len(set(groups))),
            "purity": purity(groups, people), "completeness": completeness(groups, people),
            "f1": macro_f1(labels, probs.argmax(1)), "f1_pooled": macro_f1(labels, pooled.argmax(1)),
            "delta": delta, "delta_low": low, "delta_high": high}


def log_validation(report: Optional[dict[str, float]], ckpt: Path) -> None:
    """The validation figures in the log."""
    if report is None:
        LOG.warning("--group-people: %s has no validation people (data.val_ratio=0): grouping not measured", ckpt)
        return
    LOG.info("--group-people on the %d validation photos of %s (%d people -> %d groups): purity %.3f, "
             "completeness %.3f; macro-F1 %.4f per photo, %.4f pooled per group (%+.4f, 95 %% CI %+.4f … %+.4f)",
             report["photos"], ckpt, report["people"], report["groups"], report["purity"], report["completeness"],
             report["f1"], report["f1_pooled"], report["delta"], report["delta_low"], report["delta_high"])


def use_pooling(report: Optional[dict[str, float]], mode: str) -> bool:
    """Whether the submission is pooled: with `mode` 'auto', only when validation showed a gain beyond noise (the
    interval of the difference above zero); 'always' pools whatever validation said. One line either way."""
    shown = report is not None and report["delta_low"] > 0
    if shown:
        LOG.info("--group-people: pooling beat per-photo prediction on validation beyond noise; the submission "
                 "is pooled")
        return True
    why = ("no validation people to measure it on" if report is None else
           f"no gain beyond noise on validation ({report['delta']:+.4f}, 95 % CI {report['delta_low']:+.4f} … "
           f"{report['delta_high']:+.4f}, {report['people']} people)")
    if mode == "always":
        LOG.warning("--group-people always: %s; the submission is pooled as asked", why)
        return True
    LOG.warning("--group-people: %s; the submission is the plain per-photo prediction (groups.csv written; "
                "--group-people always pools anyway)", why)
    return False


def group_eval(table: pd.DataFrame, probs: np.ndarray, *, group_size: float) -> tuple[np.ndarray, np.ndarray]:
    """(pooled probabilities, group ids) of the eval photos in `table`, `probs` being the prediction to pool
    (one checkpoint's or an ensemble's; its gender and age outputs help the photos' statistics group them)."""
    groups = grouped(probs, photo_statistics_of(table["path"].tolist()), group_size)
    return pool_groups(probs, groups), groups


def write_groups(table: pd.DataFrame, groups: np.ndarray, out: Path) -> Path:
    """`ImageID,group` in info.csv order, written atomically."""
    atomic_write_text(out, pd.DataFrame({"ImageID": table["ImageID"], "group": groups}).to_csv(index=False))
    return out
