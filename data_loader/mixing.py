"""Batch mixing: MixUp / CutMix through timm's `Mixup`, and the face-aware "half" CutMix."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from timm.data import Mixup

from utils.config import AugmentConfig
from utils.labels import NUM_CLASSES

Mixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class HalfCutMix:
    """With probability `prob`, each image takes the left or right half (cut at the centre ± `jitter`
    of the width) from a partner image of the batch; targets are mixed in proportion to area.
    Random boxes on a centred face often cut out the mask; a half keeps one whole side of it.
    Draws from torch's global RNG, which checkpoints save and restore."""

    def __init__(self, prob: float = 1.0, jitter: float = 0.1, num_classes: int = NUM_CLASSES) -> None:
        self.prob, self.jitter, self.num_classes = prob, jitter, num_classes
        self.generator: Optional[torch.Generator] = None

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        soft = torch.nn.functional.one_hot(targets, self.num_classes).float()
        if torch.rand((), generator=self.generator) >= self.prob:
            return images, soft
        width = images.shape[-1]
        cut = int(round(width * (0.5 + (torch.rand((), generator=self.generator).item() * 2 - 1) * self.jitter)))
        partner = torch.randperm(len(images), generator=self.generator).to(images.device)
        left = torch.rand((), generator=self.generator) < 0.5  # which side is replaced
        mixed = images.clone()
        cols = slice(0, cut) if left else slice(cut, width)
        mixed[..., cols] = images[partner][..., cols]
        lam = 1.0 - (cut if left else width - cut) / width  # share of the own image kept
        return mixed, lam * soft + (1 - lam) * soft[partner.to(soft.device)]


class AnyBatchMixup:
    """timm's `Mixup` for batches of any size: it needs an even batch, so with an odd one the last
    image passes unmixed (its target one-hot) and the rest are mixed as usual."""

    def __init__(self, mixup: Mixup, num_classes: int = NUM_CLASSES) -> None:
        self.mixup, self.num_classes = mixup, num_classes

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if len(images) % 2 == 0:
            return self.mixup(images, targets)
        last = torch.nn.functional.one_hot(targets[-1:], self.num_classes).float()
        if len(images) == 1:
            return images, last
        mixed, soft = self.mixup(images[:-1], targets[:-1])
        return torch.cat([mixed, images[-1:]]), torch.cat([soft, last.to(soft.dtype)])


def build_mixer(cfg: AugmentConfig, num_classes: int = NUM_CLASSES) -> Optional[Mixer]:
    """The configured batch mixer over `num_classes` target ids, or None (timm's `Mixup` draws from numpy's
    global RNG)."""
    if cfg.cutmix is not None and cfg.cutmix_mode == "half":
        return HalfCutMix(cfg.cutmix.prob, num_classes=num_classes)
    if cfg.cutmix is None and cfg.mixup is None:
        return None
    mix_p = cfg.mixup.prob if cfg.mixup else 0.0
    cut_p = cfg.cutmix.prob if cfg.cutmix else 0.0
    mixup = Mixup(mixup_alpha=cfg.mixup.alpha if cfg.mixup else 0.0,
                  cutmix_alpha=cfg.cutmix.alpha if cfg.cutmix else 0.0, prob=min(1.0, mix_p + cut_p),
                  switch_prob=cut_p / (mix_p + cut_p), label_smoothing=0.0, num_classes=num_classes)
    return AnyBatchMixup(mixup, num_classes=num_classes)
