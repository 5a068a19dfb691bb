"""The Trainer: one epoch of training, one of evaluation, checkpoints, the backbone freeze, early stopping."""
from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.optim import Optimizer
from torch.utils.data import DataLoader
from tqdm import tqdm

from trainer.accumulator import EpochAccumulator
from trainer.age_fit import bounds_fitter, bounds_metrics, emit_bins, loss_targets
from trainer.checkpoint import for_inference, save_checkpoint
from trainer.epoch_clock import EpochClock, LoaderClock
from trainer.final_models import finish_soup, finish_swa
from trainer.freeze import FreezeSchedule
from trainer.monitor import Monitor
from trainer.optim import part_lrs
from trainer.plateau import PlateauScheduler
from trainer.soup import Soup
from trainer.swa import Swa
from utils.config import TrainerConfig
from utils.device import amp_dtype, dtype_name
from utils.distributed import DistInfo, broadcast_buffers
from utils.errors import UserError
from utils.labels import NUM_CLASSES
from utils.logger import RunLogger
from utils.run_dir import RunDir, run_finished
from utils.seed import rng_state, set_rng_state

LOG = logging.getLogger(__name__)
POSTFIX_EVERY = 20  # steps between progress-bar loss updates (each one syncs with the device)
PROGRESS_SECONDS = 60.0  # without a terminal (nohup, a log file, a scheduler): a progress line this often




class NonFiniteLoss(UserError):
    """The loss became NaN/Inf; the last good checkpoint is kept."""


class Interrupted(Exception):
    """Training stopped on request (signal) between two steps."""


class StopRun(Exception):
    """Raised by an epoch callback to end a run early; `summary.json` records `status`."""

    status = "stopped"


def set_loader_epoch(loader: DataLoader, epoch: int) -> None:
    """Tell the sampler and the dataset which epoch starts (shuffle order, augmentation seeds)."""
    for obj in (loader.sampler, loader.dataset):
        if hasattr(obj, "set_epoch"):
            obj.set_epoch(epoch)


@dataclass
class EvalResult:
    """One evaluation over a whole loader: its metrics and the per-image targets and probabilities."""

    metrics: dict[str, float]
    y_true: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    paths: list[str] = field(repr=False)


# called after each epoch's log line: (trainer, epoch, metrics, monitored evaluation or None, improved)
EpochCallback = Callable[["Trainer", int, dict, Optional[EvalResult], bool], None]


