"""The network: a timm backbone (classifier removed) + our head."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import timm
import torch
from torch import nn

from model.heads import build_head
from utils.config import ModelConfig
from utils.errors import ConfigError, first_line
from utils.labels import NUM_CLASSES


class MaskClassifier(nn.Module):
    """`backbone` returns pooled features (timm, `num_classes=0`); `head` maps them to classes."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(x))


def feature_dim(backbone: nn.Module) -> int:
    """Width of the backbone's pooled output (timm's `head_hidden_size` where a model has one)."""
    return int(getattr(backbone, "head_hidden_size", None) or backbone.num_features)


HUB_HOST = ("huggingface.co", 443)


def weights_cached(backbone: str) -> bool:
    """Whether the hub weights of `backbone` are already in the local Hugging Face cache."""
    from huggingface_hub import try_to_load_from_cache

    hub_id = getattr(timm.get_pretrained_cfg(backbone), "hf_hub_id", None)
    if not hub_id:
        return False
    return any(isinstance(try_to_load_from_cache(hub_id, name), str)
               for name in ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin"))


def hub_reachable(timeout: float = 3.0) -> bool:
    """One quick connection to the weights hub (instead of timm's retries on an offline machine)."""
    import os
    import socket

    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("", "0"):
        return False
    try:
        with socket.create_connection(HUB_HOST, timeout=timeout):
            return True
    except OSError:
        return False


def check_pretrained_reachable(cfg: ModelConfig) -> None:
    """Offline with `pretrained: true` and nothing cached: one line naming the two ways out, at once."""
    if cfg.pretrained and cfg.pretrained_path is None and not weights_cached(cfg.backbone) and not hub_reachable():
        raise ConfigError(f"model.pretrained: the weights of {cfg.backbone} are not cached and the hub "
                          f"({HUB_HOST[0]}) cannot be reached: set model.pretrained_path=/path/to/weights "
                          "(a timm checkpoint of this backbone) or model.pretrained=false")


def create_backbone(cfg: ModelConfig) -> nn.Module:
    """timm backbone without classifier; pretrained from the hub or from `cfg.pretrained_path`."""
    overlay: Optional[dict] = None
    if cfg.pretrained_path is not None:
        path = Path(cfg.pretrained_path)
        if not path.is_file():
            raise ConfigError(f"model.pretrained_path: file not found: {path}")
        overlay = {"file": str(path)}
    check_pretrained_reachable(cfg)
    try:
        return timm.create_model(
            cfg.backbone,
            pretrained=cfg.pretrained or overlay is not None,
            pretrained_cfg_overlay=overlay,
            num_classes=0,
            drop_rate=cfg.drop_rate,
            drop_path_rate=cfg.drop_path_rate,
        )
    except RuntimeError as err:
        where = f"model.pretrained_path {cfg.pretrained_path}" if overlay else f"model.backbone {cfg.backbone}"
        raise ConfigError(f"{where}: cannot load weights ({first_line(err)})") from None


def build_model(
    cfg: ModelConfig, num_classes: int = NUM_CLASSES, backbone: Optional[nn.Module] = None,
    age_bounds: Optional[tuple[int, int]] = None,
) -> MaskClassifier:
    """Backbone + `cfg.head` for `num_classes` outputs; an ordinal age head starts at `age_bounds`
    (a checkpoint's own replace them when loaded)."""
    backbone = backbone if backbone is not None else create_backbone(cfg)
    head = build_head(cfg.head, in_features=feature_dim(backbone), num_classes=num_classes, hidden_dim=cfg.hidden_dim,
                      activation=cfg.activation, dropout=cfg.dropout, age=cfg.age)
    if age_bounds is not None and getattr(head, "ordinal", False):
        head.age_bounds.copy_(torch.tensor(age_bounds, dtype=torch.float))
    return MaskClassifier(backbone, head)
