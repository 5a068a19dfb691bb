"""`trainer.swa`: the mean of the weights at the end of the last epochs (stochastic weight averaging),
with BatchNorm statistics recomputed over the training data — torch's `AveragedModel` and `update_bn`.
`best.pth` is picked by validation macro-F1 on few people, which is noisy; the average of the last
epochs often generalises better. It is saved as `swa.pth`, a checkpoint like `best.pth`."""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn

from utils.config import SwaConfig


class Swa:
    """Averages `model`'s weights over the epochs `epochs - cfg.epochs + 1 .. epochs` (equal weights)."""

    def __init__(self, cfg: SwaConfig, model: nn.Module) -> None:
        self.cfg = cfg
        self.swa = AveragedModel(model)

    def first_epoch(self, epochs: int) -> int:
        """The first epoch (1-based) whose weights enter the average."""
        return max(1, epochs - self.cfg.epochs + 1)

    def update(self, model: nn.Module, *, epoch: int, epochs: int) -> None:
        """Add the weights at the end of `epoch` if it is one of the averaged epochs."""
        if epoch >= self.first_epoch(epochs):
            self.swa.update_parameters(model)

    @property
    def count(self) -> int:
        """How many epochs are in the average."""
        return int(self.swa.n_averaged.item())

    @property
    def module(self) -> nn.Module:
        return self.swa.module

    def finish(self, loader: Iterable[Any], device: torch.device) -> nn.Module:
        """Recompute the BatchNorm statistics of the averaged weights over `loader` (its batches' first
        element is the input); returns the averaged network."""
        if self.cfg.bn_update:
            update_bn(loader, self.swa.module, device=device)
        return self.swa.module

    def state_dict(self) -> dict[str, Any]:
        return self.swa.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.swa.load_state_dict(state)
