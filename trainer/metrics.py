"""Metrics over a whole epoch (never a mean of per-batch scores)."""
from __future__ import annotations

import numpy as np
import torch
from sklearn.metrics import accuracy_score, f1_score


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes present in truth or prediction (the competition metric)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Accuracy and macro-F1 of one whole set."""
    return {"acc": float(accuracy_score(y_true, y_pred)), "f1": macro_f1(y_true, y_pred)}


class EpochAccumulator:
    """Collects losses, predictions and targets on the device; one host sync in `compute`."""

    def __init__(self) -> None:
        self.loss_sum: torch.Tensor | None = None
        self.count = 0
        self.preds: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []

    def update(self, loss: torch.Tensor, logits: torch.Tensor | None, targets: torch.Tensor) -> None:
        """Add a batch: `loss` is the batch mean, weighted here by the batch size."""
        n = targets.shape[0]
        batch_sum = loss.detach().float() * n
        self.loss_sum = batch_sum if self.loss_sum is None else self.loss_sum + batch_sum
        self.count += n
        if logits is not None:
            self.preds.append(logits.detach().argmax(dim=1))
            self.targets.append(targets.detach())

    def compute(self, prefix: str) -> dict[str, float]:
        """`{prefix}_loss`, and `{prefix}_acc`/`{prefix}_f1` when predictions were given."""
        if self.count == 0:
            return {}
        out = {f"{prefix}_loss": float(self.loss_sum.item()) / self.count}
        if self.preds:
            y_pred = torch.cat(self.preds).cpu().numpy()
            y_true = torch.cat(self.targets).cpu().numpy()
            out.update({f"{prefix}_{k}": v for k, v in classification_metrics(y_true, y_pred).items()})
        return out
