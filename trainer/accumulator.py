"""Collects a whole epoch of predictions (never a mean of per-batch scores), gathered across DDP ranks."""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
import torch

from utils.distributed import DistInfo, gather_objects
from utils.metrics import classification_metrics


class EpochAccumulator:
    """Collects a whole epoch on the device; one host sync (and one gather under DDP) in `compute`.

    Training keeps batch-mean losses and argmax predictions. Evaluation (`keep_logits`) keeps
    logits and sample indices, so that predictions gathered from DDP ranks can be de-duplicated
    (the sampler pads the last shares) and the loss is computed once over the unique samples.
    """

    def __init__(self, keep_logits: bool = False) -> None:
        self.loss_sum: torch.Tensor | None = None
        self.count = 0
        self.keep_logits = keep_logits
        self.outputs: list[torch.Tensor] = []
        self.targets: list[torch.Tensor] = []
        self.indices: list[torch.Tensor] = []
        self.y_true: Optional[np.ndarray] = None
        self.probs: Optional[np.ndarray] = None

    def update(self, loss: torch.Tensor, logits: torch.Tensor | None, targets: torch.Tensor,
               indices: torch.Tensor | None = None) -> None:
        """Add a batch: `loss` is the batch mean, weighted here by the batch size."""
        n = targets.shape[0]
        batch_sum = loss.detach().float() * n
        self.loss_sum = batch_sum if self.loss_sum is None else self.loss_sum + batch_sum
        self.count += n
        if logits is not None:
            logits = logits.detach()
            self.outputs.append(logits.float() if self.keep_logits else logits.argmax(dim=1))
            self.targets.append(targets.detach())
            if indices is not None:
                self.indices.append(indices.detach())

    def _gathered(self, info: DistInfo) -> tuple[float, int, list[torch.Tensor]]:
        local = [torch.cat(x).cpu() if x else torch.empty(0) for x in (self.outputs, self.targets, self.indices)]
        loss_sum = float(self.loss_sum.item()) if self.loss_sum is not None else 0.0
        parts = gather_objects((loss_sum, self.count, local), info)
        merged = [torch.cat([p[2][k] for p in parts]) for k in range(3)]
        return sum(p[0] for p in parts), sum(p[1] for p in parts), merged

    def compute(self, prefix: str, detail: bool = False, loss_fn: Optional[Callable[..., torch.Tensor]] = None,
                info: DistInfo = DistInfo(), tasks: bool = False,
                outputs_fn: Optional[Callable[..., torch.Tensor]] = None) -> dict[str, float]:
        """`{prefix}_loss` and, when predictions were given, `{prefix}_acc`/`{prefix}_f1` (per task too with
        `tasks`, per class as well with `detail`); with `loss_fn(logits, targets)` and kept logits the loss is
        computed once over the unique samples; `outputs_fn(logits, targets)` first turns the whole set's kept
        logits into the 18-class ones scored (an ordinal age head's fit)."""
        loss_sum, count, (outputs, targets, indices) = self._gathered(info)
        if count == 0:
            return {}
        out = {f"{prefix}_loss": loss_sum / count}
        if len(targets):
            if len(indices):
                _, first = np.unique(indices.numpy(), return_index=True)  # drop padding duplicates
                outputs, targets = outputs[first], targets[first]
            if self.keep_logits and outputs_fn is not None:
                outputs = outputs_fn(outputs, targets)
            if self.keep_logits and loss_fn is not None:
                out[f"{prefix}_loss"] = float(loss_fn(outputs, targets))
            self.y_true = targets.numpy()
            y_pred = outputs.argmax(dim=1).numpy() if self.keep_logits else outputs.numpy()
            self.probs = outputs.softmax(dim=1).numpy() if self.keep_logits else None
            metrics = classification_metrics(self.y_true, y_pred, detail, tasks=tasks)
            out.update({f"{prefix}_{k}": v for k, v in metrics.items()})
        return out
