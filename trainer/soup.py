"""`trainer.soup`: a greedy soup of the best epochs' weights (Wortsman et al., "Model soups", 2022; AutoGluon's
weight averaging). During training the weights of the `top_k` epochs with the best validation scores are kept
(CPU copies); at the end the best epoch's weights start the soup and each next-best epoch is averaged in only if
validation does not get worse. The soup is chosen on the validation people that ranked the epochs, so its
validation score is optimistic: judge it on eval data or OOF (`tools.compare`)."""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, Iterable, Optional

import torch
from torch import nn
from torch.optim.swa_utils import update_bn

from utils.config import SoupConfig

LOG = logging.getLogger(__name__)
State = dict[str, torch.Tensor]


def average(states: list[State]) -> State:
    """The elementwise mean of state dicts; integer buffers (BatchNorm's batch counts) are the first's."""
    out: State = {}
    for key, first in states[0].items():
        if first.is_floating_point():
            out[key] = torch.stack([s[key].float() for s in states]).mean(dim=0).to(first.dtype)
        else:
            out[key] = first.clone()
    return out


def has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class Soup:
    """The candidates (epoch -> score and weights) and the greedy rule; `mode` 'max' or 'min' as the monitor."""

    def __init__(self, cfg: SoupConfig, mode: str = "max", since_epoch: int = 0) -> None:
        self.cfg, self.mode, self.since_epoch = cfg, mode, since_epoch
        self.scores: dict[int, float] = {}
        self.weights: dict[int, State] = {}

    def better_or_equal(self, a: float, b: float) -> bool:
        return a >= b if self.mode == "max" else a <= b

    def ranked(self) -> list[int]:
        """Candidate epochs, best score first (the earlier epoch first on a tie)."""
        sign = -1 if self.mode == "max" else 1
        return sorted(self.scores, key=lambda e: (sign * self.scores[e], e))

    def offer(self, epoch: int, score: float, model: nn.Module) -> bool:
        """Keep `model`'s weights at `epoch` if its score is among the `top_k` best so far; True if kept."""
        if score != score:  # NaN never enters
            return False
        if len(self.scores) >= self.cfg.top_k:
            worst = self.ranked()[-1]
            if self.better_or_equal(self.scores[worst], score):
                return False
            del self.scores[worst], self.weights[worst]
        self.scores[epoch] = score
        self.weights[epoch] = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        return True

    def cook(self, model: nn.Module, evaluate: Callable[[nn.Module], float], bn_loader: Iterable[Any],
             device: torch.device) -> tuple[nn.Module, list[int], float]:
        """The greedy soup: (network, ingredient epochs, its validation score). `evaluate` scores a network on
        validation with the monitored metric; `bn_loader` recomputes BatchNorm statistics of each tried soup."""
        order = self.ranked()
        net = copy.deepcopy(model)
        ingredients, score, soup = [order[0]], self.scores[order[0]], self.weights[order[0]]
        recompute = self.cfg.bn_update and has_batchnorm(model)
        for epoch in order[1:]:
            self._load(net, [*ingredients, epoch], bn_loader, device, recompute)
            trial = evaluate(net)
            kept = self.better_or_equal(trial, score)
            LOG.info("soup: epoch %d (%.4f alone) %s: %.4f with it, %.4f without", epoch, self.scores[epoch],
                     "added" if kept else "left out", trial, score)
            if kept:
                ingredients.append(epoch)
                score, soup = trial, copy.deepcopy(net.state_dict())  # as tried: averaged, BatchNorm recomputed
        net.load_state_dict(soup)
        return net, sorted(ingredients), score

    def _load(self, net: nn.Module, epochs: list[int], bn_loader: Iterable[Any], device: torch.device,
              recompute: bool) -> None:
        net.load_state_dict(average([self.weights[e] for e in epochs]))
        if recompute:
            update_bn(bn_loader, net, device=device)

    def describe(self, ingredients: list[int], score: float, metric: str, best: Optional[float]) -> str:
        resumed = f" (epochs after {self.since_epoch} only: the run was resumed)" if self.since_epoch else ""
        what = (f"epochs {', '.join(map(str, ingredients))} of the {len(self.scores)} best{resumed} averaged"
                if len(ingredients) > 1 else
                f"epoch {ingredients[0]} alone: each of the other {len(self.scores) - 1} best{resumed} made "
                "validation worse")
        return f"soup: {what}; {metric} {score:.4f} (best epoch alone {best:.4f}; optimistic, chosen on these people)"
