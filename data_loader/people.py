"""Read `train.csv` and the person folders into tables; every file quirk is handled here, once."""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from data_loader.images import check_image
from utils.errors import DataError
from utils.labels import DEFAULT_AGE_BOUNDS, GENDER_NAMES, MASK_BY_STEM, age_group, encode, gender_id

LOG = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
TRAIN_COLUMNS = ("id", "gender", "race", "age", "path")
AGE_RANGE = (0, 120)


def is_junk(path: Path) -> bool:
    """macOS AppleDouble files (`._mask1.jpg`) and other hidden files are not images."""
    return path.name.startswith(".")


@dataclass(frozen=True)
class Problem:
    """Something odd in the data. Junk and unexpected files are only reported; the rest are errors."""

    kind: str  # missing_folder | missing | duplicate | unreadable | junk | unexpected
    path: str
    message: str

    @property
    def fatal(self) -> bool:
        return self.kind not in ("junk", "unexpected")


def inspect_person_folder(folder: Path) -> tuple[dict[str, Path], list[Problem]]:
    """Map each expected stem (mask1..5, incorrect_mask, normal) to its file, matched by stem, and
    list what is wrong or odd: missing stems, two files for one stem, junk, unexpected files."""
    by_stem: dict[str, Path] = {}
    problems: list[Problem] = []
    for path in sorted(p for p in folder.iterdir() if p.is_file()):
        if is_junk(path):
            problems.append(Problem("junk", str(path), f"{path}: junk file ignored"))
        elif path.suffix.lower() not in IMAGE_EXTENSIONS or path.stem not in MASK_BY_STEM:
            problems.append(Problem("unexpected", str(path), f"{path}: unexpected file name ignored"))
        elif path.stem in by_stem:
            message = f"{folder}: two files for {path.stem!r}: {by_stem[path.stem].name}, {path.name}"
            problems.append(Problem("duplicate", str(path), message))
        else:
            by_stem[path.stem] = path
    missing = [s for s in MASK_BY_STEM if s not in by_stem]
    if missing:
        problems.append(Problem("missing", str(folder), f"{folder}: missing image(s) {', '.join(missing)}"))
    return by_stem, problems


def int_cell(text: str, low: int, high: int) -> Optional[int]:
    """`text` as an integer in [low, high], or None: ASCII digits only (`int('²')` raises and
    `'²'.isdigit()` is true, so neither is used alone); a whole number written as a float by a spreadsheet
    (`45.0`) is that integer."""
    match = re.fullmatch(r"([0-9]+)(?:\.0*)?", text.strip())
    if match is None or not low <= int(match.group(1)) <= high:
        return None
    return int(match.group(1))


def read_csv_table(csv_path: Path, columns: Sequence[str], config_key: str, unique: Optional[str] = None
                   ) -> pd.DataFrame:
    """The one reader of the CSV files users hand us: strings (ids keep their leading zeros), `columns`
    present, `unique` (a column) without repeats; errors name the file (and line)."""
    if not csv_path.is_file():
        folder_key = config_key in ("data.train_dir", "data.eval_dir")  # a file key (data.pseudo_labels) gets no hint
        hint = f" ({config_key} must hold {csv_path.name} and images/)" if folder_key else ""
        raise DataError(f"{csv_path}: not found{hint}")
    try:  # pandas drops a UTF-8 byte-order mark and reads Windows line endings
        df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DataError(f"{csv_path}: cannot parse CSV ({err.__class__.__name__})") from None
    df.columns = [str(c).strip() for c in df.columns]  # spreadsheets pad names and cells with spaces
    df = df.apply(lambda column: column.str.strip())
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{csv_path}: missing column(s) {', '.join(missing)}")
    if unique is not None and df[unique].duplicated().any():
        first = df[unique][df[unique].duplicated()].iloc[0]
        line = int(df.index[df[unique] == first][1]) + 2
        raise DataError(f"{csv_path}: line {line}: {unique} {first!r} appears more than once")
    return df


def read_train_csv(train_dir: Path) -> pd.DataFrame:
    """One row per person: id (str), gender (str), age (int), path (str). Validated."""
    csv_path = Path(train_dir) / "train.csv"
    df = read_csv_table(csv_path, TRAIN_COLUMNS, "data.train_dir")
    df = df.assign(gender=df["gender"].str.lower())  # "Female" from another system is female
    ages = [int_cell(age, *AGE_RANGE) for age in df["age"]]
    for row, (pid, gender, age, value) in enumerate(zip(df["id"], df["gender"], df["age"], ages), start=2):
        if gender not in GENDER_NAMES:
            raise DataError(f"{csv_path}: line {row}: gender {gender!r} is not male/female")
        if value is None:
            raise DataError(f"{csv_path}: line {row}: age {age!r} is not an integer in {list(AGE_RANGE)}")
        if not pid:
            raise DataError(f"{csv_path}: line {row}: empty id")
    dup = df["id"][df["id"].duplicated()]
    if len(dup):
        raise DataError(f"{csv_path}: duplicated id {dup.iloc[0]!r}")
    same_folder = df["path"][df["path"].duplicated()]
    if len(same_folder):
        ids = df["id"][df["path"] == same_folder.iloc[0]].tolist()
        raise DataError(f"{csv_path}: folder {same_folder.iloc[0]!r} is listed under ids {', '.join(ids)} "
                        "(one person twice would sit on both sides of the split)")
    df = df.assign(age=ages)
    return df[list(TRAIN_COLUMNS)].reset_index(drop=True)


IMAGE_COLUMNS = ["person_id", "gender", "age", "age_group", "mask", "label", "path"]


def scan_train_images(
    train_dir: Path, age_bounds: Sequence[int] = DEFAULT_AGE_BOUNDS
) -> tuple[pd.DataFrame, list[Problem]]:
    """Every usable image (one row each: person_id, gender, age, age_group, mask, label, path)
    and every problem found. A person with a missing or doubled image is left out whole."""
    train_dir = Path(train_dir)
    rows, problems = [], []
    for person in read_train_csv(train_dir).itertuples(index=False):
        folder = train_dir / "images" / person.path
        if not folder.is_dir():
            message = f"{folder}: person folder not found (train.csv id {person.id})"
            problems.append(Problem("missing_folder", str(folder), message))
            continue
        files, found = inspect_person_folder(folder)
        problems += found
        if any(p.fatal for p in found):
            continue
        gender, group = gender_id(person.gender), age_group(person.age, age_bounds)
        for stem, path in files.items():
            try:
                check_image(path)
            except DataError as err:
                problems.append(Problem("unreadable", str(path), str(err)))
                continue
            mask = MASK_BY_STEM[stem]
            rows.append((person.id, gender, person.age, group, mask, encode(mask, gender, group), str(path)))
    return pd.DataFrame(rows, columns=IMAGE_COLUMNS), problems


def list_train_images(
    train_dir: Path,
    age_bounds: Sequence[int] = DEFAULT_AGE_BOUNDS,
    skip_bad_images: bool = False,
) -> pd.DataFrame:
    """One row per usable image (see `scan_train_images`).

    The first bad folder/image raises `DataError`; with `skip_bad_images` they are left out with one warning.
    """
    images, problems = scan_train_images(train_dir, age_bounds)
    fatal = [p.message for p in problems if p.fatal]
    if fatal and not skip_bad_images:
        raise DataError(fatal[0])
    if fatal:
        LOG.warning("skipped %d bad item(s): %s", len(fatal), "; ".join(fatal))
    return images
