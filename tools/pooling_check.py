"""What `--group-people` got, next to what it could get: `python -m tools.pooling_check PROBS GROUPS TRUTH`.

PROBS is `inference.py --probs` (its per-photo `prob_NN` columns), GROUPS the `groups.csv` written beside the
submission, TRUTH a truth file naming each photo's class and person (`tools.synthetic`'s eval_truth.csv). Prints
the grouping's purity and completeness against the true people, and macro-F1 per photo, pooled over the found
groups, and pooled over the true people (the ceiling: a perfect grouping under the same pooling rule), each
pooled score with its paired people-bootstrap interval against per-photo prediction.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from data_loader.people import read_csv_table
from predict.person_groups import completeness, pool_groups, purity
from tools.score import read_answers
from utils.bootstrap import paired_f1_delta
from utils.cli import as_script, cli_main
from utils.errors import DataError
from utils.metrics import macro_f1
from utils.run_dir import PROB_COLUMNS


def aligned(probs_csv: Path, groups_csv: Path, truth_csv: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                           np.ndarray]:
    """(per-photo probabilities, found groups, true classes, true people) in the truth file's photo order."""
    truth = read_answers(truth_csv)  # the scorer's reader: each ImageID once, each answer a class id
    if "person" not in truth.columns:
        raise DataError(f"{truth_csv}: missing column(s) person (pooling is judged per true person)")
    probs = read_csv_table(probs_csv, ("ImageID", *PROB_COLUMNS), "PROBS", unique="ImageID").set_index("ImageID")
    groups = read_csv_table(groups_csv, ("ImageID", "group"), "GROUPS", unique="ImageID").set_index("ImageID")
    for path, table in ((probs_csv, probs), (groups_csv, groups)):
        missing = set(truth["ImageID"]) - set(table.index)
        if missing:
            raise DataError(f"{path}: {len(missing)} photo(s) of {truth_csv} missing (first: {sorted(missing)[0]})")
    ids = truth["ImageID"]
    try:
        values = probs.loc[ids, list(PROB_COLUMNS)].astype(np.float64).to_numpy()
    except ValueError as err:
        raise DataError(f"{probs_csv}: a probability is not a number ({err})") from None
    if not np.isfinite(values).all():
        raise DataError(f"{probs_csv}: empty, NaN or infinite probabilities")
    return values, groups.loc[ids, "group"].to_numpy(), truth["ans"].to_numpy(), truth["person"].to_numpy()


def pooling_figures(probs: np.ndarray, groups: np.ndarray, labels: np.ndarray, people: np.ndarray) -> dict[str, Any]:
    """Purity, completeness, and F1 per photo, pooled over `groups` and over the true people, with intervals."""
    plain = probs.argmax(1)
    _, true_groups = np.unique(people, return_inverse=True)
    out: dict[str, Any] = {"photos": len(labels), "people": int(true_groups.max()) + 1,
                           "groups": len(set(groups.tolist())), "purity": purity(groups, people),
                           "completeness": completeness(groups, people), "f1": macro_f1(labels, plain)}
    for name, grouping in (("found", groups), ("ceiling", true_groups)):
        pooled = pool_groups(probs, grouping).argmax(1)
        delta, low, high = paired_f1_delta(labels, plain, pooled, people)
        out[name] = {"f1": macro_f1(labels, pooled), "delta": delta, "low": low, "high": high}
    return out


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("probs", type=Path, metavar="PROBS")
    parser.add_argument("groups", type=Path, metavar="GROUPS")
    parser.add_argument("truth", type=Path, metavar="TRUTH")
    args = parser.parse_args(argv)
    figures = pooling_figures(*aligned(args.probs, args.groups, args.truth))
    print(f"{figures['photos']} photos of {figures['people']} people in {figures['groups']} groups: purity "
          f"{figures['purity']:.3f}, completeness {figures['completeness']:.3f}")
    print(f"macro-F1 per photo {figures['f1']:.4f}")
    for name, label in (("found", "pooled over the found groups"), ("ceiling", "pooled over the true people")):
        row = figures[name]
        print(f"macro-F1 {label} {row['f1']:.4f} ({row['delta']:+.4f}, 95 % CI {row['low']:+.4f} … "
              f"{row['high']:+.4f})")
    return figures


script = as_script(main)

if __name__ == "__main__":
    main()
