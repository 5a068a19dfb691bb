"""The files a prediction ends in: `submission.csv` and pseudo-labels (no torch needed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_loader.eval_table import submission_frame
from utils.io import atomic_write_text


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
