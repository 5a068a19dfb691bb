"""Search a recipe: `python tune.py --config CONFIG --space SPACE.yaml [--trials N] [--timeout S]
[--storage URL] [--study NAME] [key=value ...]`."""
from __future__ import annotations

import argparse
import logging
import math
from pathlib import Path
from typing import Optional, Sequence

from utils.cli import as_script, cli_main

LOG = logging.getLogger("tune")
EPILOG = ("Each trial is an ordinary run in saved/<name>/tune/trial_NNNN/. The search space format and "
          "the outputs: docs/search.md.")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=EPILOG)
    what = parser.add_argument_group("what to search")
    what.add_argument("--config", type=Path, required=True, metavar="YAML", help="base config, e.g. configs/demo.yaml")
    what.add_argument("--space", type=Path, required=True, metavar="SPACE.yaml",
                      help="config keys -> distributions, pruner, sampler (e.g. configs/search/demo.yaml)")
    budget = parser.add_argument_group("budget and storage")
    budget.add_argument("--trials", type=int, default=20, metavar="N",
                        help="finished (complete or pruned) trials the study should hold (default 20)")
    budget.add_argument("--timeout", type=float, metavar="SECONDS", help="stop starting trials after this long")
    budget.add_argument("--storage", metavar="URL", help="Optuna RDB URL shared by every machine "
                        "(default: sqlite:///saved/<name>/tune/study.db)")
    budget.add_argument("--study", metavar="NAME", help="study name (default: the config's name)")
    budget.add_argument("--heartbeat", type=int, default=60, metavar="SECONDS",
                        help="trial heartbeat; a trial silent for twice this is marked failed (killed runs)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value", help="overrides of the base config")
    args = parser.parse_intermixed_args(argv)
    from utils.errors import UserError

    for flag, value in (("--trials", args.trials), ("--heartbeat", args.heartbeat)):
        if value < 1:
            raise UserError(f"{flag} {value}: must be at least 1")
    if args.timeout is not None and not (math.isfinite(args.timeout) and args.timeout > 0):
        raise UserError(f"--timeout {args.timeout:g}: give a number of seconds above 0 (leave it out for no limit)")
    return args


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from utils.config import load_config

    load_config(args.config, args.overrides)  # a typo is one line before torch is imported
    from experiments.search import run_study

    out = run_study(args.config, args.space, trials=args.trials, timeout=args.timeout, storage=args.storage,
                    study_name=args.study, overrides=args.overrides, heartbeat=args.heartbeat)
    table = out["trials"]
    shown = table.drop(columns=["run_dir"]) if "run_dir" in table else table
    print(shown.to_string(index=False) if len(table) else "no trials")
    if "best_config" in out:
        print(f"best: trial {out['best_trial']} ({out['best_value']:.4f}); config: {out['best_config']} "
              f"(python train.py --config {out['best_config']})")
    if out.get("judged"):
        print(out["judged"])
    for plot in out["plots"]:
        print(f"plot: {plot}")
    return out


script = as_script(main)

if __name__ == "__main__":
    main()
