"""Optimizer (with per-part learning rates) and LR scheduler from timm's factories."""
from __future__ import annotations

from typing import Any, Optional

from timm.optim import create_optimizer_v2
from timm.optim._param_groups import param_groups_layer_decay, param_groups_weight_decay
from timm.scheduler import create_scheduler_v2
from timm.scheduler.scheduler import Scheduler
from torch import nn
from torch.optim import Optimizer

from trainer.plateau import PlateauScheduler
from utils.config import OptimizerConfig, SchedulerConfig


def no_weight_decay_names(module: nn.Module) -> set[str]:
    """Parameter names (or patterns) the module exempts from weight decay (timm's `no_weight_decay()`)."""
    return set(getattr(module, "no_weight_decay", lambda: ())())


def param_groups(cfg: OptimizerConfig, model: nn.Module) -> list[dict[str, Any]]:
    """Backbone groups (layer-wise decay if `cfg.layer_decay`, times `cfg.backbone_lr_scale`) and head
    groups; no weight decay on biases, norms and what the backbone lists in `no_weight_decay()` (position
    embeddings, Swin's relative position bias tables): timm's rule. Schedulers honour `lr_scale`."""
    no_decay = no_weight_decay_names(model.backbone)
    if cfg.layer_decay is not None:
        backbone = param_groups_layer_decay(model.backbone, cfg.weight_decay, no_weight_decay_list=no_decay,
                                            layer_decay=cfg.layer_decay)
    else:
        backbone = param_groups_weight_decay(model.backbone, cfg.weight_decay, no_weight_decay_list=no_decay)
    for group in backbone:
        group["lr_scale"] = group.get("lr_scale", 1.0) * cfg.backbone_lr_scale
        group["part"] = "backbone"
    head = param_groups_weight_decay(model.head, cfg.weight_decay)
    for group in head:
        group["part"] = "head"
    return backbone + head


def part_lrs(optimizer: Optimizer) -> dict[str, float]:
    """The current learning rate of the head (`lr_head`) and of the backbone's fastest group
    (`lr_backbone`; with layer decay, its top layers)."""
    out: dict[str, float] = {}
    for group in optimizer.param_groups:
        key = f"lr_{group.get('part', 'head')}"
        out[key] = max(out.get(key, 0.0), group["lr"])
    return out


def build_optimizer(cfg: OptimizerConfig, model: nn.Module) -> Optimizer:
    """timm optimizer by name over `param_groups`. Build before freezing so a frozen backbone's
    parameters are in it from the start (they have no grads until unfrozen)."""
    groups = param_groups(cfg, model)
    optimizer = create_optimizer_v2(groups, opt=cfg.name, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                    momentum=cfg.momentum)
    for group in optimizer.param_groups:  # schedulers scale `initial_lr` by `lr_scale` themselves
        group["initial_lr"], group["lr"] = cfg.lr, cfg.lr * group.get("lr_scale", 1.0)
    return optimizer


def build_scheduler(
    cfg: SchedulerConfig, optimizer: Optimizer, epochs: int, updates_per_epoch: int, monitor_mode: str = "max"
) -> Optional[Scheduler | PlateauScheduler]:
    """timm scheduler by name, stepped per update; `plateau` is torch's ReduceLROnPlateau (see
    `trainer.plateau`), stepped per epoch on the monitored metric."""
    if cfg.name == "none":
        return None
    if cfg.name == "plateau":
        return PlateauScheduler(optimizer, mode=monitor_mode, patience=cfg.patience, factor=cfg.decay_rate,
                                min_lr=cfg.min_lr, warmup_epochs=cfg.warmup_epochs, warmup_lr=cfg.warmup_lr)
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
        step_on_epochs=False,
        updates_per_epoch=max(1, updates_per_epoch),
    )
    return scheduler
