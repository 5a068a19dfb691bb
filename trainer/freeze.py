"""`trainer.freeze`: train the head on a frozen backbone, then unfreeze everything (the schedule teams
call "melting")."""
from __future__ import annotations

import logging
from typing import Any, Optional

from torch import nn

from utils.config import FreezeConfig

LOG = logging.getLogger(__name__)


def set_backbone_frozen(model: nn.Module, frozen: bool) -> None:
    """Freeze or unfreeze `model.backbone`; the head always trains."""
    model.backbone.requires_grad_(not frozen)
    model.head.requires_grad_(True)


class FreezeSchedule:
    """Decides when the frozen backbone is unfrozen: after `epochs`, or after `patience` epochs
    without improvement of the monitored metric, whichever comes first."""

    def __init__(self, cfg: Optional[FreezeConfig]) -> None:
        self.cfg = cfg
        self.frozen = cfg is not None
        self.unfrozen_at: Optional[int] = None

    def apply(self, model: nn.Module) -> None:
        """Set `requires_grad` to match the current state."""
        set_backbone_frozen(model, self.frozen)

    def set_train_mode(self, model: nn.Module) -> None:
        """`model.train()`, keeping a frozen backbone (its BatchNorm statistics too) in eval mode."""
        model.train()
        if self.frozen:
            model.backbone.eval()

    def step(self, epochs_done: int, bad_epochs: int, model: nn.Module) -> bool:
        """Call after each epoch; returns True when the backbone was unfrozen now."""
        if not self.frozen or self.cfg is None:
            return False
        by_epochs = self.cfg.epochs is not None and epochs_done >= self.cfg.epochs
        by_patience = self.cfg.patience is not None and bad_epochs >= self.cfg.patience
        if not (by_epochs or by_patience):
            return False
        self.frozen, self.unfrozen_at = False, epochs_done
        self.apply(model)
        reason = f"after {epochs_done} epoch(s)" if by_epochs else f"no improvement for {bad_epochs} epoch(s)"
        LOG.info("freeze: backbone unfrozen %s", reason)
        return True

    def state_dict(self) -> dict[str, Any]:
        return {"frozen": self.frozen, "unfrozen_at": self.unfrozen_at}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.frozen = state["frozen"]
        self.unfrozen_at = state.get("unfrozen_at", state.get("melted_at"))  # checkpoints before 0.4 said melted_at
