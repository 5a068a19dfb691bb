"""Ensembles fitted on out-of-fold predictions: soft-vote weights and per-class log-probability
offsets that maximise macro-F1, with honest estimates nested by fold (fitted on the other folds,
scored on the held-out one), then refitted on every OOF row for `inference.py --ensemble`."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from predict.fitted_ensemble import predict
from utils.bootstrap import fast_macro_f1
from utils.errors import DataError, UserError
from utils.labels import NUM_CLASSES
from utils.metrics import macro_f1
from utils.predictions import read_probability_frame
from utils.run_dir import PROB_COLUMNS, RunDir

LOG = logging.getLogger(__name__)
WEIGHT_GRID = np.linspace(0.0, 1.0, 21)
OFFSET_GRID = np.round(np.arange(-1.5, 1.51, 0.1), 2)


@dataclass
class OofSet:
    """The runs' out-of-fold probabilities on the same images: (runs, images, classes)."""

    probs: np.ndarray
    labels: np.ndarray
    folds: np.ndarray
    runs: list[str]


def read_oof(runs: Sequence[str | Path]) -> OofSet:
    """Every run's `oof.csv`, aligned by image path, each cell checked; the runs must be distinct and cover the
    same images with the same labels."""
    seen: dict[Path, str] = {}
    for run in runs:
        resolved = Path(run).resolve()
        if resolved in seen:
            raise UserError(f"--runs: {run} is given twice (as {seen[resolved]} before); an ensemble's members are "
                            "different runs")
        seen[resolved] = str(run)
    frames = []
    for run in runs:
        path = RunDir(run).oof
        if not path.is_file():
            raise UserError(f"{run}: no {path.name} (train it with train.py --all-folds)")
        frames.append(read_probability_frame(path, integer_columns=("fold",)).set_index("path"))
    first = frames[0]
    for run, frame in zip(runs[1:], frames[1:]):
        if not frame.index.equals(first.index):
            raise DataError(f"{run}: its oof.csv covers other images than {runs[0]} (train every run on the "
                            "same data)")
        if not (frame["label"].to_numpy() == first["label"].to_numpy()).all():
            raise DataError(f"{run}: its oof.csv labels differ from {runs[0]}'s")
    probs = np.stack([f[PROB_COLUMNS].to_numpy(dtype=np.float64) for f in frames])
    return OofSet(probs, first["label"].to_numpy(), first["fold"].to_numpy(), [str(Path(r).resolve()) for r in runs])


def fit_weights(probs: np.ndarray, labels: np.ndarray, passes: int = 3) -> np.ndarray:
    """Non-negative weights summing to 1 that maximise macro-F1 (coordinate ascent on a grid, from
    equal weights; ties keep the current weights)."""
    n = len(probs)
    weights = np.full(n, 1.0 / n)
    if n == 1:
        return weights
    best = fast_macro_f1(labels, predict(probs, weights, np.zeros(NUM_CLASSES)))
    for _ in range(passes):
        improved = False
        for r in range(n):
            for value in WEIGHT_GRID:
                trial = weights.copy()
                rest = 1.0 - value
                others = np.delete(trial, r)
                trial[np.arange(n) != r] = others / others.sum() * rest if others.sum() > 0 else rest / (n - 1)
                trial[r] = value
                score = fast_macro_f1(labels, predict(probs, trial, np.zeros(NUM_CLASSES)))
                if score > best + 1e-12:
                    best, weights, improved = score, trial, True
        if not improved:
            break
    return weights


def fit_offsets(probs: np.ndarray, weights: np.ndarray, labels: np.ndarray, passes: int = 3) -> np.ndarray:
    """Per-class log-probability offsets that maximise macro-F1 (coordinate ascent on a grid)."""
    offsets = np.zeros(NUM_CLASSES)
    best = fast_macro_f1(labels, predict(probs, weights, offsets))
    for _ in range(passes):
        improved = False
        for c in range(NUM_CLASSES):
            for value in OFFSET_GRID:
                trial = offsets.copy()
                trial[c] = value
                score = fast_macro_f1(labels, predict(probs, weights, trial))
                if score > best + 1e-12:
                    best, offsets, improved = score, trial, True
        if not improved:
            break
    return offsets


def nested_estimates(oof: OofSet) -> dict[str, float]:
    """Macro-F1 of raw mean / weighted / weighted + offsets, each fitted without the fold it scores."""
    n = len(oof.probs)
    preds = {"raw": np.empty(len(oof.labels), dtype=int), "weighted": np.empty(len(oof.labels), dtype=int),
             "weighted_offsets": np.empty(len(oof.labels), dtype=int)}
    for fold in np.unique(oof.folds):
        held, fit = oof.folds == fold, oof.folds != fold
        weights = fit_weights(oof.probs[:, fit], oof.labels[fit])
        offsets = fit_offsets(oof.probs[:, fit], weights, oof.labels[fit])
        zero = np.zeros(NUM_CLASSES)
        preds["raw"][held] = predict(oof.probs[:, held], np.full(n, 1.0 / n), zero)
        preds["weighted"][held] = predict(oof.probs[:, held], weights, zero)
        preds["weighted_offsets"][held] = predict(oof.probs[:, held], weights, offsets)
    return {step: macro_f1(oof.labels, pred) for step, pred in preds.items()}


def fit_ensemble(runs: Sequence[str | Path]) -> dict[str, Any]:
    """Honest estimates, then weights and offsets refitted on every OOF row. The rule used at inference
    is the step with the best honest estimate (raw mean, weighted, weighted + offsets)."""
    oof = read_oof(runs)
    honest = nested_estimates(oof)
    weights = fit_weights(oof.probs, oof.labels)
    offsets = fit_offsets(oof.probs, weights, oof.labels)
    n = len(oof.runs)
    in_sample = {"raw": macro_f1(oof.labels, predict(oof.probs, np.full(n, 1.0 / n), np.zeros(NUM_CLASSES))),
                 "weighted": macro_f1(oof.labels, predict(oof.probs, weights, np.zeros(NUM_CLASSES))),
                 "weighted_offsets": macro_f1(oof.labels, predict(oof.probs, weights, offsets))}
    chosen = max(honest, key=lambda step: (honest[step], -list(honest).index(step)))
    if chosen != "weighted_offsets":
        LOG.warning("honest estimate of weighted + offsets (%.4f) is not above %s (%.4f): the fit does not carry "
                    "to unseen folds, so inference uses %s", honest["weighted_offsets"], chosen, honest[chosen],
                    chosen.replace("_", " + "))
    if chosen == "raw":
        weights = np.full(n, 1.0 / n)
    if chosen != "weighted_offsets":
        offsets = np.zeros(NUM_CLASSES)
    return {"runs": oof.runs, "weights": [round(float(w), 6) for w in weights],
            "offsets": [round(float(o), 4) for o in offsets], "use": chosen,
            "estimates": {"honest": honest, "in_sample": in_sample}, "oof_images": int(len(oof.labels)),
            "per_run_oof_f1": {run: macro_f1(oof.labels, oof.probs[i].argmax(1)) for i, run in enumerate(oof.runs)}}
