"""The people bootstrap: confidence intervals of macro-F1 and of differences in it, resampling people.

A person's 7 photos are near-duplicates, so photos are not independent draws: every resample draws
people with replacement and takes all photos of each drawn person (a cluster bootstrap). Resampled
scores come from confusion matrices, not from re-scoring photos: each person's confusion counts are
computed once, and a resample's confusion matrix is `counts @ per_person` (one matrix product for
all resamples). Macro-F1 follows scikit-learn's `f1_score(average="macro", zero_division=0)`: the
mean over the classes present in the resample's truth or prediction. NumPy only.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from utils.labels import NUM_CLASSES, TASK_SIZES, TASKS, split_classes

CONFIDENCE = 0.95
DEFAULT_RESAMPLES = 2000


def person_index(people: np.ndarray) -> tuple[np.ndarray, int]:
    """Each photo's person as 0..P-1 (in sorted order of the ids) and P."""
    _, index = np.unique(np.asarray(people), return_inverse=True)
    return index.astype(np.int64), int(index.max()) + 1 if len(index) else 0


def person_confusions(y_true: np.ndarray, y_pred: np.ndarray, person: np.ndarray, n_people: int,
                      n_classes: int = NUM_CLASSES) -> np.ndarray:
    """(P, C*C) counts: row p is person p's confusion matrix (truth-major), flattened."""
    cells = n_classes * n_classes
    flat = np.asarray(person) * cells + np.asarray(y_true) * n_classes + np.asarray(y_pred)
    return np.bincount(flat, minlength=n_people * cells).reshape(n_people, cells).astype(np.float64)


def resample_counts(n_people: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(B, P): how often each person is drawn in each resample of P people drawn with replacement."""
    draws = rng.integers(0, n_people, size=(n_resamples, n_people))
    offsets = np.arange(n_resamples)[:, None] * n_people
    return np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_people).reshape(
        n_resamples, n_people).astype(np.float64)


def resampled_images(person: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The photo indices of one resample (`counts`: one row of `resample_counts`): every photo of a
    drawn person, as often as the person was drawn. For checks against per-photo scorers."""
    return np.repeat(np.arange(len(person)), counts[np.asarray(person)].astype(np.int64))


def class_f1(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class F1 of (..., C, C) confusion matrices (truth rows) and which classes are present."""
    tp = np.diagonal(confusion, axis1=-2, axis2=-1)
    denominator = confusion.sum(axis=-1) + confusion.sum(axis=-2)
    present = denominator > 0
    f1 = np.divide(2 * tp, denominator, out=np.zeros_like(tp, dtype=np.float64), where=present)
    return f1, present


def macro_f1_of(confusion: np.ndarray) -> np.ndarray:
    """scikit-learn's macro-F1 (classes present in truth or prediction) of (..., C, C) matrices."""
    f1, present = class_f1(confusion)
    return f1.sum(axis=-1) / np.maximum(present.sum(axis=-1), 1)


def fast_macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """`utils.metrics.macro_f1` of one prediction from one bincount (for fits that score thousands of rules)."""
    counts = np.bincount(np.asarray(y_true) * NUM_CLASSES + np.asarray(y_pred), minlength=NUM_CLASSES**2)
    return float(macro_f1_of(counts.reshape(NUM_CLASSES, NUM_CLASSES)))


def task_projection(task: str) -> np.ndarray:
    """(18, k) one-hot matrix mapping each class to its group of `task` (mask, gender or age)."""
    groups = split_classes(np.arange(NUM_CLASSES))[TASKS.index(task)]
    return np.eye(TASK_SIZES[TASKS.index(task)])[groups]


def scores_of(confusion: np.ndarray) -> dict[str, np.ndarray]:
    """Macro-F1 overall (`f1`), per task (`f1_mask`, ...) and per class (`f1_c00`, ...) of (..., 18*18)
    flattened confusion matrices; each value has the leading shape."""
    conf = confusion.reshape(*confusion.shape[:-1], NUM_CLASSES, NUM_CLASSES)
    out = {"f1": macro_f1_of(conf)}
    for task in TASKS:
        m = task_projection(task)
        out[f"f1_{task}"] = macro_f1_of(m.T @ conf @ m)
    per_class, _ = class_f1(conf)
    out.update({f"f1_c{c:02d}": per_class[..., c] for c in range(NUM_CLASSES)})
    return out


def interval(samples: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The percentile interval of bootstrap samples."""
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


def f1_half_width(y_true: np.ndarray, y_pred: np.ndarray, people: np.ndarray, *,
                  n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0,
                  rng: Optional[np.random.Generator] = None) -> float:
    """Half the width of the 95 % people-bootstrap interval of one set's macro-F1 (the run table's ±)."""
    person, n_people = person_index(people)
    if n_people == 0:
        return float("nan")
    rng = rng if rng is not None else np.random.default_rng(seed)
    conf = resample_counts(n_people, n_resamples, rng) @ person_confusions(y_true, y_pred, person, n_people)
    low, high = interval(macro_f1_of(conf.reshape(-1, NUM_CLASSES, NUM_CLASSES)))
    return (high - low) / 2


def paired_f1_delta(y_true: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, people: np.ndarray, *,
                    n_resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> tuple[float, float, float]:
    """Macro-F1 of `pred_b` minus that of `pred_a` on the same photos, and the 95 % interval of the difference
    (both predictions scored on the same resampled people)."""
    person, n_people = person_index(people)
    if n_people == 0:
        return float("nan"), float("nan"), float("nan")
    counts = resample_counts(n_people, n_resamples, np.random.default_rng(seed))
    conf_a, conf_b = (person_confusions(y_true, pred, person, n_people) for pred in (pred_a, pred_b))

    def f1(conf: np.ndarray) -> np.ndarray:
        return macro_f1_of(conf.reshape(*conf.shape[:-1], NUM_CLASSES, NUM_CLASSES))
    delta = float(f1(conf_b.sum(axis=0)) - f1(conf_a.sum(axis=0)))
    return (delta, *interval(f1(counts @ conf_b) - f1(counts @ conf_a)))
