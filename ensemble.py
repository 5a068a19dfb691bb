"""Fit an ensemble on out-of-fold predictions: `python ensemble.py --runs RUN_A RUN_B ... [--out ensemble.yaml]`.

Each RUN is a `train.py --all-folds` run (with oof.csv) over the same people, any backbone. Prints
honest estimates (nested by fold) of the raw mean, the fitted weights and weights + per-class offsets,
and writes the ensemble for `python inference.py --ensemble ensemble.yaml [--tta]`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from utils.cli import as_script, cli_main

LOG = logging.getLogger("ensemble")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=Path, nargs="+", required=True, metavar="RUN",
                        help="K-fold run directories holding oof.csv (one run: offsets only)")
    parser.add_argument("--out", type=Path, default=Path("ensemble.yaml"), metavar="YAML",
                        help="where to write the ensemble (default: ensemble.yaml)")
    return parser.parse_args(argv)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from experiments.ensemble import fit_ensemble
    from predict.fitted_ensemble import save_ensemble
    from utils.outputs import check_outputs
    from utils.run_dir import RunDir

    check_outputs({"--out": args.out}, {"an oof.csv": [RunDir(r).oof for r in args.runs]})
    spec = fit_ensemble(args.runs)
    honest, fitted = spec["estimates"]["honest"], spec["estimates"]["in_sample"]
    for run, score in spec["per_run_oof_f1"].items():
        print(f"OOF macro-F1 {score:.4f}  {run}")
    for step in ("raw", "weighted", "weighted_offsets"):
        print(f"{step:<17} honest {honest[step]:.4f}   in-sample {fitted[step]:.4f}")
    print(f"weights {spec['weights']}; inference uses: {spec['use']}")
    save_ensemble(spec, args.out)
    print(f"wrote {args.out}: python inference.py --ensemble {args.out} [--tta]")
    return spec


script = as_script(main)

if __name__ == "__main__":
    main()
