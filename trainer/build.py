"""Wire config sections to the factories: datasets, loaders, model, loss, optimizer, Trainer."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from data_loader.cache import build_cache, cache_size
from data_loader.datasets import build_dataset
from data_loader.labels import class_names
from data_loader.loaders import build_loader
from data_loader.mixing import build_mixer
from data_loader.transforms import build_transforms
from model.classifier import build_model
from model.loss import build_loss
from trainer.optim import build_optimizer, build_scheduler
from trainer.trainer import Trainer
from utils.config import Config
from utils.device import resolve_device
from utils.distributed import init_distributed

LOG = logging.getLogger(__name__)


def draft_size(config: Config) -> Optional[tuple[int, int]]:
    """JPEG draft target (w, h) for `data.jpeg_draft`, from the resolved image size."""
    if not config.data.jpeg_draft or config.augment.image_size is None:
        return None
    height, width = config.augment.image_size
    return (width, height)


def build_trainer(config: Config, run_dir: Path) -> Trainer:
    """A ready Trainer for a resolved config (see `data_loader.transforms.resolve_augment`);
    under torchrun, joins the process group and shards the data across ranks."""
    dist_info, device = init_distributed(resolve_device(config.trainer.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.trainer.cudnn_benchmark and not config.trainer.deterministic
    train_tf, eval_tf = build_transforms(config.augment)
    dataset = build_dataset(config.data, draft_size(config), config.seed)
    cache_hw = cache_size(config.augment.image_size, config.data.jpeg_draft)
    dataset.cache = build_cache(config.data.cache, dataset.paths, cache_hw, config.data.cache_dir, dist_info)
    data = config.data
    train_set, val_set = dataset.split(data.val_ratio, config.seed, train_tf, eval_tf, data.n_folds, data.fold)
    pin = device.type == "cuda"
    shard = {"rank": dist_info.rank, "world_size": dist_info.world_size}
    balanced = train_set.labels.tolist() if data.sampler == "balanced" else None
    train_loader = build_loader(train_set, data.batch_size, True, config.seed, data.num_workers, pin, **shard,
                                balanced_labels=balanced)
    val_loader = None
    if len(val_set):
        val_loader = build_loader(val_set, data.batch_size, False, config.seed, data.num_workers, pin, **shard)
    model = build_model(config.model)
    if config.trainer.sync_bn and dist_info.enabled:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            LOG.warning("trainer.sync_bn ignored on CPU (SyncBatchNorm runs on CUDA only)")
    optimizer = build_optimizer(config.optimizer, model)
    scheduler = build_scheduler(
        config.scheduler, optimizer, config.trainer.epochs,
        math.ceil(len(train_loader) / config.trainer.accumulate_steps), config.trainer.monitor.split()[0]
    )
    metadata: dict[str, Any] = {"config": config.to_dict(), "class_names": class_names(config.data.age_bounds)}
    criterion = build_loss(config.loss, train_set.labels.tolist(), multi_task=config.model.head == "multi")
    trainer = Trainer(model, criterion.to(device), optimizer, scheduler, train_loader, val_loader,
                      config.trainer, device, run_dir, metadata, dist_info)
    trainer.mixer = build_mixer(config.augment)
    return trainer


def split_summary(trainer: Trainer) -> str:
    """'N train / M val images' for the log."""
    n_val = len(trainer.val_loader.dataset) if trainer.val_loader is not None else 0
    return f"{len(trainer.train_loader.dataset)} train / {n_val} val images"
