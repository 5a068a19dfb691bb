"""Dataset classes, selected by name (`data.dataset`), and the image loader they share."""
from __future__ import annotations

import logging
from typing import Callable, Optional, Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from data_loader.duplicates import duplicate_groups
from data_loader.images import load_image
from data_loader.people import list_train_images
from data_loader.relabel import apply_fixes
from data_loader.seeding import sample_seed, seed_pipeline
from data_loader.split import random_image_split, stratified_person_folds, stratified_person_split
from utils.config import DATASET_NAMES, DataConfig
from utils.errors import DataError
from utils.labels import DEFAULT_AGE_BOUNDS, regroup_age

LOG = logging.getLogger(__name__)
Transform = Callable[..., dict]


class ImageDataset(Dataset):
    """Images (and labels, -1 when unknown) through an albumentations transform.

    Augmentation randomness is a function of (seed, epoch, index) alone, so runs are
    reproducible for any `num_workers` and a resumed run sees the same augmentations.
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: Optional[Sequence[int]] = None,
        transform: Optional[Transform] = None,
        draft_size: Optional[tuple[int, int]] = None,
        seed: int = 0,
        cache: Optional[np.ndarray] = None,
        cache_rows: Optional[Sequence[int]] = None,
        crop: Optional[Callable[[str], np.ndarray]] = None,
    ) -> None:
        self.paths = list(map(str, paths))
        self.labels = np.asarray(labels if labels is not None else [-1] * len(self.paths), dtype=np.int64)
        self.transform = transform
        self.draft_size = draft_size
        self.seed = seed
        self.epoch = 0
        self.cache = cache  # decoded photos (N, H, W, 3), see data_loader.cache
        self.cache_rows = np.arange(len(self.paths)) if cache_rows is None else np.asarray(cache_rows)
        self.crop = crop  # path -> decoded face crop (`data_loader.face_crop.FaceCrop`), or None

    def set_epoch(self, epoch: int) -> None:
        """Select the augmentation stream of `epoch`."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def decoded(self, index: int) -> np.ndarray:
        """Image `index` before the transform: from the cache if it holds it, else from its file
        (cut to its face with `crop`)."""
        if self.cache is not None and self.cache_rows[index] >= 0:
            return np.asarray(self.cache[self.cache_rows[index]])
        if self.crop is not None:
            return self.crop(self.paths[index])
        return load_image(self.paths[index], self.draft_size)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor | np.ndarray, int, int]:
        """`key` is an index, or `(index, epoch)` from `EpochShuffleSampler`; returns
        (image, label, index)."""
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        image = self.decoded(index)
        if self.transform is not None:
            seed_pipeline(self.transform, sample_seed(self.seed, epoch, index))
            image = self.transform(image=image)["image"]
        return image, int(self.labels[index]), index


def competition_labels(images: pd.DataFrame) -> np.ndarray:
    """Class ids under the competition's age groups (<30, 30-59, >=60), whatever bounds the
    table's `label` column was made with: what validation and every reported F1 are scored on."""
    if "age" not in images:
        return images["label"].to_numpy()
    return regroup_age(images["label"].to_numpy(), images["age"].to_numpy(), DEFAULT_AGE_BOUNDS)


