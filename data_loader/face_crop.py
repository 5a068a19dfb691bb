"""`augment.face_crop`: each photo cut to its face (box from `faces.csv`, widened by a margin, grown
to the network input's aspect) before the image cache and the augmentation pipeline see it; photos
without a confident box get a centred window of the same aspect."""
from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional, Sequence

import numpy as np

from data_loader.faces import Box, face_boxes
from data_loader.images import load_image, resize_to
from utils.config import AugmentConfig
from utils.dist_info import DistInfo
from utils.labels import MASK_BY_STEM, MASK_NAMES

LEAK_SPREAD = 0.3  # detection rates per mask state further apart than this are warned about

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


def place_window(cx: float, cy: float, width: float, height: float, image_w: int, image_h: int) -> Window:
    """A `width` x `height` window centred on (cx, cy), shrunk (aspect kept) to fit the image and
    shifted inside it."""
    scale = min(1.0, image_w / width, image_h / height)
    width, height = width * scale, height * scale
    x0 = min(max(cx - width / 2, 0.0), image_w - width)
    y0 = min(max(cy - height / 2, 0.0), image_h - height)
    left, top = int(round(x0)), int(round(y0))
    right = min(image_w, max(left + 1, int(round(x0 + width))))
    bottom = min(image_h, max(top + 1, int(round(y0 + height))))
    return left, top, right, bottom


def face_window(box: Box, *, image_w: int, image_h: int, margin: float, aspect: float) -> Window:
    """The face `box` (x, y, w, h) widened by `margin` of its size on every side, then grown along one
    axis to `aspect` (width / height), placed inside the image."""
    x, y, w, h = box
    width, height = w * (1 + 2 * margin), h * (1 + 2 * margin)
    if width / height < aspect:
        width = height * aspect
    else:
        height = width / aspect
    return place_window(x + w / 2, y + h / 2, width, height, image_w, image_h)


def center_window(*, image_w: int, image_h: int, scale: float, aspect: float) -> Window:
    """The centred window of `aspect` whose sides are `scale` times those of the largest one that fits."""
    width, height = (image_h * aspect, image_h) if image_w / image_h > aspect else (image_w, image_w / aspect)
    return place_window(image_w / 2, image_h / 2, width * scale, height * scale, image_w, image_h)


