"""The life of one training run, written once for `train.py`, `--all-folds` and the tuner.

build the parts (validates config and data; nothing written yet) -> rank 0 creates the run directory
and every rank learns its path -> rank 0 saves the resolved config, opens `train.log`, the
`RunLogger` (TensorBoard, metrics.csv, summary.json) and W&B -> the Trainer is built with its real
collaborators -> fit under signal handling -> `summary.json` gets the final status -> files closed.
"""
from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import socket
import sys
from typing import Any, Iterator, Optional, Sequence

import torch

from trainer.build import TrainerParts, build_parts
from trainer.checkpoint import best_weights_key, load_checkpoint, reconcile
from trainer.epoch_clock import LoaderNote
from trainer.resume import Resume
from trainer.trainer import EpochCallback, EvalResult, Interrupted, StopRun, Trainer
from trainer.visual_log import BestEpochVisuals, hparam_value, key_hparams, log_augmented_samples
from utils.bootstrap import f1_half_width
from utils.config import Config, save_config
from utils.device import dtype_name
from utils.distributed import DistInfo, broadcast_object, broadcast_state, replica_digests
from utils.errors import UserError
from utils.io import atomic_write_text
from utils.labels import age_group_names, class_names
from utils.logger import RunLogger, file_log, start_wandb
from utils.metrics import macro_f1
from utils.predictions import predictions_frame, write_predictions
from utils.run import model_choice, read_summary
from utils.run_dir import RunDir
from utils.run_lock import clean_temp_files, run_lock
from utils.run_report import checked_report
from utils.seed import seed_everything
from utils.signals import graceful_stop

LOG = logging.getLogger(__name__)


def run_info(config: Config, overrides: Sequence[str]) -> dict:
    """What `summary.json` says about a run besides its scores."""
    return {"name": config.name, "backbone": config.model.backbone, "head": config.model.head,
            "overrides": list(overrides), "class_names": class_names(),
            "pid": os.getpid(), "host": socket.gethostname()}


def shared_run_dir(config: Config, dist_info: DistInfo, run_dir: Optional[RunDir] = None) -> RunDir:
    """`run_dir` (created if missing), or a fresh `save_dir/name/<timestamp>`; made by rank 0 alone,
    its path broadcast to every rank."""
    path = None
    if dist_info.is_main:
        if run_dir is None:
            run_dir = RunDir.create(config.save_dir, config.name)
        run_dir.path.mkdir(parents=True, exist_ok=True)
        path = str(run_dir.path)
    return RunDir(broadcast_object(path, dist_info))


@contextlib.contextmanager
def run_files(run_dir: RunDir, config: Config, info: dict[str, Any], dist_info: DistInfo,
              start_epoch: int = 0) -> Iterator[Optional[RunLogger]]:
    """Rank 0: the resolved config, `train.log` and a `RunLogger` for the block (closed after it);
    other ranks: None, and only warnings on their console."""
    if not dist_info.is_main:
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.WARNING)
        try:
            yield None
        finally:
            root.setLevel(level)
        return
    with run_lock(run_dir.lock):
        leftovers = clean_temp_files(run_dir.path)
        save_config(config, run_dir.config)
        with file_log(run_dir.log):
            if leftovers:
                LOG.info("removed %d temp file(s) a stopped process left: %s", len(leftovers),
                         ", ".join(p.name for p in leftovers))
            if start_epoch and (repaired := reconcile(run_dir)):
                LOG.warning("checkpoints: %s", repaired)
            wandb_run = start_wandb(config.logging.wandb, run_dir.path, config.name, config.to_dict())
            run_logger = RunLogger(run_dir.path, start_epoch, info, wandb_run)
            try:
                yield run_logger
            finally:
                run_logger.close()


def fit_with_status(trainer: Trainer, stop: Any, config: Config, hparams: Optional[dict[str, Any]] = None,
                    overrides: Sequence[str] = ()) -> dict[str, Any]:
    """`trainer.fit` with `summary.json` statuses, a clean exit on SIGINT/SIGTERM and a clear CUDA OOM
    message; the run's HParams entry holds the core keys, the `overrides`' keys and `hparams`."""
    run_logger, status = trainer.run_logger, "crashed"
    if run_logger is not None:
        run_logger.write_summary("running", trainer.summary())
        if trainer.epoch == 0:
            log_augmented_samples(run_logger, trainer.train_loader.dataset, config.augment.mean, config.augment.std,
                                  names=class_names(config.data.age_bounds))
    try:
        try:
            summary = trainer.fit()
        except StopRun as stopped:
            status = stopped.status
            raise
        except Interrupted as where:
            status = "interrupted"
            held = (f"{trainer.run_dir.last} holds epoch {trainer.epoch}" if trainer.run_dir.last.is_file()
                    else "no checkpoint yet")
            LOG.warning("interrupted at %s; %s: continue with --resume %s", where, held, trainer.run_dir)
            sys.exit(stop.exit_code)
        except torch.cuda.OutOfMemoryError:
            raise UserError(
                f"out of GPU memory at data.batch_size={trainer.train_loader.batch_size}: lower "
                "data.batch_size, set trainer.amp=auto (or fp16), or reduce augment.image_size"
            ) from None
        status = "stopped early" if summary["stopped_early"] else "finished"
        return summary
    finally:
        if run_logger is not None:
            run_logger.write_summary(status, trainer.summary())
            if trainer.has_val and trainer.monitor.best_epoch > 0:
                run_logger.log_hparams({**key_hparams(config, overrides),
                                        **{k: hparam_value(v) for k, v in (hparams or {}).items()}},
                                       {trainer.monitor.metric: trainer.monitor.best})


