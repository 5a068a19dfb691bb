"""Classifier heads that sit on a timm backbone's pooled features."""
from __future__ import annotations

import torch
from timm.layers import get_act_layer
from torch import nn

from utils.labels import NUM_CLASSES, TASK_SIZES, split_classes


class ShallowHead(nn.Sequential):
    """Linear -> activation -> BatchNorm1d -> dropout -> Linear (the 2-FC "shallow" head)."""

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 512,
                 activation: str = "gelu", dropout: float = 0.0) -> None:
        act_layer = get_act_layer(activation)
        if act_layer is None:
            raise ValueError(f"unknown activation {activation!r}")
        super().__init__(
            nn.Linear(in_features, hidden_dim),
            act_layer(),
            nn.BatchNorm1d(hidden_dim),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, num_classes),
        )


class MultiTaskHead(nn.Module):
    """Three linear heads (mask 3, gender 2, age 3) whose log-probabilities are summed into the 18
    class log-probabilities, so everything downstream sees ordinary 18-class outputs:
    log p(class) = log p(mask) + log p(gender) + log p(age group)."""

    def __init__(self, in_features: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.mask, self.gender, self.age = (nn.Linear(in_features, n) for n in TASK_SIZES)
        self.register_buffer("index", torch.stack(split_classes(torch.arange(NUM_CLASSES))), persistent=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features)
        parts = [head(x).float().log_softmax(dim=1) for head in (self.mask, self.gender, self.age)]
        return sum(part[:, idx] for part, idx in zip(parts, self.index))


def build_head(kind: str, *, in_features: int, num_classes: int, hidden_dim: int = 512,
               activation: str = "gelu", dropout: float = 0.0) -> nn.Module:
    """`linear` (dropout + one Linear), `shallow` (see `ShallowHead`) or `multi` (`MultiTaskHead`)."""
    if kind == "multi":
        return MultiTaskHead(in_features, dropout)
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if kind == "shallow":
        return ShallowHead(in_features, num_classes, hidden_dim, activation, dropout)
    raise ValueError(f"unknown head {kind!r}")
