"""`scheduler.name: plateau`: torch's ReduceLROnPlateau with a linear warmup, behind the interface
the Trainer steps timm's schedulers with, and with a complete `state_dict` (exact resume)."""
from __future__ import annotations

from typing import Any, Optional

from torch.optim import Optimizer
from torch.optim.lr_scheduler import ReduceLROnPlateau


class PlateauScheduler:
    """Warm up linearly from `warmup_lr` over `warmup_epochs`, then multiply every group's rate by
    `factor` when the monitored metric has not improved for `patience` epochs (not below `min_lr`)."""

    def __init__(self, optimizer: Optimizer, *, mode: str, patience: int, factor: float, min_lr: float,
                 warmup_epochs: int, warmup_lr: float) -> None:
        self.optimizer = optimizer
        self.base_lrs = [group["lr"] for group in optimizer.param_groups]
        self.warmup_epochs, self.warmup_lr = warmup_epochs, warmup_lr
        self.plateau = ReduceLROnPlateau(optimizer, mode=mode, factor=factor, patience=patience, min_lr=min_lr)
        self._set_warmup(0)

    def _set_warmup(self, epoch: int) -> None:
        if epoch >= self.warmup_epochs:
            return
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.warmup_lr + (base - self.warmup_lr) * epoch / self.warmup_epochs

    def step(self, epoch: int, metric: Optional[float] = None) -> None:
        """After epoch `epoch` (1-based count of epochs done): warm up, or judge `metric`."""
        if epoch < self.warmup_epochs:
            self._set_warmup(epoch)
        elif epoch == self.warmup_epochs and epoch > 0:
            for group, base in zip(self.optimizer.param_groups, self.base_lrs):
                group["lr"] = base
        elif metric is not None:
            self.plateau.step(metric)

    def step_update(self, num_updates: int) -> None:
        """Per-update hook of timm's schedulers: the plateau rule acts per epoch only."""

    def state_dict(self) -> dict[str, Any]:
        return {"plateau": self.plateau.state_dict(), "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.plateau.load_state_dict(state["plateau"])
        self.base_lrs = list(state["base_lrs"])
