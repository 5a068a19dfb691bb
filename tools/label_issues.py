"""Find label noise: `python -m tools.label_issues RUN [--threshold P]` on a K-fold run (its oof.csv).

Writes, in RUN: label_issues.csv (every suspect, ranked per field: gender, age, swap_mask), label_issues.png
(+ _2, _3 ...: each suspect's 7 photos with the written and the suggested label) and relabel_draft.csv (the
suspects at or above --threshold, in data.relabel's format). Review the sheet, delete the rows you disagree
with, then retrain with data.relabel=RUN/relabel_draft.csv. A single run's val_predictions.csv is accepted
(only its validation people are checked)."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, Optional, Sequence

from utils.cli import as_script, cli_main

LOG = logging.getLogger("label_issues")


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    from experiments.label_issues import DEFAULT_THRESHOLD

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("run", type=Path, metavar="RUN", help="a K-fold run directory (or a run)")
    parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, metavar="P",
                        help=f"pooled probability of the suggestion a drafted fix needs (default {DEFAULT_THRESHOLD})")
    parser.add_argument("--no-sheet", action="store_true", help="skip the review sheet (label_issues.png)")
    args = parser.parse_args(argv)
    if not 0.5 <= args.threshold <= 1.0:
        parser.error(f"--threshold {args.threshold:g}: must be in [0.5, 1] (a suggestion below 0.5 is not one)")
    return args


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    args = parse_args(argv)
    from experiments.label_issues import draft, find_label_issues, read_run
    from experiments.label_sheet import write_sheet
    from utils.io import atomic_write_text
    from utils.run_dir import RunDir

    run = RunDir(args.run)
    frame = read_run(run)
    table = find_label_issues(frame)
    fixes = draft(table, args.threshold, source=str(run.path))
    atomic_write_text(run.label_issues, table.drop(columns="value").to_csv(index=False))
    atomic_write_text(run.relabel_draft, fixes.to_csv(index=False))
    pages = [] if args.no_sheet else write_sheet(table, run.label_sheet)
    counts = table["field"].value_counts().to_dict()
    LOG.info("%d suspects (%s) among %d people; %d drafted at score >= %.2f: %s", len(table),
             ", ".join(f"{k} {v}" for k, v in counts.items()) or "none", frame["person"].nunique(), len(fixes),
             args.threshold, run.relabel_draft)
    for page in pages:
        LOG.info("review sheet: %s", page)
    return {"table": table, "draft": fixes, "pages": pages}


script = as_script(main)

if __name__ == "__main__":
    main()
