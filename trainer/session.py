"""One supervised training session: signals, OOM message and `summary.json` around `Trainer.fit`."""
from __future__ import annotations

import logging
import os
import socket
import sys
from typing import Optional, Sequence

import torch

from data_loader.labels import class_names
from trainer.trainer import Interrupted, Trainer
from trainer.visual_log import key_hparams, log_augmented_samples
from utils.config import Config
from utils.errors import UserError
from utils.logger import RunLogger
from utils.signals import graceful_stop

LOG = logging.getLogger(__name__)


def run_info(config: Config, overrides: Sequence[str]) -> dict:
    """What `summary.json` says about a run besides its scores."""
    return {"name": config.name, "backbone": config.model.backbone, "head": config.model.head,
            "overrides": list(overrides), "class_names": class_names(config.data.age_bounds),
            "pid": os.getpid(), "host": socket.gethostname()}


def supervised_fit(trainer: Trainer, run_logger: Optional[RunLogger]) -> dict:
    """`trainer.fit` with graceful SIGINT/SIGTERM, a clear CUDA OOM message and `summary.json`
    (`run_logger` is None on DDP ranks other than 0)."""
    if run_logger is None:
        return trainer.fit(None)
    status = "crashed"
    run_logger.write_summary("running", trainer.summary())
    if trainer.epoch == 0:
        aug = trainer.metadata["config"]["augment"]
        log_augmented_samples(run_logger, trainer.train_loader.dataset, aug["mean"], aug["std"])
    try:
        with graceful_stop() as stop:
            trainer.stop_request = stop
            try:
                summary = trainer.fit(run_logger)
            except Interrupted as where:
                status = "interrupted"
                LOG.warning("interrupted at %s; %s/last.pth holds epoch %d: continue with --resume %s",
                            where, trainer.run_dir, trainer.epoch, trainer.run_dir)
                sys.exit(stop.exit_code)
            except torch.cuda.OutOfMemoryError:
                raise UserError(
                    f"out of GPU memory at data.batch_size={trainer.train_loader.batch_size}: lower "
                    "data.batch_size, set trainer.amp=bf16 (or fp16), or reduce augment.image_size"
                ) from None
        status = "stopped early" if summary["stopped_early"] else "finished"
        return summary
    finally:
        run_logger.write_summary(status, trainer.summary())
        if trainer.has_val and trainer.monitor.best_epoch > 0:
            best = {trainer.monitor.metric: trainer.monitor.best}
            run_logger.log_hparams(key_hparams(trainer.metadata["config"]), best)
        run_logger.close()
