"""Classifier heads that sit on a timm backbone's pooled features."""
from __future__ import annotations

from timm.layers import get_act_layer
from torch import nn


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


def build_head(kind: str, in_features: int, num_classes: int, hidden_dim: int = 512,
               activation: str = "gelu", dropout: float = 0.0) -> nn.Module:
    """`linear` (dropout + one Linear) or `shallow` (see `ShallowHead`)."""
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if kind == "shallow":
        return ShallowHead(in_features, num_classes, hidden_dim, activation, dropout)
    raise ValueError(f"unknown head {kind!r}")
