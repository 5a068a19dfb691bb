"""Optimizer and LR scheduler from timm's factories."""
from __future__ import annotations

from typing import Optional

from timm.optim import create_optimizer_v2
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn
from torch.optim import Optimizer

from utils.config import OptimizerConfig, SchedulerConfig


def build_optimizer(cfg: OptimizerConfig, model: nn.Module) -> Optimizer:
    """timm optimizer by name; no weight decay on biases and norms. Build before freezing so
    a frozen backbone's parameters are in it from the start (they have no grads until melted)."""
    return create_optimizer_v2(model, opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


def build_scheduler(
    cfg: SchedulerConfig, optimizer: Optimizer, epochs: int, updates_per_epoch: int, monitor_mode: str = "max"
) -> Optional[Scheduler]:
    """timm scheduler by name, stepped per update where it can be (all but plateau)."""
    if cfg.name == "none":
        return None
    per_epoch = cfg.name == "plateau"
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched=cfg.name,
        num_epochs=epochs,
        decay_epochs=cfg.decay_epochs,
        decay_milestones=[int(cfg.decay_epochs * k) for k in (1, 2, 3)],
        decay_rate=cfg.decay_rate,
        min_lr=cfg.min_lr,
        warmup_lr=cfg.warmup_lr,
        warmup_epochs=cfg.warmup_epochs,
        plateau_mode=monitor_mode,
        step_on_epochs=per_epoch,
        updates_per_epoch=max(1, updates_per_epoch),
    )
    return scheduler
