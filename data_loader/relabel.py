"""Label fixes applied at load time: `data.relabel: fixes.csv` with columns `id,field,value`.

`field` is `gender` (value male/female), `age` (an integer) or `swap_mask` (value ignored: the
person's `incorrect_mask` and `normal` photos trade labels). Ids are person ids from train.csv. A list whose
ids are partly unknown is used with a warning (a list made for the full data set); a draft written by
`tools.label_issues` (it has a `source` column) must name only people of the data set.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from data_loader.people import AGE_RANGE, int_cell, read_csv_table
from utils.errors import DataError
from utils.labels import GENDER_NAMES, age_group, encode, gender_id

LOG = logging.getLogger(__name__)
FIELDS = ("gender", "age", "swap_mask")
DATA_KEY = "data.train_dir"


def read_fixes(path: Path) -> pd.DataFrame:
    """The fixes table, validated; errors name the file and line."""
    fixes = read_csv_table(Path(path), ("id", "field", "value"), "data.relabel")
    fields = fixes["field"].str.lower()  # a list saved by a spreadsheet: "Gender", "MALE", "45.0"
    fixes = fixes.assign(field=fields, value=fixes["value"].where(fields != "gender", fixes["value"].str.lower()))
    values = list(fixes["value"])
    for line, (field, value) in enumerate(zip(fixes["field"], fixes["value"]), start=2):
        if field not in FIELDS:
            raise DataError(f"{path}: line {line}: field {field!r} is not one of {', '.join(FIELDS)}")
        if field == "gender" and value not in GENDER_NAMES:
            raise DataError(f"{path}: line {line}: gender {value!r} is not male/female")
        if field == "age":
            age = int_cell(value, *AGE_RANGE)
            if age is None:
                raise DataError(f"{path}: line {line}: age {value!r} is not an integer in {list(AGE_RANGE)}")
            values[line - 2] = str(age)  # canonical, so every reader of the table sees the integer
    return fixes.assign(value=values)


def apply_fixes(images: pd.DataFrame, path: Path, age_bounds: Sequence[int]) -> pd.DataFrame:
    """A copy of the per-image table with the fixes in `path` applied and labels recomputed."""
    fixes = read_fixes(path)
    images = images.copy()
    known = set(images["person_id"])
    absent = fixes.loc[~fixes["id"].isin(known), "id"]
    if len(absent) and "source" in fixes.columns:  # a draft of tools.label_issues: made for this data set
        line = int(absent.index[0]) + 2
        raise DataError(f"{path}: line {line}: id {absent.iloc[0]!r} is not a person of {DATA_KEY} (a draft of "
                        "tools.label_issues names only people of the data it was made from)")
    if len(absent) == len(fixes) and len(fixes):
        raise DataError(f"{path}: none of its {len(fixes)} fixes names a person of this data set (first: "
                        f"{absent.iloc[0]!r}); is it the list for other data?")
    if len(absent):  # a list made for the full data set, used on a part of it or on other data
        LOG.warning("relabel %s: %d of %d fixes name people not in this data set (first: %r); they are skipped",
                    path, len(absent), len(fixes), absent.iloc[0])
    fixes = fixes[fixes["id"].isin(known)]
    for fix in fixes.itertuples(index=False):
        rows = images["person_id"] == fix.id
        if fix.field == "gender":
            images.loc[rows, "gender"] = gender_id(fix.value)
        elif fix.field == "age":
            images.loc[rows, "age"] = int(fix.value)
            images.loc[rows, "age_group"] = age_group(int(fix.value), age_bounds)
        else:
            images.loc[rows, "mask"] = images.loc[rows, "mask"].map({0: 0, 1: 2, 2: 1})
    images["label"] = [encode(m, g, a) for m, g, a in zip(images["mask"], images["gender"], images["age_group"])]
    counts = fixes["field"].value_counts().to_dict()
    LOG.info("relabel %s: %d fix(es) applied (%s)", path, len(fixes), ", ".join(f"{k} {v}" for k, v in counts.items()))
    return images
