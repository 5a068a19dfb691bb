"""Write `submission.csv`: `python inference.py --ckpt RUN_OR_PTH [--ckpt ...] [--tta]`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from trainer.predictor import ensemble_predict, expand_checkpoint, write_submission
from utils.config import load_config
from utils.device import resolve_device
from utils.errors import cli_main
from utils.logger import setup_logging

LOG = logging.getLogger("inference")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ckpt", type=Path, action="append", required=True,
                        help="checkpoint file or run directory (its best.pth); repeat to soft-vote")
    parser.add_argument("--config", type=Path, help="config whose data.eval_dir / batch size to use")
    parser.add_argument("--data", type=Path, help="eval directory holding info.csv and images/")
    parser.add_argument("--out", type=Path, help="output CSV (default: submission.csv in the first run directory)")
    parser.add_argument("--tta", action="store_true", help="average with a horizontally flipped pass")
    parser.add_argument("--weights", type=float, nargs="+", help="soft-vote weight per --ckpt (default equal)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    parser.add_argument("overrides", nargs="*", help="overrides of --config, key.sub=value")
    return parser.parse_args(argv)


def default_output(ckpt: Path) -> Path:
    """submission.csv in the run directory of the first checkpoint (the run itself for folds)."""
    first = expand_checkpoint(ckpt)[0]
    run = first.parent
    return (run.parent.parent if run.parent.name == "folds" else run) / "submission.csv"


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> Path:
    args = parse_args(argv)
    setup_logging()
    eval_dir, batch_size, workers = args.data, None, None
    if args.config is not None:
        data = load_config(args.config, args.overrides).data
        eval_dir, batch_size, workers = eval_dir or data.eval_dir, data.batch_size, data.num_workers
    table, probs = ensemble_predict(args.ckpt, eval_dir, resolve_device(args.device), args.tta, batch_size, workers,
                                    args.weights)
    out = args.out or default_output(args.ckpt[0])
    write_submission(table, probs, out)
    LOG.info("wrote %s (%d rows)", out, len(table))
    return out


if __name__ == "__main__":
    main()
