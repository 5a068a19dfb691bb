"""Albumentations pipelines from the config: user steps, then resize, normalize, to tensor."""
from __future__ import annotations

from typing import Sequence

import albumentations as A
from albumentations.pytorch import ToTensorV2

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


def build_pipeline(steps: Sequence[StepConfig], aug: AugmentConfig, key: str) -> A.Compose:
    """User `steps`, then Resize to `aug.image_size`, Normalize, ToTensorV2."""
    height, width = aug.image_size
    ops = [build_step(s, f"{key}[{i}]") for i, s in enumerate(steps)]
    ops += [A.Resize(height, width), A.Normalize(mean=aug.mean, std=aug.std), ToTensorV2()]
    return A.Compose(ops)


def build_transforms(aug: AugmentConfig) -> tuple[A.Compose, A.Compose]:
    """(train, eval) pipelines of a resolved augment section."""
    return build_pipeline(aug.train, aug, "augment.train"), build_pipeline(aug.eval, aug, "augment.eval")
