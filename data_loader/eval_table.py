"""Read `eval/info.csv` and resolve each ImageID to its file, keeping the row order."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_loader.images import check_image
from data_loader.people import read_csv_table
from utils.errors import DataError


def read_eval_table(eval_dir: Path) -> pd.DataFrame:
    """`info.csv` rows in file order with a `path` column; a missing image is an error naming it."""
    eval_dir = Path(eval_dir)
    csv_path = eval_dir / "info.csv"
    table = read_csv_table(csv_path, ("ImageID",), "data.eval_dir")
    if table.empty:
        raise DataError(f"{csv_path}: no rows (a submission needs at least one ImageID)")
    paths = [eval_dir / "images" / image_id for image_id in table["ImageID"]]
    for row, path in enumerate(paths, start=2):
        if not path.is_file():
            raise DataError(f"{csv_path}: line {row}: image {path} not found")
        check_image(path)
    return table.assign(path=[str(p) for p in paths])


def submission_frame(table: pd.DataFrame, predictions) -> pd.DataFrame:
    """`ImageID,ans` in the order of `table`."""
    if len(predictions) != len(table):
        raise ValueError(f"{len(predictions)} predictions for {len(table)} rows")
    return pd.DataFrame({"ImageID": table["ImageID"].to_numpy(), "ans": [int(p) for p in predictions]})
