"""`model.age: ordinal` inside the Trainer: training targets that carry each photo's age bin, and the age-group
boundaries refitted on every evaluation (`model.age`)."""
from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn

from model.age import fit_age_bounds, joint_targets, regroup
from model.heads import ordinal_head
from utils.labels import NUM_CLASSES

OutputsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def emit_bins(model: nn.Module) -> None:
    """Let an ordinal head output its age bins after the 18 classes (the loss and the fit need them)."""
    head = ordinal_head(model)
    if head is not None:
        head.emit_bins = True


def loss_targets(targets: torch.Tensor, indices: torch.Tensor, bins: Optional[torch.Tensor]) -> torch.Tensor:
    """The loss's targets: the class ids, or with `bins` (age bin per training index) joint (class, bin) ids."""
    if bins is None:
        return targets
    return joint_targets(targets, bins[indices.cpu()].to(targets.device, non_blocking=True))


def bounds_fitter(model: nn.Module) -> Optional[OutputsFn]:
    """For a model with an ordinal head: a function of a whole evaluation's (outputs, 18-class targets) that
    fits the head's boundaries for macro-F1, stores them in the head and returns the 18-class outputs under
    them; None for any other model."""
    head = ordinal_head(model)
    if head is None:
        return None

    def fit(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if outputs.shape[1] == NUM_CLASSES:  # bins not emitted: nothing to fit on
            return outputs
        classes, bins = outputs[:, :NUM_CLASSES].float(), outputs[:, NUM_CLASSES:].float()
        bounds = fit_age_bounds(classes.numpy(), bins.numpy(), targets.numpy())
        head.age_bounds.copy_(torch.tensor(bounds, dtype=head.age_bounds.dtype))
        return regroup(classes, bins, torch.tensor(bounds, dtype=torch.float))
    return fit


def bounds_metrics(model: nn.Module, prefix: str) -> dict[str, float]:
    """`{prefix}_age_low`/`_age_high`: the ordinal head's boundaries (none for other models)."""
    head = ordinal_head(model)
    if head is None:
        return {}
    low, high = head.age_bounds.tolist()
    return {f"{prefix}_age_low": float(low), f"{prefix}_age_high": float(high)}
