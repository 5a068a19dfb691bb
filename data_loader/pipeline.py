"""How a photo becomes a network input under one config — decode (JPEG draft), crop, cache size,
transforms — wired in one place for training, validation and prediction: `build_image_pipeline`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from data_loader.cache import cache_size, draft_size
from data_loader.crop import Crop, build_crop
from data_loader.datasets import ImageDataset, Transform
from data_loader.transforms import build_transforms
from utils.config import Config
from utils.dist_info import DistInfo


@dataclass(frozen=True)
class ImagePipeline:
    """The preprocessing of one config. `crop` cuts photos before the resize (None: whole photos);
    `draft_size` is the JPEG decode target; `cache_hw` the shape the image cache stores."""

    train_transform: Transform
    eval_transform: Transform
    crop: Optional[Crop]
    draft_size: Optional[tuple[int, int]]
    cache_hw: tuple[int, int]

    def eval_dataset(self, paths: Sequence[str], labels: Optional[Sequence[int]] = None, *, seed: int = 0,
                     cache: Optional[np.ndarray] = None, cache_rows: Optional[Sequence[int]] = None) -> ImageDataset:
        """Photos as the network sees them at evaluation (validation or prediction)."""
        return ImageDataset(paths, labels, transform=self.eval_transform, draft_size=self.draft_size, seed=seed,
                            cache=cache, cache_rows=cache_rows, crop=self.crop)

    def cache_tag(self) -> str:
        """What, beyond the files and `cache_hw`, changes the cached pixels (the crop, a face crop's boxes)."""
        return self.crop.fingerprint() if self.crop is not None else ""


def crop_key(config: Config) -> tuple[Any, ...]:
    """The settings a crop depends on: configs with equal keys share one crop (and its face boxes)."""
    return (config.augment.face_crop, config.augment.center_crop, tuple(config.augment.image_size),
            config.data.jpeg_draft)


def build_image_pipeline(config: Config, dirs: Sequence[Optional[Path]], *, dist_info: DistInfo = DistInfo(),
                   crops: Optional[dict[tuple[Any, ...], Optional[Crop]]] = None) -> ImagePipeline:
    """The pipeline of `config` over the photos under `dirs` (face boxes are found there when
    `augment.face_crop` is on). `crops` memoises face crops between configs (`crop_key`)."""
    aug, draft = config.augment, config.data.jpeg_draft
    train_tf, eval_tf = build_transforms(aug)
    crops = {} if crops is None else crops
    key = crop_key(config)
    if key not in crops:
        crops[key] = build_crop(aug, dirs, draft=draft, dist_info=dist_info)
    crop = crops[key]
    # a crop is cached at the network input size; a whole photo at the JPEG draft size covering it
    cache_hw = tuple(aug.image_size) if crop is not None else cache_size(aug.image_size, draft)
    return ImagePipeline(train_transform=train_tf, eval_transform=eval_tf, crop=crop,
                         draft_size=draft_size(aug.image_size, draft), cache_hw=cache_hw)
