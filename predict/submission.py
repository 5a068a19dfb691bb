"""The files a prediction ends in: `submission.csv` and pseudo-labels (no torch needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_loader.eval_table import submission_frame
from utils.io import atomic_write_text
from utils.run_dir import PROB_COLUMNS

POOLED_COLUMNS = [c.replace("prob_", "pooled_") for c in PROB_COLUMNS]


def write_pseudo_labels(table: pd.DataFrame, probs: np.ndarray, scores: np.ndarray, out: Path,
                        min_prob: float = 0.9) -> int:
    """`ImageID,label,probability` for the eval images predicted with probability >= `min_prob`
    (for `data.pseudo_labels`); returns how many were kept."""
    labels = scores.argmax(axis=1)
    confidence = probs[np.arange(len(labels)), labels]
    keep = confidence >= min_prob
    frame = pd.DataFrame({"ImageID": table["ImageID"].to_numpy()[keep], "label": labels[keep],
                          "probability": np.round(confidence[keep], 6)})
    atomic_write_text(out, frame.to_csv(index=False))
    return int(keep.sum())


def write_submission(table: pd.DataFrame, probs: np.ndarray, out: Path) -> Path:
    """`ImageID,ans` in info.csv order (argmax of `probs`, or of any per-class scores), written atomically."""
    frame = submission_frame(table, probs.argmax(axis=1))
    atomic_write_text(out, frame.to_csv(index=False))
    return out


def write_probabilities(table: pd.DataFrame, probs: np.ndarray, out: Path, pooled: np.ndarray | None = None) -> Path:
    """`ImageID,prob_00..prob_17` in info.csv order (and `pooled_00..pooled_17` with --group-people), written
    atomically, for stacking outside the product."""
    frame = pd.DataFrame({"ImageID": table["ImageID"].to_numpy()})
    columns = [frame, pd.DataFrame(np.asarray(probs, dtype=np.float64), columns=PROB_COLUMNS)]
    if pooled is not None:
        columns.append(pd.DataFrame(np.asarray(pooled, dtype=np.float64), columns=POOLED_COLUMNS))
    atomic_write_text(out, pd.concat(columns, axis=1).to_csv(index=False, float_format="%.6g"))
    return out


def scores_to_probabilities(scores: np.ndarray) -> np.ndarray:
    """Probabilities from log-probability scores (a fitted ensemble's, class offsets added): a softmax, so
    their argmax is the submission's."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
