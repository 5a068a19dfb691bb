"""Read `eval/info.csv` and resolve each ImageID to its file, keeping the row order."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_loader.images import check_image
from data_loader.people import int_cell, read_csv_table
from utils.errors import DataError
from utils.labels import NUM_CLASSES


def read_eval_table(eval_dir: Path) -> pd.DataFrame:
    """`info.csv` rows in file order with a `path` column; a missing image is an error naming it."""
    eval_dir = Path(eval_dir)
    csv_path = eval_dir / "info.csv"
    table = read_csv_table(csv_path, ("ImageID",), "data.eval_dir", unique="ImageID")
    if table.empty:
        raise DataError(f"{csv_path}: no rows (a submission needs at least one ImageID)")
    paths = [eval_dir / "images" / image_id for image_id in table["ImageID"]]
    for row, path in enumerate(paths, start=2):
        if not path.is_file():
            raise DataError(f"{csv_path}: line {row}: image {path} not found")
        check_image(path)
    return table.assign(path=[str(p) for p in paths])


def read_pseudo_labels(path: Path, eval_dir: Path) -> pd.DataFrame:
    """`ImageID,label[,probability]` rows written by `inference.py --pseudo-labels`, with a `path` column
    into `eval_dir/images`; errors name the file and line."""
    table = read_csv_table(Path(path), ("ImageID", "label"), "data.pseudo_labels", unique="ImageID")
    for row, (image_id, label) in enumerate(zip(table["ImageID"], table["label"]), start=2):
        if int_cell(label, 0, NUM_CLASSES - 1) is None:
            raise DataError(f"{path}: line {row}: label {label!r} is not a class id 0..{NUM_CLASSES - 1}")
        if not (Path(eval_dir) / "images" / image_id).is_file():
            raise DataError(f"{path}: line {row}: image {image_id} not found in {Path(eval_dir) / 'images'}")
    paths = [str(Path(eval_dir) / "images" / image_id) for image_id in table["ImageID"]]
    return table.assign(label=[int(label) for label in table["label"]], path=paths)


def submission_frame(table: pd.DataFrame, predictions) -> pd.DataFrame:
    """`ImageID,ans` in the order of `table`."""
    if len(predictions) != len(table):
        raise ValueError(f"{len(predictions)} predictions for {len(table)} rows")
    return pd.DataFrame({"ImageID": table["ImageID"].to_numpy(), "ans": [int(p) for p in predictions]})