class MaskBaseDataset(ImageDataset):
    """All training images; `split` draws validation images at random.

    Splitting by image puts photos of one person on both sides: validation scores are
    inflated by near-duplicate faces. Kept for comparison; prefer MaskSplitByProfileDataset.

    Training images carry the configured labels (`data.age_bounds` may move the oldest group);
    validation images always carry the competition's labels (`competition_labels`).
    """

    def __init__(self, images: pd.DataFrame, groups: Optional[dict[str, str]] = None, **kwargs) -> None:
        super().__init__(images["path"].tolist(), images["label"].tolist(), **kwargs)
        self.images = images.reset_index(drop=True)
        self.eval_labels = competition_labels(self.images)
        self.groups = groups  # person id -> group of near-duplicate people kept on one side

    @classmethod
    def from_config(cls, cfg: DataConfig, **kwargs) -> "MaskBaseDataset":
        """Read `cfg.train_dir` with the configured age bounds and bad-image policy."""
        images = list_train_images(cfg.train_dir, cfg.age_bounds, cfg.skip_bad_images)
        if cfg.relabel is not None:
            images = apply_fixes(images, cfg.relabel, cfg.age_bounds)
        if images.empty:
            raise DataError(f"{cfg.train_dir}: no training images found")
        groups = duplicate_groups(images) if cfg.group_duplicates else None
        if groups is not None and (merged := sum(g != p for p, g in groups.items())):
            LOG.warning("%d person id(s) look like near-duplicates of another id; each group stays on one side "
                        "of the split (python -m tools.data_report lists them)", merged)
        return cls(images, groups=groups, **kwargs)

    def split_units(self) -> pd.DataFrame:
        """The image table with `person_id` replaced by its near-duplicate group (what splits divide)."""
        if not self.groups:
            return self.images
        return self.images.assign(person_id=self.images["person_id"].map(self.groups))

    def split_indices(
        self, val_ratio: float, seed: int, n_folds: int = 0, fold: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row positions of (train, val): `val_ratio` of the images, or fold `fold` of `n_folds`."""
        if n_folds:
            in_val = np.random.default_rng(seed).permutation(len(self.images)) % n_folds == fold
            return np.flatnonzero(~in_val), np.flatnonzero(in_val)
        return random_image_split(self.images, val_ratio, seed)

    def subset(self, rows: np.ndarray, transform: Optional[Transform], labels: np.ndarray) -> ImageDataset:
        """A new dataset of the given rows with its own transform and `labels` (one per image)."""
        paths = [self.paths[i] for i in rows]
        return ImageDataset(paths, labels[rows], transform=transform, draft_size=self.draft_size, seed=self.seed,
                            cache=self.cache, cache_rows=self.cache_rows[rows], crop=self.crop)

    def check_split(self, n_folds: int) -> None:
        """Refuse more folds than people, before anything is written."""
        units = self.split_units()["person_id"].nunique()
        if n_folds > units:
            raise DataError(f"data.n_folds={n_folds}: only {units} people (near-duplicates counted once) to "
                            "share between the folds")

    def split(
        self, val_ratio: float, seed: int, train_transform: Optional[Transform], val_transform: Optional[Transform],
        n_folds: int = 0, fold: int = 0,
    ) -> tuple[ImageDataset, ImageDataset]:
        """(train, val) datasets; val is empty when `val_ratio` is 0 (and no folds are asked for).
        Train carries the configured labels, val the competition's."""
        self.check_split(n_folds)
        train_rows, val_rows = self.split_indices(val_ratio, seed, n_folds, fold)
        what = f"data.n_folds={n_folds}, data.fold={fold}" if n_folds else f"data.val_ratio={val_ratio}"
        if len(train_rows) == 0:
            raise DataError(f"{what} leaves no training images ({len(self.images)} images in all)")
        if len(val_rows) == 0 and (val_ratio > 0 or n_folds):
            raise DataError(f"{what} leaves no validation images ({len(self.images)} images in all): raise "
                            "data.val_ratio, or set it to 0 to train on everyone")
        train_set = self.subset(train_rows, train_transform, self.labels)
        ages = self.images["age"].to_numpy(dtype=np.int64) if "age" in self.images else np.full(len(self.images), -1)
        train_set.ages = ages[train_rows]  # written ages, -1 unknown (model.age)
        return train_set, self.subset(val_rows, val_transform, self.eval_labels)


class MaskSplitByProfileDataset(MaskBaseDataset):
    """All training images; `split` is by person (near-duplicate people together), stratified over
    gender x age group."""

    def split_indices(
        self, val_ratio: float, seed: int, n_folds: int = 0, fold: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        units = self.split_units()
        if n_folds:
            folds = stratified_person_folds(units, n_folds, seed)
            in_val = (units["person_id"].map(folds) == fold).to_numpy()
            return np.flatnonzero(~in_val), np.flatnonzero(in_val)
        _, val_ids = stratified_person_split(units, val_ratio, seed)
        in_val = units["person_id"].isin(set(val_ids)).to_numpy()
        return np.flatnonzero(~in_val), np.flatnonzero(in_val)


# `data.dataset` -> class: the names are the schema's (`DATASET_NAMES`), each the class of that name here
DATASETS: dict[str, type[MaskBaseDataset]] = {name: globals()[name] for name in DATASET_NAMES}


def with_pseudo_labels(train_set: ImageDataset, pseudo: pd.DataFrame, weight: float) -> ImageDataset:
    """The training set plus pseudo-labelled eval images (`path`, `label` columns), each weighing
    `weight` in the loss (`sample_weights`); they are never in validation or OOF."""
    paths = [*train_set.paths, *pseudo["path"]]
    labels = np.concatenate([train_set.labels, pseudo["label"].to_numpy(dtype=np.int64)])
    rows = np.concatenate([train_set.cache_rows, np.full(len(pseudo), -1)])  # not in the cache: read the file
    merged = ImageDataset(paths, labels, transform=train_set.transform, draft_size=train_set.draft_size,
                          seed=train_set.seed, cache=train_set.cache, cache_rows=rows, crop=train_set.crop)
    merged.sample_weights = torch.cat([torch.ones(len(train_set)), torch.full((len(pseudo),), float(weight))])
    if hasattr(train_set, "ages"):  # an eval image has no written age: -1
        merged.ages = np.concatenate([train_set.ages, np.full(len(pseudo), -1, dtype=np.int64)])
    return merged


def build_dataset(cfg: DataConfig, draft_size: Optional[tuple[int, int]], seed: int,
                  crop: Optional[Callable[[str], np.ndarray]] = None) -> MaskBaseDataset:
    """The dataset class named by `cfg.dataset`, loaded from `cfg.train_dir` (photos cut by `crop`)."""
    return DATASETS[cfg.dataset].from_config(cfg, draft_size=draft_size, seed=seed, crop=crop)
