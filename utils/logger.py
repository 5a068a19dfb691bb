"""A run's own logs: `train.log`, TensorBoard scalars and images, `metrics.csv`, `summary.json`."""
from __future__ import annotations

import contextlib
import csv
import io
import json
import logging
import re
import time
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams as hparams_summary

from utils.config import WandbConfig
from utils.errors import ConfigError, first_line
from utils.io import atomic_write_text
from utils.run import read_metrics, read_summary
from utils.run_dir import RunDir


@contextlib.contextmanager
def file_log(path: Path) -> Iterator[None]:
    """Also write the log to `path` inside the block (appending; `train.log` of a run)."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()


# metric key -> TensorBoard tag. TensorBoard orders tag groups alphabetically, so the names put the
# headline first: f1/ (train, val, val_ema; val_mask/gender/age per task), then hparams/, loss/, lr/,
# per_class_f1_val/NN name, time/, top1_accuracy/.
FAMILIES = {"loss": "loss", "acc": "top1_accuracy", "f1": "f1"}
SPLITS = {"train": "train", "val": "val", "ema_val": "val_ema"}
METRIC = re.compile(r"^(train|val|ema_val)_(loss|acc|f1)(?:_(mask|gender|age)|_c(\d\d))?$")
HPARAMS_RUN = "hparams"  # sub-folder of a run holding its HParams session
KEPT_INFO = ("refit_of", "refit_epochs")  # summary.json keys a resumed run keeps from its first session
OTHER_TAGS = {"lr_head": "lr/head", "lr_backbone": "lr/backbone", "epoch_time": "time/epoch_seconds",
              "train_time": "time/train_seconds", "loader_wait": "time/loader_wait_seconds"}


def tb_tag(key: str, class_names: Sequence[str] = ()) -> str:
    """TensorBoard tag of a metric key."""
    if key in OTHER_TAGS:
        return OTHER_TAGS[key]
    m = METRIC.match(key)
    if m is None:
        return key
    split, family, task, cid = m.groups()
    if cid is not None:
        index = int(cid)
        name = class_names[index].replace("/", " ") if index < len(class_names) else ""
        return f"per_class_f1_{SPLITS[split]}/{index:02d} {name}".rstrip()
    return f"{FAMILIES[family]}/{SPLITS[split]}" + (f"_{task}" if task else "")


class RunLogger:
    """Writes each epoch's metrics to TensorBoard and `metrics.csv`, and the run's state to
    `summary.json`, in the run directory. `info` (name, backbone, ...) goes into the summary."""

    def __init__(self, run_dir: Path, start_epoch: int = 0, info: Optional[dict[str, Any]] = None,
                 wandb_run: Any = None) -> None:
        self.run_dir = Path(run_dir)
        self.csv_path = RunDir(self.run_dir).metrics
        self.rows: list[dict[str, float]] = [r for r in read_metrics(self.csv_path) if r["epoch"] <= start_epoch]
        self.writer = SummaryWriter(str(self.run_dir), purge_step=start_epoch + 1 if start_epoch else None)
        previous = read_summary(self.run_dir)
        kept = {k: previous[k] for k in KEPT_INFO if k in previous}  # a resumed refit still names its parent
        self.info = {"started": previous.get("started", time.time()), "wall_time": previous.get("wall_time", 0.0),
                     **kept, **(info or {})}
        self.session_start = time.time()
        self.wandb_run = wandb_run

    def log_epoch(self, epoch: int, metrics: dict[str, float], summary: Optional[dict[str, Any]] = None) -> None:
        """Record epoch `epoch` (1-based)."""
        names = self.info.get("class_names", ())
        for key, value in metrics.items():
            self.writer.add_scalar(tb_tag(key, names), value, epoch)
        self.writer.flush()
        if self.wandb_run is not None:
            self.wandb_run.log({tb_tag(k, names): v for k, v in metrics.items()}, step=epoch)
        self.rows.append({"epoch": epoch, **metrics})
        atomic_write_text(self.csv_path, rows_to_csv(self.rows))
        if summary is not None:
            self.write_summary("running", summary)

    def write_summary(self, status: str, summary: dict[str, Any]) -> None:
        """`summary.json`: info, status (running/finished/stopped early/interrupted/crashed), scores."""
        last = self.rows[-1] if self.rows else {}
        best = next((r for r in self.rows if r["epoch"] == summary.get("best_epoch")), {})
        data = {**self.info, **summary, "status": status, "updated": time.time(),
                "wall_time": self.info["wall_time"] + time.time() - self.session_start,
                "last_metrics": last, "best_metrics": best}
        atomic_write_text(RunDir(self.run_dir).summary, json.dumps(data, indent=2, default=str))

    def add_image(self, tag: str, image: np.ndarray | torch.Tensor, step: int) -> None:
        """An image (HxWx3 uint8 array, or 3xHxW float tensor in [0, 1]) to TensorBoard (and W&B)."""
        hwc = isinstance(image, np.ndarray)
        self.writer.add_image(tag, image, step, dataformats="HWC" if hwc else "CHW")
        if self.wandb_run is not None:
            import wandb

            array = image if hwc else (image.permute(1, 2, 0).numpy() * 255).astype(np.uint8)
            self.wandb_run.log({tag: wandb.Image(array)}, step=max(step, 1))

    def mirror_files(self, paths: Sequence[Path]) -> None:
        """Copies of the run's files (report.png, val_predictions.csv) in the W&B run, when it mirrors one."""
        if self.wandb_run is not None:
            for path in paths:
                self.wandb_run.save(str(path), base_path=str(self.run_dir), policy="now")

    def log_hparams(self, hparams: dict[str, Any], best: dict[str, float]) -> None:
        """HParams-tab entry: `hparams` against the `best` scores, in the sub-run `hparams/` of the run.
        No experiment summary is written: TensorBoard would take the first one it finds for every run and
        hide the keys other runs logged; without one it takes the union of all runs' keys, those whose
        values differ between runs first, and the sub-run's `hparams/` scalars as its metric columns."""
        _, ssi, sei = hparams_summary(hparams, {f"hparams/{k}": v for k, v in best.items()})
        with SummaryWriter(str(self.run_dir / HPARAMS_RUN)) as writer:
            for summary in (ssi, sei):
                writer.file_writer.add_summary(summary)
            for key, value in best.items():
                writer.add_scalar(f"hparams/{key}", value, 0)

    def close(self) -> None:
        self.writer.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def start_wandb(cfg: Optional[WandbConfig], run_dir: Path, name: str, config: dict[str, Any]) -> Any:
    """A W&B run mirroring this run's logs, or None when `logging.wandb` is not set."""
    if cfg is None:
        return None
    wandb = require_wandb(cfg)
    try:
        return wandb.init(project=cfg.project, entity=cfg.entity, mode=cfg.mode, dir=str(run_dir),
                          name=f"{name}/{Path(run_dir).name}", config=config, resume="allow", id=Path(run_dir).name)
    except wandb.errors.Error as err:  # no login, no network, a bad entity: one line, not a traceback
        raise ConfigError(f"logging.wandb: W&B did not start ({first_line(err)}); run `wandb login`, or set "
                          "logging.wandb.mode=offline and upload later with `wandb sync`") from None


def require_wandb(cfg: Optional[WandbConfig]) -> Any:
    """The wandb module when `logging.wandb` is set; one clear line (`ConfigError`) if it is not installed or,
    for `mode: online`, no login is configured (checked before anything is written, without network)."""
    if cfg is None:
        return None
    try:
        import wandb
    except ImportError:
        raise ConfigError("logging.wandb is set but the wandb package is not installed (pip install wandb, or "
                          "pip install -r requirements-wandb.txt)") from None
    if cfg.mode == "online":
        try:
            wandb.login(verify=False)
        except wandb.errors.Error as err:
            raise ConfigError(f"logging.wandb: {first_line(err)} (or set logging.wandb.mode=offline and upload "
                              "later with `wandb sync`)") from None
    return wandb


def rows_to_csv(rows: list[dict[str, float]]) -> str:
    """CSV text with the union of keys as header, `epoch` first."""
    fields = ["epoch"] + sorted({k for r in rows for k in r} - {"epoch"})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()
