"""The monitored metric: best score, best epoch and the epochs since it improved."""
from __future__ import annotations

import math
from typing import Any

from utils.config import MonitorSpec


class Monitor:
    """Tracks `trainer.monitor` (e.g. 'max val_f1'); one rule for the whole run."""

    def __init__(self, spec: MonitorSpec | str) -> None:
        self.spec = MonitorSpec.parse(spec)
        self.best = -math.inf if self.mode == "max" else math.inf
        self.best_epoch = -1
        self.bad_epochs = 0

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def metric(self) -> str:
        return self.spec.metric

    def is_better(self, value: float) -> bool:
        return value > self.best if self.mode == "max" else value < self.best

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Record an epoch; True if it is the new best."""
        value = metrics[self.metric]
        if self.is_better(value):
            self.best, self.best_epoch, self.bad_epochs = value, epoch, 0
            return True
        self.bad_epochs += 1
        return False

    def reset_patience(self) -> None:
        """Start counting epochs without improvement afresh (e.g. after unfreezing)."""
        self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], state["bad_epochs"]
