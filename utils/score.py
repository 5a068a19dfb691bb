"""Score a submission: `python -m utils.score SUBMISSION TRUTH` prints its macro-F1."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from utils.errors import DataError, cli_main
from utils.metrics import classification_metrics


def score_files(submission: Path, truth: Path) -> dict[str, float]:
    """Accuracy and macro-F1 of `submission` against `truth` (both `ImageID,ans`)."""
    sub = pd.read_csv(submission, dtype={"ImageID": str})
    ref = pd.read_csv(truth, dtype={"ImageID": str})
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


if __name__ == "__main__":
    main()