@dataclass(frozen=True)
class FaceCrop:
    """Decode a photo cut to its face window (a callable: path -> upright uint8 RGB crop).

    `boxes` maps absolute paths to (box, score, width, height) as in `faces.csv`; `out_hw` is the
    network input (height, width), whose aspect every window takes. With `draft`, a JPEG is decoded at
    the smallest DCT scale at which its window still covers `out_hw`.
    """

    boxes: Mapping[str, tuple[Box, float, int, int]] = field(repr=False)
    out_hw: tuple[int, int]
    margin: float = 0.3
    min_score: float = 0.5
    fallback_scale: float = 0.7
    draft: bool = True
    detector: str = "mtcnn"

    @property
    def aspect(self) -> float:
        return self.out_hw[1] / self.out_hw[0]

    def entry(self, path: str) -> Optional[tuple[Box, float, int, int]]:
        """(box, score, width, height) of `path` as in `faces.csv`, or None if it has no row."""
        return self.boxes.get(os.path.abspath(path))

    def has_face(self, path: str) -> bool:
        """Whether `path` has a box at or above `min_score`."""
        entry = self.entry(path)
        return entry is not None and entry[1] >= self.min_score and not math.isnan(entry[0][0])

    def window(self, path: str, image_w: int, image_h: int) -> Window:
        """The crop of `path` in an upright image of `image_w` x `image_h` pixels (the box is rescaled
        from the size it was found at)."""
        if not self.has_face(path):
            return center_window(image_w=image_w, image_h=image_h, scale=self.fallback_scale, aspect=self.aspect)
        (x, y, w, h), _, found_w, found_h = self.entry(path)
        sx, sy = image_w / found_w, image_h / found_h
        return face_window((x * sx, y * sy, w * sx, h * sy), image_w=image_w, image_h=image_h, margin=self.margin,
                           aspect=self.aspect)

    def draft_size(self, path: str) -> Optional[tuple[int, int]]:
        """The (w, h) to decode `path` at so that its window still covers `out_hw`, or None (full size)."""
        entry = self.entry(path)
        if not self.draft or entry is None or min(entry[2], entry[3]) <= 0:
            return None
        image_w, image_h = entry[2], entry[3]
        x0, y0, x1, y1 = self.window(path, image_w, image_h)
        return (math.ceil(self.out_hw[1] * image_w / (x1 - x0)), math.ceil(self.out_hw[0] * image_h / (y1 - y0)))

    def cut(self, path: str) -> np.ndarray:
        """The photo cut to its window, at the resolution it was decoded at (covering `out_hw`)."""
        image = load_image(path, self.draft_size(path))
        x0, y0, x1, y1 = self.window(path, image.shape[1], image.shape[0])
        return np.ascontiguousarray(image[y0:y1, x0:x1])

    def __call__(self, path: str) -> np.ndarray:
        """The photo cut to its window and resized to `out_hw`: the same pixels whether they are then
        cached or used at once (validation, prediction)."""
        return resize_to(self.cut(path), self.out_hw)

    def summary(self) -> str:
        """One line for the log: how many photos are cut to a face."""
        found = sum(self.has_face(path) for path in self.boxes)
        return (f"face crop: a face (score >= {self.min_score:.2f}, {self.detector}) in {found} of {len(self.boxes)} "
                f"images ({100 * found / max(1, len(self.boxes)):.1f}%); the rest are cut to a centred window")

    def rates_by_mask(self) -> dict[str, float]:
        """Share of photos cut to a face, per mask state (wear / incorrect / not), from the file names of
        training photos (evaluation photos have hashed names and are not counted)."""
        found: dict[str, list[bool]] = {}
        for path in self.boxes:
            mask = MASK_BY_STEM.get(Path(path).stem)
            if mask is not None:
                found.setdefault(MASK_NAMES[mask], []).append(self.has_face(path))
        return {state: sum(hits) / len(hits) for state, hits in found.items()}

    def label_leak_warning(self, spread: float = LEAK_SPREAD) -> Optional[str]:
        """A warning when whether a photo was cut to its face depends strongly on its mask state: the crop
        itself (its framing and scale) then tells the network the label, which real photos may not."""
        rates = self.rates_by_mask()
        if len(rates) < 2 or max(rates.values()) - min(rates.values()) < spread:
            return None
        shown = ", ".join(f"{state} {rate:.0%}" for state, rate in rates.items())
        return (f"face crop: the detector finds faces at very different rates per mask state ({shown}): whether a "
                "photo is cut to its face then predicts its mask class, a shortcut the network can learn instead "
                "of the mask; check the crops (python -m tools.data_report), lower augment.face_crop.min_score or "
                "try another detector")

    def fingerprint(self) -> str:
        """Changes with any box or setting: part of the image cache's key."""
        digest = hashlib.sha1(json.dumps([self.out_hw, self.margin, self.min_score, self.fallback_scale,
                                          self.draft, self.detector]).encode())
        for path in sorted(self.boxes):
            digest.update(f"{path}|{self.boxes[path]}\n".encode())
        return digest.hexdigest()[:12]


def build_face_crop(aug: AugmentConfig, dirs: Sequence[Optional[Path]], *, draft: bool,
                    dist_info: DistInfo = DistInfo()) -> Optional[FaceCrop]:
    """The face crop of a resolved augment section over the images under `dirs` (None when
    `augment.face_crop` is off); `faces.csv` is brought up to date in each directory first. Callers log
    `summary()` where their log goes (training: train.log)."""
    cfg = aug.face_crop
    if cfg is None:
        return None
    boxes = face_boxes([d for d in dirs if d is not None], cfg.detector, dist_info)
    return FaceCrop(boxes, out_hw=tuple(aug.image_size), margin=cfg.margin, min_score=cfg.min_score,
                    fallback_scale=cfg.fallback_scale, draft=draft, detector=cfg.detector)
