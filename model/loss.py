"""Losses by name (`loss.name`), all accepting hard (N,) or soft (N, C) targets and class weights."""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from model.age import ordinal_loss, split_joint
from utils.config import LossConfig
from utils.labels import NUM_CLASSES, TASK_SIZES, split_classes


def soft_targets(targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(N,) class ids -> one-hot floats; (N, C) soft targets pass through."""
    if targets.dim() == 1:
        return F.one_hot(targets.long(), num_classes).float()
    return targets.float()


def smooth(targets: torch.Tensor, eps: float) -> torch.Tensor:
    """Label smoothing: (1 - eps) * targets + eps / C."""
    return targets * (1.0 - eps) + eps / targets.shape[1] if eps else targets


class ClassificationLoss(nn.Module):
    """Cross-entropy (`gamma` = 0) or focal loss on (smoothed) soft targets, optionally class-weighted.

    With hard targets and no smoothing, `ce` equals `F.cross_entropy(weight=...)`: the weighted
    sum of per-sample losses divided by the sum of the samples' class weights.
    """

    def __init__(self, gamma: float = 0.0, eps: float = 0.0, weights: Optional[Sequence[float]] = None) -> None:
        super().__init__()
        self.gamma, self.eps = gamma, eps
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float) if weights is not None else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                sample_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        logits = logits.float()
        t = smooth(soft_targets(targets, logits.shape[1]), self.eps)
        logp = logits.log_softmax(dim=1)
        per_class = -t * logp
        if self.gamma:
            per_class = per_class * (1.0 - logp.exp()).pow(self.gamma)
        sw = torch.ones(len(t), device=t.device) if sample_weight is None else sample_weight.float()
        if self.weights is None:
            return (per_class.sum(dim=1) * sw).sum() / sw.sum()
        return ((per_class * self.weights).sum(dim=1) * sw).sum() / ((t * self.weights).sum(dim=1) * sw).sum()


class SoftF1Loss(nn.Module):
    """1 - macro-F1 computed on softmax probabilities (differentiable); the (class-weighted) mean runs
    over the classes present in the batch's targets, as macro-F1 ignores absent classes."""

    def __init__(self, weights: Optional[Sequence[float]] = None, eps: float = 1e-7) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float) if weights is not None else None)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                sample_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        probs = logits.float().softmax(dim=1)
        t = soft_targets(targets, logits.shape[1])
        # a sample counts `weight` times in the soft confusion counts (the weight multiplies each count once)
        w = torch.ones(len(t), 1, device=t.device) if sample_weight is None else sample_weight.float()[:, None]
        tp = (w * probs * t).sum(0)
        fp = (w * probs * (1 - t)).sum(0)
        fn = (w * (1 - probs) * t).sum(0)
        f1 = 2 * tp / (2 * tp + fp + fn + self.eps)
        present = ((w * t).sum(0) > 0).float()  # a class only zero-weighted samples hold is absent
        weights = present if self.weights is None else present * self.weights
        return 1 - (f1 * weights).sum() / weights.sum().clamp(min=self.eps)


class MultiTaskLoss(nn.Module):
    """For `model.head: multi`: one loss per task (mask, gender, age) on the marginals of the 18-class
    log-probabilities, summed with `task_weights`. Soft 18-class targets are marginalised too."""

    def __init__(self, task_loss: nn.Module, task_weights: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        self.task_loss, self.task_weights = task_loss, tuple(task_weights)
        groups = split_classes(torch.arange(NUM_CLASSES))
        members = torch.cat([F.one_hot(g, n).float() for g, n in zip(groups, TASK_SIZES)], dim=1)
        self.register_buffer("members", members, persistent=False)
        self.sizes = TASK_SIZES

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                sample_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        logp = logits.float().log_softmax(dim=1)
        task_targets = (soft_targets(targets, logits.shape[1]) @ self.members).split(self.sizes, dim=1)
        total = logits.new_zeros((), dtype=torch.float)
        for weight, member, target in zip(self.task_weights, self.members.split(self.sizes, dim=1), task_targets):
            marginal = torch.logsumexp(logp.unsqueeze(2) + member.log().unsqueeze(0), dim=1)
            total = total + weight * self.task_loss(marginal, target, sample_weight)
        return total


class OrdinalMultiTaskLoss(nn.Module):
    """For `model.age: ordinal`: training outputs are the 18 class log-probabilities followed by the age bins',
    targets joint (class, age bin) ids or their mixtures (`model.age`); mask and gender get `task_loss` on their
    marginals, the age the ordinal loss on its bins, summed with `task_weights`. Validation outputs (18 columns,
    18-class targets) get the per-task loss on the marginals, the age group's included."""

    def __init__(self, task_loss: nn.Module, task_weights: Sequence[float] = (1.0, 1.0, 1.0)) -> None:
        super().__init__()
        self.task_weights = tuple(task_weights)
        self.tasks = MultiTaskLoss(task_loss, task_weights)
        self.mask_gender = MultiTaskLoss(task_loss, (*self.task_weights[:2], 0.0))

    def forward(self, logits: torch.Tensor, targets: torch.Tensor,
                sample_weight: Optional[torch.Tensor] = None) -> torch.Tensor:
        if logits.shape[1] == NUM_CLASSES:
            return self.tasks(logits, targets, sample_weight)
        classes, bins = logits[:, :NUM_CLASSES], logits[:, NUM_CLASSES:]
        class_targets, bin_targets = split_joint(targets)
        per_sample = ordinal_loss(bins, bin_targets)
        sw = torch.ones_like(per_sample) if sample_weight is None else sample_weight.float()
        age = (per_sample * sw).sum() / sw.sum()
        return self.mask_gender(classes, class_targets, sample_weight) + self.task_weights[2] * age


def inverse_frequency(labels: Sequence[int], num_classes: int) -> list[float]:
    """Class weights 1 / count, scaled to mean 1 over the classes present (absent classes: 0)."""
    counts = torch.bincount(torch.as_tensor(list(labels), dtype=torch.long), minlength=num_classes).float()
    weights = torch.where(counts > 0, 1.0 / counts.clamp(min=1), torch.zeros_like(counts))
    return (weights * (counts > 0).sum() / weights.sum()).tolist()


def build_loss(cfg: LossConfig, train_labels: Optional[Sequence[int]] = None, num_classes: int = NUM_CLASSES,
               multi_task: bool = False, ordinal_age: bool = False) -> nn.Module:
    """The loss named by `cfg.name`; `class_weights: auto` uses the training split's `train_labels`.
    With `multi_task` (`model.head: multi`) it is applied per task, without class weights; with `ordinal_age`
    (`model.age: ordinal`) the age task gets the ordinal loss on its bins."""
    if multi_task or ordinal_age:
        task_loss = build_loss(cfg.model_copy(update={"class_weights": None}), num_classes=num_classes)
        return (OrdinalMultiTaskLoss if ordinal_age else MultiTaskLoss)(task_loss, cfg.task_weights)
    weights = cfg.class_weights
    if weights == "auto":
        weights = inverse_frequency(train_labels if train_labels is not None else [], num_classes)
    if cfg.name == "soft_f1":
        return SoftF1Loss(weights)
    gamma = cfg.gamma if cfg.name in ("focal", "focal_ls") else 0.0
    eps = cfg.label_smoothing if cfg.name in ("ce", "label_smoothing", "focal_ls") else 0.0
    return ClassificationLoss(gamma, eps, weights)