def label_note(config: Config) -> str:
    """Which labels training and validation use (train.log)."""
    fixes = f", with the fixes of data.relabel {config.data.relabel}" if config.data.relabel else ""
    competition = "/".join(age_group_names())
    return (f"labels: validation, best.pth, early stopping and every reported F1 use the competition's age groups "
            f"{competition}{fixes}; training uses data.age_bounds {list(config.data.age_bounds)} "
            f"({'/'.join(age_group_names(config.data.age_bounds))}){fixes}")


def check_resumable(parts: TrainerParts, state: dict[str, Any], source: str) -> None:
    """Refuse, before anything is written, a checkpoint whose weights or optimizer do not fit these parts
    (compared, not loaded: the Trainer loads the state once)."""
    ours, saved = parts.model.state_dict(), state["model"]
    problem = next((f"missing weight {k}" for k in ours if k not in saved), None) or \
        next((f"unexpected weight {k}" for k in saved if k not in ours), None) or \
        next((f"{k} has shape {list(saved[k].shape)}, the model {list(ours[k].shape)}" for k in ours
              if tuple(saved[k].shape) != tuple(ours[k].shape)), None)
    saved_groups = [len(g["params"]) for g in state["optimizer"].get("param_groups", [])]
    if problem is None and saved_groups != [len(g["params"]) for g in parts.optimizer.param_groups]:
        problem = "its optimizer holds other parameter groups"
    if problem is not None:
        raise UserError(f"{source}: cannot resume from this checkpoint ({problem[:160]})")


def seeded_parts(config: Config) -> TrainerParts:
    """The run's parts built right after seeding, so a run's initial weights and everything after them
    depend only on `config` (not on what the process did before, e.g. a previous fold)."""
    seed_everything(config.seed, config.trainer.deterministic)
    if config.trainer.threads is not None:
        torch.set_num_threads(config.trainer.threads)
    return build_parts(config)


def run_training(
    config: Config,
    *,
    overrides: Sequence[str] = (),
    run_dir: Optional[RunDir] = None,
    resume: Optional[Resume] = None,
    parts: Optional[TrainerParts] = None,
    callbacks: Sequence[EpochCallback] = (),
    hparams: Optional[dict[str, Any]] = None,
    info: Optional[dict[str, Any]] = None,
) -> tuple[dict[str, Any], Trainer]:
    """Train one run to its end: a new run (in `run_dir`, or a fresh directory), or one continued from
    `resume` (see `trainer.resume.plan_resume`; its run directory is used). `parts` may be prebuilt
    by `seeded_parts(config)`; `info` joins what summary.json says of the run (e.g. `refit_of`). Returns the
    summary and the Trainer (its model at the last epoch's weights)."""
    if parts is None:  # prebuilt parts were built right after seeding (`seeded_parts`), like these
        parts = seeded_parts(config)
    resume_state = resume.state if resume is not None else None
    if resume is not None:
        run_dir = resume.run_dir
    if resume_state is not None:
        check_resumable(parts, resume_state, resume.source)
    run_dir = shared_run_dir(config, parts.dist_info, run_dir)
    start = resume_state["epoch"] if resume_state is not None else 0
    with graceful_stop() as stop, run_files(run_dir, config, {**run_info(config, overrides), **(info or {})},
                                            parts.dist_info,
                                            start_epoch=start) as run_logger:
        visuals = [BestEpochVisuals(run_logger, class_names())] if run_logger else []
        trainer = parts.trainer(run_dir=run_dir, run_logger=run_logger, stop_request=stop,
                                callbacks=[*visuals, LoaderNote(num_workers=config.data.num_workers,
                                                                cache=config.data.cache), *callbacks])
        if resume_state is not None:
            trainer.load_state_dict(resume_state)
            LOG.info(resume.describe())
        LOG.info("run directory: %s (%s, device %s, %d process(es))", run_dir, parts.split_summary(),
                 parts.device, parts.dist_info.world_size)
        LOG.info(label_note(config))
        if getattr(parts.train_loader.dataset, "crop", None) is not None:
            crop = parts.train_loader.dataset.crop
            LOG.info(crop.summary())
            if (leak := crop.label_leak_warning()) is not None:
                LOG.warning(leak)
        LOG.info("precision: training %s, validation %s (trainer.amp=%s on %s)", dtype_name(trainer.amp_dtype),
                 dtype_name(trainer.eval_dtype), config.trainer.amp, parts.device)
        summary = fit_with_status(trainer, stop, config, hparams, overrides=overrides)
        if parts.dist_info.enabled:
            log_replicas(trainer)
        keep_val_predictions(trainer, config)
        if run_logger is not None:
            run_logger.mirror_files([p for p in (checked_report(run_dir.path), run_dir.val_predictions)
                                     if p is not None and p.is_file()])
        scored = summary["best_epoch"] >= 1 and math.isfinite(summary["best"])
        best = (f"best {summary['metric']}={summary['best']:.4f} at epoch {summary['best_epoch']}" if scored
                else f"no {summary['metric']} to choose by (no validation people): best.pth is the last epoch")
        LOG.info("done: %s; checkpoints in %s; view with: tensorboard --logdir %s", best, run_dir, config.save_dir)
    return {**summary, "run_dir": str(run_dir)}, trainer


