"""The crop before the resize, one step for every place a photo is read: `augment.center_crop` (a centred
window, a share of the photo's height and width) or `augment.face_crop` (the detector's face box). The photo is
cut before the image cache and before the network's resize, so the cache holds only the crop at the network's
input size, and training, validation, inference, TTA, `--group-people` and the ONNX export see the same pixels."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Protocol, Sequence

import numpy as np

from data_loader.face_crop import Window, build_face_crop
from data_loader.images import load_image, resize_to
from utils.config import AugmentConfig
from utils.dist_info import DistInfo


class Crop(Protocol):
    """What the cache, the datasets and inference need of a crop: path -> upright uint8 RGB at `out_hw`."""

    out_hw: tuple[int, int]

    def __call__(self, path: str) -> np.ndarray: ...

    def fingerprint(self) -> str: ...

    def summary(self) -> str: ...

    def label_leak_warning(self) -> Optional[str]: ...


def centered(*, image_w: int, image_h: int, share: tuple[float, float]) -> Window:
    """The centred window whose height and width are `share` (h, w) of the image's."""
    height, width = max(1, round(image_h * share[0])), max(1, round(image_w * share[1]))
    top, left = (image_h - height) // 2, (image_w - width) // 2
    return left, top, left + width, top + height


@dataclass(frozen=True)
class CenterCrop:
    """Decode a photo cut to its centred window of `share` (height, width) and resized to `out_hw`. With
    `draft`, a JPEG is decoded at the smallest DCT scale at which the window still covers `out_hw`."""

    share: tuple[float, float]
    out_hw: tuple[int, int]
    draft: bool = True

    def draft_size(self) -> Optional[tuple[int, int]]:
        """(w, h) of the whole photo at which the window covers `out_hw` (None: full size)."""
        if not self.draft:
            return None
        return math.ceil(self.out_hw[1] / self.share[1]), math.ceil(self.out_hw[0] / self.share[0])

    def cut(self, path: str) -> np.ndarray:
        """The photo cut to its window, at the resolution it was decoded at."""
        image = load_image(path, self.draft_size())
        x0, y0, x1, y1 = centered(image_w=image.shape[1], image_h=image.shape[0], share=self.share)
        return np.ascontiguousarray(image[y0:y1, x0:x1])

    def __call__(self, path: str) -> np.ndarray:
        return resize_to(self.cut(path), self.out_hw)

    def fingerprint(self) -> str:
        """Changes with any setting: part of the image cache's key."""
        return hashlib.sha1(json.dumps(["center", self.share, self.out_hw, self.draft]).encode()).hexdigest()[:12]

    def summary(self) -> str:
        return (f"center crop: the middle {self.share[0]:.0%} of every photo's height and {self.share[1]:.0%} of its "
                f"width, resized to {self.out_hw[1]}x{self.out_hw[0]}")

    def label_leak_warning(self) -> Optional[str]:
        """None: the same window for every photo tells the network nothing about its label."""
        return None


def build_crop(aug: AugmentConfig, dirs: Sequence[Optional[Path]], *, draft: bool,
               dist_info: DistInfo = DistInfo()) -> Optional[Crop]:
    """The crop of a resolved augment section (None: whole photos); face boxes are found under `dirs`."""
    if aug.center_crop is not None:
        return CenterCrop(share=tuple(aug.center_crop), out_hw=tuple(aug.image_size), draft=draft)
    return build_face_crop(aug, dirs, draft=draft, dist_info=dist_info)
