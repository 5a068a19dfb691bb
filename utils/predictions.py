"""A run's per-photo validation predictions: `val_predictions.csv` (one run) and `oof.csv` (K-fold),
written and read back in one format. NumPy and pandas only (the comparison and the run table read them
without torch).

Columns: `path` (the photo), `person` (its person folder, the unit the people bootstrap resamples),
`label` (the competition's class id), `pred` (argmax), then `prob_00` … `prob_17`; `oof.csv` adds `fold`.
Files written before `person` existed get it from the path (a training photo's folder is its person).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from utils.errors import DataError
from utils.io import atomic_write_text
from utils.labels import NUM_CLASSES
from utils.run_dir import PROB_COLUMNS

PREDICTION_COLUMNS = ["path", "person", "label", "pred"]


def person_of(path: str) -> str:
    """The person a training photo belongs to: its folder (`images/000001_female_Asian_45/mask1.jpg`)."""
    return Path(path).parent.name


def predictions_frame(paths: Sequence[str], y_true: np.ndarray, probs: np.ndarray,
                      fold: Optional[int] = None) -> pd.DataFrame:
    """One row per photo: path, person, label, prediction, (fold,) probabilities."""
    frame = pd.DataFrame({"path": list(paths), "person": [person_of(p) for p in paths],
                          "label": np.asarray(y_true, dtype=np.int64), "pred": np.asarray(probs).argmax(axis=1)})
    if fold is not None:
        frame.insert(1, "fold", fold)
    return pd.concat([frame, pd.DataFrame(np.asarray(probs), columns=PROB_COLUMNS)], axis=1)


def write_predictions(path: Path, frame: pd.DataFrame) -> None:
    """Written atomically (temp file, then rename)."""
    atomic_write_text(path, frame.to_csv(index=False))


@dataclass(frozen=True)
class Predictions:
    """One set of per-photo predictions, sorted by photo path."""

    source: Path
    paths: np.ndarray
    people: np.ndarray
    labels: np.ndarray
    preds: np.ndarray

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def n_people(self) -> int:
        return len(np.unique(self.people))


def class_column(frame: pd.DataFrame, column: str, source: Path) -> np.ndarray:
    """A column of class ids in 0..17 (written as integers or floats such as `3.0`), else one line."""
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0) | (values >= NUM_CLASSES)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{source}: line {row + 2}: {column} {frame[column].iloc[row]!r} is not a class id 0-17")
    return values.astype(np.int64)


def read_frame(source: Path) -> pd.DataFrame:
    """The CSV of a predictions file as strings (every cell: ids such as `0042` stay text, and a bad cell is shown
    as written), column names cleaned; one line naming the file if unreadable."""
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise DataError(f"{source}: not found") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{source}: cannot parse CSV ({type(err).__name__})") from None
    frame.columns = [str(c).strip().lstrip("\ufeff") for c in frame.columns]
    return frame


def read_predictions(source: Path, frame: Optional[pd.DataFrame] = None) -> Predictions:
    """`val_predictions.csv` or `oof.csv` (or its `frame`, already read); a missing column or a bad cell is one
    line naming the file."""
    frame = read_frame(source) if frame is None else frame.copy()
    missing = [c for c in ("path", "label") if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column {missing[0]!r} (not a val_predictions.csv or oof.csv)")
    if "pred" not in frame.columns:
        if not set(PROB_COLUMNS) <= set(frame.columns):
            raise DataError(f"{source}: missing column 'pred' (and no prob_00..prob_17 to take it from)")
        frame["pred"] = probability_columns(frame, source).argmax(axis=1)
    if frame["path"].duplicated().any():
        raise DataError(f"{source}: photo {frame['path'][frame['path'].duplicated()].iloc[0]} listed twice")
    labels, preds = class_column(frame, "label", source), class_column(frame, "pred", source)
    people = frame["person"] if "person" in frame.columns else frame["path"].map(person_of)
    paths = frame["path"].to_numpy(dtype=str)
    order = np.argsort(paths, kind="stable")
    return Predictions(source=Path(source), paths=paths[order], people=people.to_numpy(dtype=str)[order],
                       labels=labels[order], preds=preds[order])


def probability_columns(frame: pd.DataFrame, source: Path) -> np.ndarray:
    """prob_00..prob_17 as an (N, 18) array, each cell a finite number >= 0, else one line naming file and line."""
    missing = [c for c in PROB_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"{source}: missing column {missing[0]!r}")
    probs = frame[PROB_COLUMNS].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(probs).all(axis=1) | (probs < 0).any(axis=1)
    if bad.any():
        raise DataError(f"{source}: line {int(np.flatnonzero(bad)[0]) + 2}: probabilities are not finite and >= 0")
    return probs


def read_probability_frame(source: Path, integer_columns: Sequence[str] = ()) -> pd.DataFrame:
    """path, person, label and the probabilities of a predictions file (and `integer_columns`, e.g. `fold`),
    sorted by path, each cell checked (one line naming the file); the file is read once."""
    frame = read_frame(source)
    checked = read_predictions(source, frame)  # columns, class ids, duplicates
    frame[PROB_COLUMNS] = probability_columns(frame, source)
    for column in integer_columns:
        if column not in frame.columns:
            raise DataError(f"{source}: missing column {column!r}")
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(values) | (values != np.round(values)) | (values < 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            cell = str(frame[column].iloc[row])
            raise DataError(f"{source}: line {row + 2}: {column} {cell!r} is not a whole number")
        frame[column] = values.astype(np.int64)
    order = np.argsort(frame["path"].to_numpy(dtype=str), kind="stable")
    frame = frame.iloc[order].reset_index(drop=True)
    return frame.assign(person=checked.people, label=checked.labels, pred=checked.preds)
