"""One supervised training session: signals, OOM message and `summary.json` around `Trainer.fit`."""
from __future__ import annotations

import logging
import sys
from typing import Sequence

import torch

from trainer.trainer import Interrupted, Trainer
from utils.config import Config
from utils.errors import UserError
from utils.logger import RunLogger
from utils.signals import graceful_stop

LOG = logging.getLogger(__name__)


def run_info(config: Config, overrides: Sequence[str]) -> dict:
    """What `summary.json` says about a run besides its scores."""
    return {"name": config.name, "backbone": config.model.backbone, "head": config.model.head,
            "overrides": list(overrides)}


def supervised_fit(trainer: Trainer, run_logger: RunLogger) -> dict:
    """`trainer.fit` with graceful SIGINT/SIGTERM, a clear CUDA OOM message and `summary.json`."""
    status = "crashed"
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
        run_logger.close()
