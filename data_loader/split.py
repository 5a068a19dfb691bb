"""Person-level stratified splits: all images of one person land on one side."""
from __future__ import annotations

import numpy as np
import pandas as pd

from utils.labels import NUM_AGE


def person_strata(images: pd.DataFrame) -> pd.Series:
    """Stratum per person (index: person_id): gender x age group, as one integer."""
    people = images.groupby("person_id", sort=True)[["gender", "age_group"]].first()
    return people["gender"] * NUM_AGE + people["age_group"]


def stratified_person_split(images: pd.DataFrame, val_ratio: float, seed: int) -> tuple[list[str], list[str]]:
    """Split person ids into (train, val) with `val_ratio` of each gender x age stratum in val.

    Works for strata of any size (a stratum of one person goes to train unless rounding says
    otherwise), and is deterministic for a seed.
    """
    strata = person_strata(images)
    rng = np.random.default_rng(seed)
    train_ids: list[str] = []
    val_ids: list[str] = []
    for stratum in sorted(strata.unique()):
        ids = np.array(sorted(strata.index[strata == stratum]))
        rng.shuffle(ids)
        n_val = int(round(len(ids) * val_ratio))
        val_ids.extend(ids[:n_val].tolist())
        train_ids.extend(ids[n_val:].tolist())
    return sorted(train_ids), sorted(val_ids)


def stratified_person_folds(images: pd.DataFrame, n_folds: int, seed: int) -> dict[str, int]:
    """Person id -> fold in [0, n_folds): each gender x age stratum dealt round-robin after a
    seeded shuffle, so every fold holds ~1/n of each stratum and no person is in two folds."""
    strata = person_strata(images)
    rng = np.random.default_rng(seed)
    folds: dict[str, int] = {}
    offset = 0
    for stratum in sorted(strata.unique()):
        ids = np.array(sorted(strata.index[strata == stratum]))
        rng.shuffle(ids)
        folds.update({pid: (offset + i) % n_folds for i, pid in enumerate(ids)})
        offset += len(ids)  # continue the deal so small strata do not all start at fold 0
    return folds


def random_image_split(images: pd.DataFrame, val_ratio: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split image row positions at random, ignoring people (leaks faces between sides)."""
    order = np.random.default_rng(seed).permutation(len(images))
    n_val = int(round(len(images) * val_ratio))
    return np.sort(order[n_val:]), np.sort(order[:n_val])
