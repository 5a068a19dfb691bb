"""Albumentations pipelines from the config: user steps, then resize, normalize, to tensor."""
from __future__ import annotations

from typing import Sequence

import albumentations as A
import timm
from albumentations.pytorch import ToTensorV2

from utils.config import AugmentConfig, Config, StepConfig
from utils.errors import ConfigError, did_you_mean

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resolve_augment(config: Config) -> Config:
    """Fill `augment.image_size/mean/std` left empty from the backbone's pretrained config."""
    aug = config.augment
    pcfg = timm.get_pretrained_cfg(config.model.backbone)
    pcfg = pcfg.to_dict() if pcfg is not None else {}
    size = aug.image_size or tuple(pcfg.get("input_size", (3, 224, 224))[1:])
    mean = aug.mean or tuple(pcfg.get("mean", IMAGENET_MEAN))
    std = aug.std or tuple(pcfg.get("std", IMAGENET_STD))
    new_aug = aug.model_copy(update={"image_size": tuple(size), "mean": tuple(mean), "std": tuple(std)})
    return config.model_copy(update={"augment": new_aug})


def build_step(step: StepConfig, key: str) -> A.BasicTransform:
    """One albumentations transform by class name; bad names/args name the config key."""
    cls = getattr(A, step.name, None)
    if not isinstance(cls, type) or not issubclass(cls, A.BasicTransform):
        names = [n for n in dir(A) if isinstance(getattr(A, n), type) and issubclass(getattr(A, n), A.BasicTransform)]
        raise ConfigError(f"{key}.name: unknown albumentations transform {step.name!r}{did_you_mean(step.name, names)}")
    try:
        return cls(**step.args, strict=True)
    except (TypeError, ValueError) as err:
        detail = str(err).splitlines()[0]
        raise ConfigError(f"{key}.args: invalid arguments for {step.name}: {detail}") from None


def build_pipeline(steps: Sequence[StepConfig], aug: AugmentConfig, key: str) -> A.Compose:
    """User `steps`, then Resize to `aug.image_size`, Normalize, ToTensorV2."""
    if aug.image_size is None or aug.mean is None or aug.std is None:
        raise ValueError("call resolve_augment() first")
    height, width = aug.image_size
    ops = [build_step(s, f"{key}[{i}]") for i, s in enumerate(steps)]
    ops += [A.Resize(height, width), A.Normalize(mean=aug.mean, std=aug.std), ToTensorV2()]
    return A.Compose(ops)


def build_transforms(aug: AugmentConfig) -> tuple[A.Compose, A.Compose]:
    """(train, eval) pipelines of a resolved augment section."""
    return build_pipeline(aug.train, aug, "augment.train"), build_pipeline(aug.eval, aug, "augment.eval")
