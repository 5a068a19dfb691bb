"""What every config section shares: the frozen pydantic base, absolute paths, the monitor spec and the
constants the schema names. Pure: no torch, no timm."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

DATASET_NAMES = ("MaskSplitByProfileDataset", "MaskBaseDataset")
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "plateau", "poly", "none")
MAX_SIDE = 2048  # network input side; the photos are 512 x 384
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MONITOR_METRICS = ("val_f1", "val_acc", "val_loss", "train_loss", "ema_val_f1", "ema_val_acc", "ema_val_loss")


@dataclass(frozen=True)
class MonitorSpec:
    """`trainer.monitor`: the metric that picks `best.pth`, drives early stopping and the unfreeze, and its
    direction. Written `max val_f1` in configs and checkpoints; a mapping `{mode, metric}` is read too."""

    mode: Literal["min", "max"]
    metric: str

    @classmethod
    def parse(cls, value: Any) -> "MonitorSpec":
        if isinstance(value, MonitorSpec):
            return value
        if isinstance(value, dict) and set(value) == {"mode", "metric"}:
            mode, metric = value["mode"], value["metric"]
        elif isinstance(value, str) and len(value.split()) == 2:
            mode, metric = value.split()
        else:
            mode = metric = None
        if mode not in ("min", "max") or metric not in MONITOR_METRICS:
            raise ValueError(f"must be 'min|max <metric>' with metric in {list(MONITOR_METRICS)}, got {value!r}")
        return cls(mode, metric)

    def __str__(self) -> str:
        return f"{self.mode} {self.metric}"

    @property
    def direction(self) -> str:
        """Optuna's word for it: `maximize` or `minimize`."""
        return "maximize" if self.mode == "max" else "minimize"

    @property
    def needs_validation(self) -> bool:
        return self.metric != "train_loss"

    @property
    def on_ema(self) -> bool:
        """True when the metric judges the EMA weights (then `best.pth` holds them as the best)."""
        return self.metric.startswith("ema_")


Monitor = Annotated[MonitorSpec, BeforeValidator(MonitorSpec.parse), PlainSerializer(str, return_type=str)]


def absolute(path: Optional[Path]) -> Optional[Path]:
    """`path` made absolute against the current directory (normalised, symlinks kept)."""
    return Path(os.path.abspath(os.path.expanduser(path))) if path is not None else None


class Section(BaseModel):
    """A config section: unknown keys refused, frozen, field docstrings kept as descriptions."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)
