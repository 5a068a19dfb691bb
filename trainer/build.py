"""Wire config sections to the factories: datasets, loaders, model, loss, optimizer, Trainer."""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Optional

import torch
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader

from data_loader.cache import build_cache
from data_loader.datasets import build_dataset, with_pseudo_labels
from data_loader.eval_table import read_pseudo_labels
from data_loader.loaders import build_loader
from data_loader.mixing import build_mixer
from data_loader.pipeline import build_image_pipeline
from model.age import AGE_BINS, training_bins
from model.classifier import build_model
from model.loss import build_loss
from trainer.optim import build_optimizer, build_scheduler
from trainer.trainer import Trainer
from utils.config import Config, TrainerConfig
from utils.device import resolve_device
from utils.distributed import DistInfo, init_distributed
from utils.errors import ConfigError, UserError, first_line
from utils.labels import NUM_CLASSES, class_names

LOG = logging.getLogger(__name__)


@dataclass
class TrainerParts:
    """Everything a Trainer is made of, built (and so validated) before any file is written."""

    model: nn.Module
    criterion: nn.Module
    optimizer: Optimizer
    scheduler: Any
    train_loader: DataLoader
    val_loader: Optional[DataLoader]
    cfg: TrainerConfig
    device: torch.device
    metadata: dict[str, Any]
    dist_info: DistInfo
    mixer: Optional[Callable]
    age_bins: Optional[torch.Tensor] = None

    def trainer(self, **collaborators: Any) -> Trainer:
        """The Trainer over these parts; `collaborators` are `run_dir`, `run_logger`, `stop_request`,
        `callbacks` (see `Trainer`)."""
        return Trainer(**{f: getattr(self, f) for f in self.__dataclass_fields__}, **collaborators)

    def split_summary(self) -> str:
        """'N train / M val images' for the log."""
        n_val = len(self.val_loader.dataset) if self.val_loader is not None else 0
        return f"{len(self.train_loader.dataset)} train / {n_val} val images"


def build_loaders(config: Config, dist_info: DistInfo, pin_memory: bool) -> tuple[DataLoader, Optional[DataLoader]]:
    """(train, val) loaders of the configured split; val is None when the split leaves none."""
    data = config.data
    pipeline = build_image_pipeline(config, [data.train_dir, data.eval_dir if data.pseudo_labels is not None else None],
                              dist_info=dist_info)
    dataset = build_dataset(data, draft_size=pipeline.draft_size, seed=config.seed, crop=pipeline.crop)
    dataset.cache = build_cache(data.cache, dataset.paths, pipeline.cache_hw, data.cache_dir, dist_info,
                                decode=pipeline.crop, tag=pipeline.cache_tag())
    train_set, val_set = dataset.split(data.val_ratio, config.split_seed, pipeline.train_transform,
                                       pipeline.eval_transform, n_folds=data.n_folds, fold=data.fold)
    common = {"batch_size": data.batch_size, "seed": config.seed, "num_workers": data.num_workers,
              "pin_memory": pin_memory, "rank": dist_info.rank, "world_size": dist_info.world_size}
    if data.pseudo_labels is not None:
        train_set = add_pseudo_labels(train_set, val_set, data)
    balanced = train_set.labels.tolist() if data.sampler == "balanced" else None
    train_loader = build_loader(train_set, train=True, balanced_labels=balanced, **common)
    val_loader = build_loader(val_set, train=False, **common) if len(val_set) else None
    probe_pipelines(train_set, val_set)
    return train_loader, val_loader


def add_pseudo_labels(train_set: Any, val_set: Any, data: Any) -> Any:
    """The training set plus `data.pseudo_labels` (eval images only: never validation, never OOF)."""
    if data.eval_dir is None:
        raise ConfigError("data.pseudo_labels needs data.eval_dir (the images it labels)")
    pseudo = read_pseudo_labels(data.pseudo_labels, data.eval_dir)
    clash = set(pseudo["path"]) & (set(train_set.paths) | set(val_set.paths))
    if clash:
        raise ConfigError(f"data.pseudo_labels: {sorted(clash)[0]} is a training image (pseudo-labels must be "
                          "eval images)")
    LOG.info("pseudo-labels: %d eval images added to training (weight %.2f), none to validation",
             len(pseudo), data.pseudo_weight)
    return with_pseudo_labels(train_set, pseudo, data.pseudo_weight)


