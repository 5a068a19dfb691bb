"""Score a submission: `python -m tools.score SUBMISSION TRUTH` prints its macro-F1."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from utils.errors import DataError, as_script, cli_main
from utils.metrics import classification_metrics


def read_answers(path: Path) -> pd.DataFrame:
    """An `ImageID,ans` CSV with integer answers; anything else is a one-line DataError naming it."""
    try:
        frame = pd.read_csv(path, dtype={"ImageID": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: cannot parse CSV ({type(err).__name__})") from None
    missing = [c for c in ("ImageID", "ans") if c not in frame.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {', '.join(missing)}")
    answers = pd.to_numeric(frame["ans"], errors="coerce")
    if answers.isna().any() or (answers % 1 != 0).any():
        raise DataError(f"{path}: ans must be integers, got {frame['ans'][answers.isna()].iloc[0]!r}"
                        if answers.isna().any() else f"{path}: ans must be integers")
    return frame.assign(ans=answers.astype(int))


def score_files(submission: Path, truth: Path) -> dict[str, float]:
    """Accuracy and macro-F1 of `submission` against `truth` (both `ImageID,ans`)."""
    sub, ref = read_answers(submission), read_answers(truth)
    merged = ref.merge(sub, on="ImageID", how="left", suffixes=("_true", "_pred"))
    if merged["ans_pred"].isna().any():
        missing = merged.loc[merged["ans_pred"].isna(), "ImageID"].iloc[0]
        raise DataError(f"{submission}: no prediction for {missing}")
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
