"""The models a run makes after its last epoch from the weights it kept: `swa.pth` (the mean of the last epochs,
`trainer/swa.py`) and `soup.pth` (the greedy soup of the best epochs, `trainer/soup.py`). Each is evaluated on
validation, saved like `best.pth` (a checkpoint for inference) and reported in one log line."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

from torch import nn

from trainer.checkpoint import for_inference, save_checkpoint

LOG = logging.getLogger(__name__)


def save_final(trainer: Any, net: nn.Module, path: Optional[Path]) -> None:
    """`net`'s weights as an inference checkpoint of the run at `path` (rank 0 only)."""
    if trainer.dist.is_main and trainer.run_dir is not None:
        save_checkpoint({**for_inference(trainer.state_dict()), "model": net.state_dict(), "ema": None}, path)


def finish_swa(trainer: Any) -> None:
    """BatchNorm statistics of the averaged weights, their validation metrics, and `swa.pth` (`trainer`: the
    `trainer.trainer.Trainer` that calls it; typed `Any` so that this module does not import it back)."""
    swa, cfg = trainer.swa, trainer.cfg
    if swa.count == 0:
        LOG.warning("swa: the run stopped at epoch %d, before its first averaged epoch %d; no swa.pth",
                    trainer.epoch, swa.first_epoch(cfg.epochs))
        return
    with trainer.autocast(trainer.amp_dtype):  # the BatchNorm pass is training: the training step's precision
        net = swa.finish(trainer.train_loader, trainer.device)
    if trainer.has_val:
        trainer.final_results["swa"] = trainer.evaluate(trainer.val_loader, "swa_val", net)
        trainer.swa_metrics = trainer.final_results["swa"].metrics
    save_final(trainer, net, trainer.run_dir.swa if trainer.run_dir is not None else None)
    first, monitor = swa.first_epoch(cfg.epochs), trainer.monitor
    score = (f"val macro-F1 {trainer.swa_metrics['swa_val_f1']:.4f} (best epoch {monitor.best_epoch}: "
             f"{monitor.best:.4f})" if trainer.swa_metrics else "no validation set")
    LOG.info("swa: the weights of epochs %d-%d averaged%s; %s", first, first + swa.count - 1,
             ", BatchNorm recomputed" if swa.cfg.bn_update else "", score)


def finish_soup(trainer: Any) -> None:
    """The greedy soup of the kept epochs, its validation metrics and `soup.pth`."""
    soup = trainer.soup
    if not trainer.has_val or not soup.scores:
        LOG.warning("soup: no validated epoch to make it from; no soup.pth")
        return
    key = "soup_" + trainer.monitor.metric.removeprefix("ema_")

    def score(net: nn.Module) -> float:
        return trainer.evaluate(trainer.val_loader, "soup_val", net).metrics[key]
    with trainer.autocast(trainer.amp_dtype):  # BatchNorm passes at the training step's precision (validation
        net, ingredients, value = soup.cook(trainer.model, score, trainer.train_loader, trainer.device)  # sets its own)
    trainer.final_results["soup"] = trainer.evaluate(trainer.val_loader, "soup_val", net)
    trainer.soup_metrics = {**trainer.final_results["soup"].metrics, "soup_epochs": ingredients}
    save_final(trainer, net, trainer.run_dir.soup if trainer.run_dir is not None else None)
    LOG.info(soup.describe(ingredients, value, key, soup.scores[soup.ranked()[0]]))
