"""Classifier heads that sit on a timm backbone's pooled features."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from model.age import AGE_BINS, group_log_probs
from utils.config.backbone import activation_layer
from utils.labels import DEFAULT_AGE_BOUNDS, NUM_CLASSES, TASK_SIZES, split_classes


class ShallowHead(nn.Sequential):
    """Linear -> activation -> BatchNorm1d -> dropout -> Linear (the 2-FC "shallow" head)."""

    def __init__(self, in_features: int, num_classes: int, hidden_dim: int = 512,
                 activation: str = "gelu", dropout: float = 0.0) -> None:
        act_layer = activation_layer(activation)
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
    log p(class) = log p(mask) + log p(gender) + log p(age group).

    With `age="ordinal"` the age head predicts one-year bins (`model.age`); the age group is read from them
    through the `age_bounds` buffer (fitted on validation, saved with the weights). While `emit_bins` is set
    (by the Trainer, never in inference) the output is the 18 class log-probabilities followed by the bins'."""

    def __init__(self, in_features: int, dropout: float = 0.0, age: str = "classes") -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        sizes = (*TASK_SIZES[:2], AGE_BINS if age == "ordinal" else TASK_SIZES[2])
        self.mask, self.gender, self.age = (nn.Linear(in_features, n) for n in sizes)
        self.ordinal, self.emit_bins = age == "ordinal", False
        self.register_buffer("index", torch.stack(split_classes(torch.arange(NUM_CLASSES))), persistent=False)
        if self.ordinal:
            self.register_buffer("age_bounds", torch.tensor(DEFAULT_AGE_BOUNDS, dtype=torch.float))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.dropout(features)
        parts = [head(x).float().log_softmax(dim=1) for head in (self.mask, self.gender, self.age)]
        bins = parts[2]
        if self.ordinal:
            parts[2] = group_log_probs(bins, self.age_bounds)
        classes = sum(part[:, idx] for part, idx in zip(parts, self.index))
        return torch.cat([classes, bins], dim=1) if self.ordinal and self.emit_bins else classes


def build_head(kind: str, *, in_features: int, num_classes: int, hidden_dim: int = 512,
               activation: str = "gelu", dropout: float = 0.0, age: str = "classes") -> nn.Module:
    """`linear` (dropout + one Linear), `shallow` (see `ShallowHead`) or `multi` (`MultiTaskHead`, with
    `age` `classes` or `ordinal`)."""
    if kind == "multi":
        return MultiTaskHead(in_features, dropout, age)
    if kind == "linear":
        return nn.Sequential(nn.Dropout(dropout), nn.Linear(in_features, num_classes))
    if kind == "shallow":
        return ShallowHead(in_features, num_classes, hidden_dim, activation, dropout)
    raise ValueError(f"unknown head {kind!r}")


def ordinal_head(model: nn.Module) -> Optional[MultiTaskHead]:
    """The `model.age: ordinal` head of `model` (unwrapped from DDP), or None."""
    head = getattr(getattr(model, "module", model), "head", None)
    return head if isinstance(head, MultiTaskHead) and head.ordinal else None
