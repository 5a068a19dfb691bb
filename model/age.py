"""Age as a number (`model.age: ordinal`): one-year age bins learnt with an ordinal loss, read as the three age
groups through boundaries fitted on validation for macro-F1.

The head's age part predicts a distribution over the ages `AGE_LOW`..`AGE_HIGH` (one bin per year, ages outside
clipped into the end bins). The age group of a photo is the sum of its bins on each side of two boundaries;
the boundaries are a buffer of the head (saved in every checkpoint, so inference, ensembles and ONNX use them
unchanged) and are refitted after each validation pass (`fit_age_bounds`). Training targets carry the age:
`joint_targets` packs class and age bin into one id over `NUM_CLASSES * AGE_BINS` classes, so batch mixing mixes
ages with the same weights as the classes.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from utils.bootstrap import fast_macro_f1
from utils.labels import DEFAULT_AGE_BOUNDS, NUM_AGE, NUM_CLASSES, NUM_GENDER, split_classes

AGE_LOW, AGE_HIGH = 18, 60  # the real data's ages: 18..60
AGE_BINS = AGE_HIGH - AGE_LOW + 1
LOW_CANDIDATES = range(20, 41)  # where the fit may put the lower boundary (competition: 30)
HIGH_CANDIDATES = range(45, AGE_HIGH + 1)  # and the upper one (competition: 60)


def age_bin(ages: np.ndarray) -> np.ndarray:
    """Bin index of each age (clipped into `AGE_LOW`..`AGE_HIGH`)."""
    return np.clip(np.asarray(ages, dtype=np.int64), AGE_LOW, AGE_HIGH) - AGE_LOW


def training_bins(ages: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Age bin of each training photo. A photo without a written age (-1: a pseudo-labelled eval photo) gets
    the median written age of the training photos in its label's age group (its own group's typical age), or
    the middle of the group's competition ages when no training photo of the group has one."""
    ages = np.asarray(ages, dtype=np.int64).copy()
    groups = np.asarray(labels) % NUM_AGE
    known = ages >= 0
    low, high = DEFAULT_AGE_BOUNDS
    middle = ((AGE_LOW + low - 1) // 2, (low + high - 1) // 2, AGE_HIGH)
    for group in np.unique(groups[~known]):
        pool = ages[known & (groups == group)]
        ages[~known & (groups == group)] = int(np.median(pool)) if len(pool) else middle[group]
    return age_bin(ages)


def group_membership(bounds: torch.Tensor) -> torch.Tensor:
    """(AGE_BINS, 3) 0/1 matrix: which age group each bin falls in under `bounds` (low, high)."""
    ages = torch.arange(AGE_LOW, AGE_HIGH + 1, device=bounds.device, dtype=bounds.dtype)
    older_low, older_high = ages >= bounds[0], ages >= bounds[1]
    return torch.stack([~older_low, older_low & ~older_high, older_high], dim=1).to(bounds.dtype)


def group_log_probs(bin_logp: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """(N, 3) log-probabilities of the age groups from (N, AGE_BINS) bin log-probabilities."""
    probs = bin_logp.float().exp() @ group_membership(bounds.float())
    return probs.clamp_min(torch.finfo(torch.float32).tiny).log()


def regroup(class_logp: torch.Tensor, bin_logp: torch.Tensor, bounds: torch.Tensor) -> torch.Tensor:
    """(N, 18) class log-probabilities with the age group read again from `bin_logp` under `bounds` (mask and
    gender kept: the marginals of the product distribution)."""
    joint = class_logp.float().reshape(len(class_logp), NUM_CLASSES // (NUM_GENDER * NUM_AGE), NUM_GENDER, NUM_AGE)
    mask, gender = joint.logsumexp(dim=(2, 3)), joint.logsumexp(dim=(1, 3))
    age = group_log_probs(bin_logp, bounds)
    return (mask[:, :, None, None] + gender[:, None, :, None] + age[:, None, None, :]).reshape(len(class_logp), -1)


def joint_targets(class_ids: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Class id and age bin as one id in [0, NUM_CLASSES * AGE_BINS)."""
    return class_ids.long() * AGE_BINS + bins.long()


def split_joint(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N,) joint ids or (N, NUM_CLASSES * AGE_BINS) soft joint targets -> (N, NUM_CLASSES) class and
    (N, AGE_BINS) age-bin target distributions."""
    if targets.dim() == 1:
        targets = F.one_hot(targets.long(), NUM_CLASSES * AGE_BINS)
    joint = targets.float().reshape(len(targets), NUM_CLASSES, AGE_BINS)
    return joint.sum(dim=2), joint.sum(dim=1)


def ordinal_loss(bin_logp: torch.Tensor, bin_targets: torch.Tensor) -> torch.Tensor:
    """Per-sample ordinal loss: the binary cross-entropy of P(age >= a) against the target's, averaged over the
    thresholds a = AGE_LOW+1..AGE_HIGH (cumulative probabilities of the bin distribution, so any cut-off can be
    read from it afterwards)."""
    log_below = torch.logcumsumexp(bin_logp.float(), dim=1)[:, :-1]  # log P(bin <= k), k = 0..K-2
    log_above = torch.logcumsumexp(bin_logp.float().flip(1), dim=1).flip(1)[:, 1:]  # log P(bin >= k+1)
    above = (1.0 - bin_targets.float().cumsum(dim=1)[:, :-1]).clamp(0.0, 1.0)
    return -(above * log_above + (1.0 - above) * log_below).mean(dim=1)


def fit_age_bounds(class_logp: np.ndarray, bin_logp: np.ndarray, y_true: np.ndarray,
                   prior: Sequence[int] = DEFAULT_AGE_BOUNDS) -> tuple[int, int]:
    """The (low, high) boundaries among the candidates that give the highest 18-class macro-F1 of
    `y_true` (ties: the pair nearest `prior`). `class_logp` (N, 18) gives each photo's mask and gender
    (the marginals of a product distribution, so their argmaxes are the class's), `bin_logp` (N, AGE_BINS)
    its age."""
    mask, gender, _ = split_classes(np.asarray(class_logp).argmax(axis=1))
    base = mask * NUM_GENDER * NUM_AGE + gender * NUM_AGE
    below = np.exp(np.asarray(bin_logp, dtype=np.float64)).cumsum(axis=1)  # P(age < AGE_LOW + k + 1)
    best, best_key = tuple(prior), None
    for low in LOW_CANDIDATES:
        p_young = below[:, low - AGE_LOW - 1]
        for high in HIGH_CANDIDATES:
            if high <= low:
                continue
            p_old = 1.0 - below[:, high - AGE_LOW - 1]
            groups = np.stack([p_young, 1.0 - p_young - p_old, p_old], axis=1).argmax(axis=1)
            key = (fast_macro_f1(y_true, base + groups), -abs(low - prior[0]) - abs(high - prior[1]))
            if best_key is None or key > best_key:
                best, best_key = (low, high), key
    return best