def log_replicas(trainer: Trainer) -> None:
    """Under DDP, say in train.log whether every rank ended with the same weights (a replica that
    drifted, e.g. on a node with other library versions, would otherwise go unnoticed)."""
    digests = replica_digests(trainer.model, trainer.dist)
    if len(set(digests)) == 1:
        LOG.info("model weights identical on all %d ranks (sha256 %s)", len(digests), digests[0][:16])
    else:
        LOG.warning("model weights differ between ranks: %s", ", ".join(f"rank {r}: {d[:16]}"
                                                                        for r, d in enumerate(digests)))


def model_weights(config: Config, trainer: Trainer) -> str:
    """Which checkpoint is the run's model: "swa" or "soup" as the recipe says (when the run wrote it), else
    "best"."""
    which = model_choice(config)
    if which == "best":
        return "best"
    if not (trainer.run_dir / f"{which}.pth").is_file():
        why = "stopped before its first averaged epoch" if which == "swa" else "no validated epoch"
        LOG.warning("no %s.pth (%s): val_predictions.csv uses best.pth", which, why)
        return "best"
    return which


def keep_val_predictions(trainer: Trainer, config: Config) -> Optional[EvalResult]:
    """`val_predictions.csv`: every validation photo's prediction by the run's model (every rank evaluates,
    rank 0 writes), and the ± of its macro-F1 (half the 95 % people-bootstrap interval) in summary.json."""
    if not trainer.has_val or trainer.run_dir is None or not trainer.run_dir.best.is_file():
        return None
    which = model_weights(config, trainer)
    result = trainer.final_results.get(which) or evaluate_best(trainer, which=which)  # an averaged model: as judged
    if trainer.dist.is_main:
        frame = predictions_frame(result.paths, result.y_true, result.probs)
        write_predictions(trainer.run_dir.val_predictions, frame)
        half = f1_half_width(frame["label"].to_numpy(), frame["pred"].to_numpy(), frame["person"].to_numpy())
        summary = read_summary(trainer.run_dir.path)
        summary.update(model=which, model_f1=macro_f1(frame["label"].to_numpy(), frame["pred"].to_numpy()),
                       model_f1_pm=half)
        atomic_write_text(trainer.run_dir.summary, json.dumps(summary, indent=2, default=str))
        LOG.info("val_predictions.csv: %s.pth, macro-F1 %.4f ± %.4f (95 %% people bootstrap, %d people)", which,
                 summary["model_f1"], half, frame["person"].nunique())
    return result


def evaluate_best(trainer: Trainer, which: str = "best") -> EvalResult:
    """Validation predictions of the run's `best.pth` weights (EMA or raw, as its monitor chose), or with
    `which="swa"` (`"soup"`) of its `swa.pth` (`soup.pth`), on every rank: rank 0 reads the file and sends the
    weights to the others."""
    path = {"swa": trainer.run_dir.swa, "soup": trainer.run_dir.soup}.get(which, trainer.run_dir.best)
    state = load_checkpoint(path) if trainer.dist.is_main else None
    key = broadcast_object(best_weights_key(state) if state is not None else None, trainer.dist)
    model = trainer.ema.module if key == "ema" else trainer.model
    if state is not None:
        model.load_state_dict(state[key])
    broadcast_state(model, trainer.dist)
    return trainer.evaluate(trainer.val_loader, "ema_val" if key == "ema" else "val", model)