class Trainer:
    """Runs `cfg.epochs` epochs; `metadata` (resolved config, class names) goes into checkpoints.

    Collaborators are given at construction: `mixer` (batch mixing), `run_dir` (where checkpoints go;
    None writes none), `run_logger` (TensorBoard/CSV/summary; None on DDP ranks other than 0),
    `stop_request` (truthy when a signal asks the run to stop) and `callbacks` (after each epoch).
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        criterion: nn.Module,
        optimizer: Optimizer,
        scheduler: Any,
        train_loader: DataLoader,
        val_loader: Optional[DataLoader],
        cfg: TrainerConfig,
        device: torch.device,
        metadata: dict[str, Any],
        dist_info: DistInfo = DistInfo(),
        mixer: Optional[Callable] = None,
        age_bins: Optional[torch.Tensor] = None,
        run_dir: Optional[RunDir] = None,
        run_logger: Optional[RunLogger] = None,
        stop_request: Any = None,
        callbacks: Sequence[EpochCallback] = (),
    ) -> None:
        self.memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format
        self.model, self.criterion = model.to(device, memory_format=self.memory_format), criterion
        self.dist = dist_info
        self.optimizer, self.scheduler = optimizer, scheduler
        self.train_loader, self.val_loader = train_loader, val_loader
        self.cfg, self.device = cfg, device
        self.run_dir = RunDir(run_dir) if run_dir is not None else None
        self.run_logger, self.stop_request, self.callbacks = run_logger, stop_request, list(callbacks)
        self.metadata = metadata
        self.mixer = mixer  # (images, targets) -> (images, soft targets)
        self.age_bins = age_bins  # model.age: ordinal: the age bin of each training index
        emit_bins(self.model)  # before the EMA copies it
        self.amp_dtype = amp_dtype(cfg.amp, device, training=True)  # the training step's autocast
        self.eval_dtype = amp_dtype(cfg.amp, device)  # validation's: fp32 on the CPU, as inference predicts
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp_dtype == torch.float16)
        self.monitor = Monitor(cfg.monitor)
        self.freeze = FreezeSchedule(cfg.freeze)
        self.freeze.apply(self.model)
        self.net = self._wrap()
        self.ema = ModelEmaV3(self.model, decay=cfg.ema.decay, use_warmup=cfg.ema.warmup) if cfg.ema else None
        self.swa = Swa(cfg.swa, self.model) if cfg.swa else None
        self.swa_metrics: dict[str, float] = {}
        self.soup = Soup(cfg.soup, self.monitor.mode) if cfg.soup else None
        self.soup_metrics: dict[str, Any] = {}
        self.final_results: dict[str, EvalResult] = {}  # "swa"/"soup": the averaged model's validation
        self.epoch = 0  # epochs completed
        self.global_step = 0
        self.stopped_early = False
        self.bad_steps = 0
        self.clock = EpochClock()  # the sections of the last epoch (trainer.epoch_clock)

    # ----- state -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-for-bit, plus what inference needs."""
        return {
            **self.metadata,
            "epoch": self.epoch,
            "global_step": self.global_step,
            "stopped_early": self.stopped_early,
            "bad_steps": self.bad_steps,
            "model": self.model.state_dict(),
            "ema": self.ema.module.state_dict() if self.ema is not None else None,
            "swa": self.swa.state_dict() if self.swa is not None else None,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "monitor": self.monitor.state_dict(),
            "freeze": self.freeze.state_dict(),
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore from a checkpoint made by `state_dict`."""
        self.model.load_state_dict(state["model"])
        if self.ema is not None and state.get("ema") is not None:
            self.ema.module.load_state_dict(state["ema"])
        if self.swa is not None and state.get("swa") is not None:
            self.swa.load_state_dict(state["swa"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.monitor.load_state_dict(state["monitor"])
        self.freeze.load_state_dict(state["freeze"] if "freeze" in state else state["melting"])  # "melting" before 0.4
        self.freeze.apply(self.model)
        self.net = self._wrap()
        self.epoch, self.global_step = state["epoch"], state["global_step"]
        self.stopped_early = state["stopped_early"]
        self.bad_steps = state.get("bad_steps", 0)
        if self.soup is not None:
            self.soup.since_epoch = self.epoch  # the kept weights of earlier epochs are not in any checkpoint
        self._restore_schedule(state.get("scheduler"))
        set_rng_state(state["rng"])

    def _restore_schedule(self, saved: Optional[dict[str, Any]]) -> None:
        """The plateau scheduler continues from its saved state. timm's schedules are functions of the
        update count, built for this config's `epochs`: the rate is recomputed at the current step, so
        extending a run (`--resume RUN trainer.epochs=N`) continues on the schedule of an N-epoch run."""
        if isinstance(self.scheduler, PlateauScheduler):
            if saved is not None and "plateau" in saved:
                self.scheduler.load_state_dict(saved)
            else:  # a checkpoint from timm's plateau scheduler: its patience restarts
                LOG.warning("scheduler.name=plateau: this checkpoint holds no plateau state; patience restarts")
        elif self.scheduler is not None:
            self.scheduler.step(self.epoch)
            self.scheduler.step_update(num_updates=self.global_step)

    @property
    def finished(self) -> bool:
        return run_finished(epoch=self.epoch, epochs=self.cfg.epochs, stopped_early=self.stopped_early)

    def _wrap(self) -> nn.Module:
        """The module the training step calls: DDP over the trainable parameters, optionally compiled.
        Rebuilt when unfreezing changes which parameters train (DDP fixes that set when wrapping)."""
        net: nn.Module = self.model
        if self.dist.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            net = nn.parallel.DistributedDataParallel(net, device_ids=ids)
        return torch.compile(net) if self.cfg.compile else net

    def to_device(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A batch on the Trainer's device, in its memory format (channels_last when configured)."""
        images = images.to(self.device, non_blocking=True, memory_format=self.memory_format)
        return images, targets.to(self.device, non_blocking=True)

    # ----- loops -------------------------------------------------------------------------
    def autocast(self, dtype: Optional[torch.dtype]):
        """Autocast to `dtype` on this trainer's device (None: full precision)."""
        return torch.autocast(self.device.type, dtype=dtype, enabled=dtype is not None)

    def train_step(self, images: torch.Tensor, targets: torch.Tensor, step: int, update: bool = True,
                   sample_weight: Optional[torch.Tensor] = None, group_size: Optional[int] = None) -> Optional[tuple]:
        """Forward and backward on one batch already on the device, then (when `update`) clip and
        apply the accumulated gradients; returns (loss, logits), or None when a non-finite loss was
        skipped (`trainer.max_bad_steps`). `group_size`: batches in this update (default
        `accumulate_steps`; fewer for the last group of an epoch), each weighing 1/group_size."""
        no_sync = self.dist.enabled and not update and hasattr(self.net, "no_sync")
        # DDP all-reduces once per update; its forward decides whether the backward syncs, so both go inside
        with self.net.no_sync() if no_sync else contextlib.nullcontext():
            with self.autocast(self.amp_dtype):
                logits = self.net(images)
                loss = (self.criterion(logits, targets) if sample_weight is None
                        else self.criterion(logits, targets, sample_weight))
            if self.cfg.max_bad_steps and not self._finite_everywhere(loss):
                self._skip_bad_step(step, loss)
                return None
            self.scaler.scale(loss / (group_size or self.cfg.accumulate_steps)).backward()
        if not update:
            return loss, logits
        if self.cfg.grad_clip:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.global_step += 1
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)
        if self.scheduler is not None:
            self.scheduler.step_update(num_updates=self.global_step)
        return loss, logits

    def train_epoch(self) -> dict[str, float]:
        """One pass over the training loader; returns whole-epoch train metrics."""
        self.freeze.set_train_mode(self.model)
        set_loader_epoch(self.train_loader, self.epoch)
        acc = EpochAccumulator()
        first_bad = torch.full((), -1, dtype=torch.long, device=self.device)  # no per-step host sync
        desc = f"epoch {self.epoch + 1}/{self.cfg.epochs} train"
        batches = LoaderClock(self.train_loader)
        bar = tqdm(batches, desc=desc, leave=False, disable=None)
        self.optimizer.zero_grad(set_to_none=True)
        n_batches, accum = len(self.train_loader), self.cfg.accumulate_steps
        weights = getattr(self.train_loader.dataset, "sample_weights", None)  # pseudo-labels weigh less
        last_line = time.perf_counter()
        for step, (images, targets, indices) in enumerate(bar):
            if self.stop_request:
                raise Interrupted(f"epoch {self.epoch + 1} step {step}")
            images, targets = self.to_device(images, targets)
            update = (step + 1) % accum == 0 or step + 1 == n_batches
            group_size = accum if step < n_batches - n_batches % accum else n_batches % accum  # timm's rule
            loss_target = loss_targets(targets, indices, self.age_bins)
            images, loss_target = self.mixer(images, loss_target) if self.mixer is not None else (images, loss_target)
            sample_weight = weights[indices].to(self.device, non_blocking=True) if weights is not None else None
            out = self.train_step(images, loss_target, step, update=update, sample_weight=sample_weight,
                                  group_size=group_size)
            if out is None:
                continue
            loss, logits = out
            acc.update(loss, logits[:, :NUM_CLASSES], targets)  # an ordinal head's age bins follow the classes
            first_bad = torch.where((first_bad < 0) & ~torch.isfinite(loss.detach()), step, first_bad)
            if step % POSTFIX_EVERY == 0:
                self._check_finite(first_bad)
                bar.set_postfix(loss=f"{loss.item():.4f}")
            if bar.disable and time.perf_counter() - last_line >= PROGRESS_SECONDS:  # no terminal: a log line
                last_line = time.perf_counter()
                LOG.info("%s: step %d/%d (%.0f%%), loss %.4f", desc, step + 1, n_batches,
                         100 * (step + 1) / n_batches, loss.item())
        self._check_finite(first_bad)
        self.clock.add("loader_wait", batches.wait)
        return acc.compute("train", info=self.dist, tasks=True)

    def _check_finite(self, first_bad: torch.Tensor) -> None:
        step = int(first_bad.item())
        if step >= 0:
            raise NonFiniteLoss(f"loss became NaN/Inf at epoch {self.epoch + 1} step {step}; stopped, "
                                f"{self._last_good()} (lower optimizer.lr, "
                                f"or allow a few bad steps with trainer.max_bad_steps)")

    def _last_good(self) -> str:
        """Where the last good checkpoint is, for error messages (only files that exist)."""
        if self.run_dir is not None and self.run_dir.last.is_file():
            return f"{self.run_dir.last} is the last good checkpoint"
        return "no checkpoint was written yet"

    def _finite_everywhere(self, loss: torch.Tensor) -> bool:
        """Whether the loss is finite on every rank: under DDP the ranks agree (one all-reduce of a flag), so a
        bad batch on one rank makes all of them skip the step and none waits alone in the backward's sync."""
        finite = torch.isfinite(loss.detach()).to(torch.float32)
        if self.dist.enabled:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def _skip_bad_step(self, step: int, loss: torch.Tensor) -> None:
        self.bad_steps += 1
        if self.bad_steps > self.cfg.max_bad_steps:
            raise NonFiniteLoss(f"loss is {loss.item()} at epoch {self.epoch + 1} step {step}: more than "
                                f"trainer.max_bad_steps={self.cfg.max_bad_steps} bad steps; stopped, "
                                f"{self._last_good()}")
        where = "" if not torch.isfinite(loss) else " here, non-finite on another rank"
        LOG.warning("loss is %s%s at epoch %d step %d: step skipped (%d/%d bad steps allowed)",
                    loss.item(), where, self.epoch + 1, step, self.bad_steps, self.cfg.max_bad_steps)

    @torch.no_grad()
    def evaluate(self, loader: DataLoader, prefix: str = "val", model: Optional[nn.Module] = None) -> EvalResult:
        """Loss, accuracy and macro-F1 over the whole of `loader` (with `model`, default the raw
        weights), with the per-image targets and probabilities (gathered from every DDP rank)."""
        model = model if model is not None else self.model
        model.eval()
        broadcast_buffers(model, self.dist)
        set_loader_epoch(loader, self.epoch)
        acc = EpochAccumulator(keep_logits=True)
        desc = f"epoch {self.epoch + 1}/{self.cfg.epochs} {prefix}"
        for images, targets, indices in tqdm(loader, desc=desc, leave=False, disable=None):
            images, targets = self.to_device(images, targets)
            with self.autocast(self.eval_dtype):
                logits = model(images)
            acc.update(torch.zeros((), device=self.device), logits, targets, indices)

        def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
            return self.criterion(logits.to(self.device), targets.to(self.device))

        metrics = acc.compute(prefix, detail=True, loss_fn=loss_fn, info=self.dist, outputs_fn=bounds_fitter(model))
        metrics.update(bounds_metrics(model, prefix))
        return EvalResult(metrics, acc.y_true, acc.probs, list(loader.dataset.paths))

    def evaluate_monitored(self) -> tuple[dict[str, float], EvalResult]:
        """Validation metrics of the raw (and EMA) weights, and the evaluation the monitor judges."""
        raw = self.evaluate(self.val_loader)
        if self.ema is None:
            return raw.metrics, raw
        ema = self.evaluate(self.val_loader, "ema_val", self.ema.module)
        return {**raw.metrics, **ema.metrics}, ema if self.monitor.spec.on_ema else raw

    @property
    def has_val(self) -> bool:
        return self.val_loader is not None and len(self.val_loader.dataset) > 0

    def run_epoch(self) -> dict[str, float]:
        """Train and evaluate one epoch, update monitor/scheduler/freeze, save checkpoints."""
        start, clock = time.perf_counter(), EpochClock()
        self.clock = clock
        lrs = part_lrs(self.optimizer)  # the rates this epoch trains with
        with clock.section("train"):
            metrics = self.train_epoch()
        judged: Optional[EvalResult] = None
        if self.has_val:
            with clock.section("val"):
                val_metrics, judged = self.evaluate_monitored()
            metrics.update(val_metrics)
        metrics.update(lrs)
        metrics.update(train_time=clock.seconds["train"], loader_wait=clock.seconds["loader_wait"],
                       epoch_time=time.perf_counter() - start)
        self.epoch += 1
        if self.swa is not None:
            self.swa.update(self.model, epoch=self.epoch, epochs=self.cfg.epochs)
        improved = self.monitor.update(self.epoch, metrics) if self.has_val else True
        if self.soup is not None and self.has_val:
            self.soup.offer(self.epoch, metrics[self.monitor.metric],
                            self.ema.module if self.monitor.spec.on_ema else self.model)
        if self.scheduler is not None:
            self.scheduler.step(self.epoch, metrics.get(self.monitor.metric))
        if self.freeze.step(self.epoch, self.monitor.bad_epochs, self.model):
            self.monitor.reset_patience()
            self.net = self._wrap()
        patience = self.cfg.early_stop_patience
        if self.has_val and patience and self.monitor.bad_epochs >= patience:
            self.stopped_early = True
            LOG.info("early stopping: %s has not improved for %d epochs", self.monitor.metric, patience)
        with clock.section("log"):
            if self.run_logger is not None:  # before the checkpoint: a kill in between only repeats this epoch
                self.run_logger.log_epoch(self.epoch, metrics, self.summary())
            for callback in self.callbacks:
                callback(self, self.epoch, metrics, judged, improved)
        with clock.section("checkpoint"):
            self._save(improved)
        shown = " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if "_f1_c" not in k)  # per-class F1: TB/csv
        LOG.info("epoch %d/%d %s%s", self.epoch, self.cfg.epochs, shown, " *best*" if improved else "")
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train until `cfg.epochs` or early stopping; returns a short summary."""
        if not self.has_val:
            LOG.warning("no validation set: best.pth follows the last epoch; patience rules are off")
        while not self.finished:
            self.run_epoch()
        if self.swa is not None:
            self.finish_swa()
        if self.soup is not None:
            self.finish_soup()
        return self.summary()

    def finish_soup(self) -> None:
        finish_soup(self)

    def finish_swa(self) -> None:
        finish_swa(self)

    def summary(self) -> dict[str, Any]:
        """Where the run stands: epochs done, best score and epoch, early stop."""
        return {"epochs": self.epoch, "max_epochs": self.cfg.epochs, "metric": self.monitor.metric,
                "best": self.monitor.best, "best_epoch": self.monitor.best_epoch,
                "stopped_early": self.stopped_early, "device": str(self.device), "amp": dtype_name(self.amp_dtype),
                **({"swa_val_f1": self.swa_metrics["swa_val_f1"]} if "swa_val_f1" in self.swa_metrics else {}),
                **{k: self.soup_metrics[k] for k in ("soup_val_f1", "soup_epochs") if k in self.soup_metrics}}

    def _save(self, improved: bool) -> None:
        if not self.dist.is_main or self.run_dir is None:
            return
        state = self.state_dict()
        if improved:  # best before last: a crash in between leaves last.pth one epoch behind, never ahead
            save_checkpoint(for_inference(state), self.run_dir.best)
        save_checkpoint(state, self.run_dir.last)