def probe_pipelines(train_set: Any, val_set: Any) -> None:
    """Run each augmentation pipeline on one real photo, so that a step which fails only when applied
    is a one-line error before any run directory exists."""
    for key, dataset in (("augment.train", train_set), ("augment.eval", val_set)):
        if len(dataset):
            try:
                dataset[0]
            except UserError:
                raise
            except Exception as err:  # noqa: BLE001 - any failure of a user-configured step
                raise ConfigError(f"{key}: fails on {dataset.paths[0]} ({type(err).__name__}: "
                                  f"{first_line(err)[:160] if str(err) else ''})") from None


def probe_model(model: nn.Module, config: Config) -> None:
    """One forward and backward pass of a batch of the configured input size, in training mode, before
    anything is written: an input a backbone cannot take (Swin at another size than it was built for) is
    one line now, not a traceback mid-run. Weights, buffers, gradients and RNG are left as they were."""
    height, width = config.augment.image_size
    batch = min(config.data.batch_size, 2)  # a batch of one is what BatchNorm cannot train on
    saved = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with torch.random.fork_rng(devices=[]):
        model.train()
        try:
            model(torch.randn(batch, 3, height, width)).float().sum().backward()
        except (RuntimeError, AssertionError, ValueError) as err:
            if batch == 1 and "more than 1 value per channel" in str(err):
                raise ConfigError(f"data.batch_size=1: model.backbone {config.model.backbone} has BatchNorm, which "
                                  "cannot train on one image per batch; use data.batch_size >= 2") from None
            raise ConfigError(f"augment.image_size {[height, width]}: model.backbone {config.model.backbone} cannot "
                              f"take it ({first_line(err)[:160]})") from None
        finally:
            model.zero_grad(set_to_none=True)
            model.load_state_dict(saved)


def build_parts(config: Config) -> TrainerParts:
    """All parts of a Trainer for `config`; under torchrun, joins the process group and shards the
    data across ranks."""
    dist_info, device = init_distributed(resolve_device(config.trainer.device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = config.trainer.cudnn_benchmark and not config.trainer.deterministic
    train_loader, val_loader = build_loaders(config, dist_info, pin_memory=device.type == "cuda")
    model = build_model(config.model, age_bounds=config.data.age_bounds)
    probe_model(model, config)
    if config.trainer.sync_bn and dist_info.enabled:
        if device.type == "cuda":
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        else:
            LOG.warning("trainer.sync_bn ignored on CPU (SyncBatchNorm runs on CUDA only)")
    optimizer = build_optimizer(config.optimizer, model)
    scheduler = build_scheduler(
        config.scheduler, optimizer, epochs=config.trainer.epochs,
        updates_per_epoch=math.ceil(len(train_loader) / config.trainer.accumulate_steps),
        monitor_mode=config.trainer.monitor.mode,
    )
    ordinal = config.model.age == "ordinal"
    train_set = train_loader.dataset
    criterion = build_loss(config.loss, train_set.labels.tolist(), multi_task=config.model.head == "multi",
                           ordinal_age=ordinal)
    age_bins = torch.as_tensor(training_bins(train_set.ages, train_set.labels)) if ordinal else None
    target_classes = NUM_CLASSES * AGE_BINS if ordinal else NUM_CLASSES  # joint (class, age bin) ids
    metadata: dict[str, Any] = {"config": config.to_dict(), "class_names": class_names()}  # validation labels
    return TrainerParts(model=model, criterion=criterion.to(device), optimizer=optimizer, scheduler=scheduler,
                        train_loader=train_loader, val_loader=val_loader, cfg=config.trainer, device=device,
                        metadata=metadata, dist_info=dist_info, age_bins=age_bins,
                        mixer=build_mixer(config.augment, num_classes=target_classes))


def build_trainer(config: Config, **collaborators: Any) -> Trainer:
    """A ready Trainer for `config` (see `TrainerParts.trainer` for the collaborators)."""
    return build_parts(config).trainer(**collaborators)

