"""Is run B really better than run A? `python -m tools.compare RUN_A RUN_B [RUN_C ...]`

Each run after the first is compared with the first on the same validation people: Δ macro-F1 overall,
per task and for the classes that moved most, each with a 95 % interval from a paired bootstrap over
people (a person's photos are resampled together), the probability that it is better, and a verdict.
A run is a run directory (its val_predictions.csv), a K-fold run (its oof.csv), a repeated run
(`train.py --seeds N`: the seed spread is resampled too), a predictions CSV (`tools.score --predictions` writes
one for held-out data), or several CSVs joined by commas (one recipe's seeds on the same photos)."""
from __future__ import annotations

import argparse
import json
from typing import Any, Optional, Sequence

from utils.cli import as_script, cli_main


def parse_args(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories or predictions CSVs; the first is "
                        "the reference")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="the bootstrap's random seed (default 0)")
    parser.add_argument("--unpaired", action="store_true",
                        help="runs validated on different people: resample each side's people independently")
    parser.add_argument("--json", action="store_true", help="one JSON list, one object per compared run")
    return parser.parse_args(argv)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    from experiments.comparison import compare_runs, describe

    results = compare_runs(args.runs, n_resamples=args.resamples, seed=args.seed, unpaired=args.unpaired)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print("\n\n".join(describe(r) for r in results))
    return results


script = as_script(main)

if __name__ == "__main__":
    main()
