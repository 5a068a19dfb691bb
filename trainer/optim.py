"""Optimizer (with per-part learning rates) and LR scheduler from timm's factories."""
from __future__ import annotations

from typing import Any, Optional

from timm.optim import create_optimizer_v2
from timm.optim._param_groups import param_groups_layer_decay, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn
from torch.optim import Optimizer

from utils.config import OptimizerConfig, SchedulerConfig


def param_groups(cfg: OptimizerConfig, model: nn.Module) -> list[dict[str, Any]]:
    """Backbone groups (layer-wise decay if `cfg.layer_decay`, times `cfg.backbone_lr_scale`) and head
    groups; no weight decay on biases and norms. timm's schedulers honour each group's `lr_scale`."""
    if cfg.layer_decay is not None:
        backbone = param_groups_layer_decay(model.backbone, cfg.weight_decay, layer_decay=cfg.layer_decay)
    else:
        backbone = param_groups_weight_decay(model.backbone, cfg.weight_decay)
    for group in backbone:
        group["lr_scale"] = group.get("lr_scale", 1.0) * cfg.backbone_lr_scale
    return backbone + param_groups_weight_decay(model.head, cfg.weight_decay)


def build_optimizer(cfg: OptimizerConfig, model: nn.Module) -> Optimizer:
    """timm optimizer by name over `param_groups`. Build before freezing so a frozen backbone's
    parameters are in it from the start (they have no grads until melted)."""
    groups = param_groups(cfg, model)
    optimizer = create_optimizer_v2(groups, opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    momentum=cfg.momentum)
    for group in optimizer.param_groups:  # schedulers scale `initial_lr` by `lr_scale` themselves
        group["initial_lr"], group["lr"] = cfg.lr, cfg.lr * group.get("lr_scale", 1.0)
    return optimizer


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
