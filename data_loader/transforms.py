"""Albumentations pipelines from the config: user steps, then resize, normalize, to tensor (or, for a
model that runs without torch, to a CHW float32 array)."""
from __future__ import annotations

from typing import Sequence

import albumentations as A
import numpy as np

from utils.config import AugmentConfig, StepConfig
from utils.errors import ConfigError, did_you_mean, first_line


def build_step(step: StepConfig, key: str) -> A.BasicTransform:
    """One albumentations transform by class name; bad names/args name the config key."""
    cls = getattr(A, step.name, None)
    if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform):
        names = [n for n in dir(A) if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.BasicTransform)]
        raise ConfigError(f"{key}.name: unknown albumentations transform {step.name!r}{did_you_mean(step.name, names)}")
    try:
        return cls(**step.args, strict=True)
    except (TypeError, ValueError) as err:
        detail = first_line(err)
        raise ConfigError(f"{key}.args: invalid arguments for {step.name}: {detail}") from None


class ToCHWArray(A.ImageOnlyTransform):
    """HWC image -> contiguous CHW float32 array: what ToTensorV2 gives, without torch."""

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def apply(self, img: np.ndarray, **params) -> np.ndarray:
        return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def compose_steps(steps: Sequence[StepConfig], aug: AugmentConfig, key: str, tensors: bool = True) -> A.Compose:
    """User `steps`, then Resize to `aug.image_size`, Normalize, ToTensorV2 (`tensors=False`: to a CHW
    float32 array, torch not imported)."""
    height, width = aug.image_size
    ops = [build_step(s, f"{key}[{i}]") for i, s in enumerate(steps)]
    if tensors:
        from albumentations.pytorch import ToTensorV2

        last = ToTensorV2()
    else:
        last = ToCHWArray()
    ops += [A.Resize(height, width), A.Normalize(mean=aug.mean, std=aug.std), last]
    return A.Compose(ops)


def build_transforms(aug: AugmentConfig) -> tuple[A.Compose, A.Compose]:
    """(train, eval) pipelines of a resolved augment section."""
    return compose_steps(aug.train, aug, "augment.train"), compose_steps(aug.eval, aug, "augment.eval")
