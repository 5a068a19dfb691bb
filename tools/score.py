"""Score a submission: `python -m tools.score SUBMISSION TRUTH [--predictions OUT]` prints its macro-F1; with
`--predictions`, and a truth file that names each photo's `person` (as `tools.synthetic`'s eval_truth.csv does),
it also writes the photos' predictions in the format of `val_predictions.csv`, so `tools.compare` pairs two
models person by person on held-out data."""
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
from utils.outputs import check_outputs
from utils.predictions import write_predictions


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


def scored_rows(submission: Path, truth: Path) -> pd.DataFrame:
    """`truth`'s rows with `ans_true` and `ans_pred` (and `person` where the truth has it); both files must hold
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
    return merged.assign(ans_pred=merged["ans_pred"].astype(int))


def score_rows(merged: pd.DataFrame) -> dict[str, float]:
    """Accuracy and macro-F1 of `scored_rows`."""
    return classification_metrics(merged["ans_true"].to_numpy(), merged["ans_pred"].to_numpy())


def score_files(submission: Path, truth: Path) -> dict[str, float]:
    """Accuracy and macro-F1 of `submission` against `truth` (both `ImageID,ans`, the same ImageIDs)."""
    return score_rows(scored_rows(submission, truth))


def write_eval_predictions(merged: pd.DataFrame, truth: Path, out: Path) -> int:
    """The scored photos (`scored_rows` of `truth`) as `path, person, label, pred` rows (`utils.predictions`) at
    `out`; returns the row count. The truth must name each photo's person."""
    if "person" not in merged.columns:
        raise DataError(f"{truth}: no person column, so predictions cannot be paired by person (--predictions)")
    frame = pd.DataFrame({"path": merged["ImageID"], "person": merged["person"], "label": merged["ans_true"],
                          "pred": merged["ans_pred"]})
    write_predictions(out, frame)
    return len(frame)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("submission", type=Path)
    parser.add_argument("truth", type=Path)
    parser.add_argument("--predictions", type=Path, metavar="OUT",
                        help="also write the photos' predictions with their person (for tools.compare)")
    args = parser.parse_args(argv)
    if args.predictions is not None:
        check_outputs({"--predictions": args.predictions}, {"SUBMISSION": [args.submission], "TRUTH": [args.truth]})
    merged = scored_rows(args.submission, args.truth)  # both files read once, for the score and the predictions
    result = score_rows(merged)
    print(f"{args.submission}: macro-F1 {result['f1']:.4f}, accuracy {result['acc']:.4f}")
    if args.predictions is not None:
        rows = write_eval_predictions(merged, args.truth, args.predictions)
        print(f"wrote {args.predictions} ({rows} photos, paired by person in tools.compare)")
    return result


script = as_script(main)

if __name__ == "__main__":
    main()
