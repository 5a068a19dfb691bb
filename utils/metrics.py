"""The competition's scores of a whole set of predictions: macro-F1 (overall, per task, per class)."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from utils.labels import NUM_CLASSES, TASKS, split_classes


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes present in truth or prediction (the competition metric)."""
    return float(f1_score(y_true, y_pred, average="macro", zero_division=0))


def task_labels(y: np.ndarray) -> dict[str, np.ndarray]:
    """Split 18-class ids into mask, gender and age-group ids (inverse of `labels.encode`)."""
    return dict(zip(TASKS, split_classes(np.asarray(y))))


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, detail: bool = False,
                           tasks: bool = False) -> dict[str, float]:
    """Accuracy and macro-F1 of one whole set; with `tasks` or `detail`, also per-task F1 (`f1_mask`, ...);
    with `detail`, per-class F1 too (`f1_c00` ... `f1_c17`, 0 for a class absent from truth and prediction)."""
    out = {"acc": float(accuracy_score(y_true, y_pred)), "f1": macro_f1(y_true, y_pred)}
    if detail or tasks:
        true_tasks, pred_tasks = task_labels(y_true), task_labels(y_pred)
        out.update({f"f1_{t}": macro_f1(true_tasks[t], pred_tasks[t]) for t in TASKS})
    if detail:
        per_class = f1_score(y_true, y_pred, labels=range(NUM_CLASSES), average=None, zero_division=0)
        out.update({f"f1_c{c:02d}": float(v) for c, v in enumerate(per_class)})
    return out
