"""Score a submission: `python -m tools.score SUBMISSION TRUTH` prints its macro-F1."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from data_loader.people import int_cell, read_csv_table
from utils.cli import as_script, cli_main
from utils.errors import DataError
from utils.labels import NUM_CLASSES
from utils.metrics import classification_metrics


def read_answers(path: Path) -> pd.DataFrame:
    """An `ImageID,ans` CSV as the leaderboard takes it: each ImageID once, each answer a class id
    0..17; anything else is a one-line DataError naming the file and line."""
    frame = read_csv_table(Path(path), ("ImageID", "ans"), "a submission", unique="ImageID")
    if frame.empty:
        raise DataError(f"{path}: no rows")
    answers = [int_cell(a, 0, NUM_CLASSES - 1) for a in frame["ans"]]
    bad = next((i for i, a in enumerate(answers) if a is None), None)
    if bad is not None:
        raise DataError(f"{path}: line {bad + 2}: ans {frame['ans'].iloc[bad]!r} is not a class id "
                        f"0..{NUM_CLASSES - 1}")
    return frame.assign(ans=answers)


def score_files(submission: Path, truth: Path) -> dict[str, float]:
    """Accuracy and macro-F1 of `submission` against `truth` (both `ImageID,ans`), which must hold
    exactly the same ImageIDs, as the leaderboard requires."""
    sub, ref = read_answers(submission), read_answers(truth)
    unknown = sub.loc[~sub["ImageID"].isin(set(ref["ImageID"])), "ImageID"]
    if len(unknown):
        raise DataError(f"{submission}: {len(unknown)} ImageID(s) not in {truth} (first: {unknown.iloc[0]})")
    merged = ref.merge(sub, on="ImageID", how="left", suffixes=("_true", "_pred"))
    if merged["ans_pred"].isna().any():
        missing = merged.loc[merged["ans_pred"].isna(), "ImageID"]
        raise DataError(f"{submission}: no prediction for {len(missing)} ImageID(s) of {truth} (first: "
                        f"{missing.iloc[0]})")
    return classification_metrics(merged["ans_true"].to_numpy(), merged["ans_pred"].astype(int).to_numpy())


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("submission", type=Path)
    parser.add_argument("truth", type=Path)
    args = parser.parse_args(argv)
    result = score_files(args.submission, args.truth)
    print(f"{args.submission}: macro-F1 {result['f1']:.4f}, accuracy {result['acc']:.4f}")
    return result


script = as_script(main)

if __name__ == "__main__":
    main()
