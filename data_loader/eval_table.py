"""Read `eval/info.csv` and resolve each ImageID to its file, keeping the row order."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from data_loader.people import check_image
from utils.errors import DataError

INFO_COLUMNS = ("ImageID", "ans")


def read_eval_table(eval_dir: Path) -> pd.DataFrame:
    """`info.csv` rows in file order with a `path` column; a missing image is an error naming it."""
    eval_dir = Path(eval_dir)
    csv_path = eval_dir / "info.csv"
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: not found (data.eval_dir must hold info.csv and images/)")
    try:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{csv_path}: cannot parse CSV ({err.__class__.__name__})") from None
    if "ImageID" not in table.columns:
        raise DataError(f"{csv_path}: missing column ImageID")
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
