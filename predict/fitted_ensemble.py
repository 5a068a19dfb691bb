"""The fitted-ensemble file (`ensemble.yaml`, written by `ensemble.py`) and its decision rule: the runs'
probabilities mixed with the fitted weights, then log-probabilities plus per-class offsets. NumPy only:
applying an ensemble imports nothing of training."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import yaml

from utils.errors import UserError
from utils.io import atomic_write_text
from utils.labels import NUM_CLASSES

EPS = 1e-7


def decision_scores(probs: np.ndarray, weights: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mixed probabilities, scores) for `probs` of shape (runs, images, classes): the weighted mean of the
    runs, and log of it plus `offsets` (the class with the highest score is the prediction)."""
    mixed = np.tensordot(weights, probs, axes=1)
    return mixed, np.log(mixed + EPS) + offsets


def predict(probs: np.ndarray, weights: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """argmax over classes of log(sum_r w_r p_r) + offsets; `probs` is (runs, images, classes)."""
    return decision_scores(probs, weights, offsets)[1].argmax(axis=1)


def save_ensemble(spec: dict[str, Any], path: Path) -> Path:
    """Write `spec` (runs, weights, offsets, estimates) as YAML, atomically."""
    atomic_write_text(path, yaml.safe_dump(spec, sort_keys=False))
    return path


def load_ensemble(path: Path) -> dict[str, Any]:
    """An `ensemble.yaml`, checked: runs, one non-negative weight per run, 18 offsets."""
    try:
        spec = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: cannot read ensemble file ({type(err).__name__})") from None
    if not isinstance(spec, dict) or not all(k in spec for k in ("runs", "weights", "offsets")):
        raise UserError(f"{path}: not an ensemble file (needs runs, weights, offsets)")
    try:
        weights, offsets = np.asarray(spec["weights"], dtype=float), np.asarray(spec["offsets"], dtype=float)
    except (TypeError, ValueError):
        raise UserError(f"{path}: weights and offsets must be lists of numbers") from None
    if not isinstance(spec["runs"], list) or not all(isinstance(r, str) for r in spec["runs"]):
        raise UserError(f"{path}: runs must be a list of run directories")
    if len(weights) != len(spec["runs"]) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise UserError(f"{path}: weights must be {len(spec['runs'])} finite non-negative numbers")
    if offsets.shape != (NUM_CLASSES,) or not np.isfinite(offsets).all():
        raise UserError(f"{path}: offsets must be {NUM_CLASSES} finite numbers")
    return {**spec, "weights": weights / weights.sum(), "offsets": offsets}
