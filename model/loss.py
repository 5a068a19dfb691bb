"""Losses by name (`loss.name`)."""
from __future__ import annotations

from torch import nn

from utils.config import LossConfig


def build_loss(cfg: LossConfig) -> nn.Module:
    """Cross-entropy with optional label smoothing."""
    if cfg.name == "ce":
        return nn.CrossEntropyLoss(label_smoothing=cfg.label_smoothing)
    raise ValueError(f"unknown loss {cfg.name!r}")
