"""Train a model: `python train.py --config configs/demo.yaml [key.sub=value ...] [--resume RUN] [--all-folds]`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from utils.errors import as_script, cli_main

LOG = logging.getLogger("train")
EPILOG = "Every config key and its default: docs/config.md."


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Options and `key=value` overrides, in any order (nothing heavy is imported before this)."""
    parser = argparse.ArgumentParser(description=__doc__, epilog=EPILOG)
    what = parser.add_argument_group("what to train (one of)")
    what.add_argument("--config", type=Path, metavar="YAML", help="experiment config, e.g. configs/demo.yaml")
    what.add_argument("--resume", type=Path, metavar="RUN_OR_PTH",
                      help="continue a run: its directory (last.pth) or a checkpoint file")
    how = parser.add_argument_group("how")
    how.add_argument("--all-folds", action="store_true",
                     help="train every fold of data.n_folds into RUN/folds/fold_k and write RUN/oof.csv")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="config overrides, e.g. trainer.epochs=5 optimizer.lr=1e-4")
    args = parser.parse_intermixed_args(argv)
    if (args.config is None) == (args.resume is None):
        parser.error("give exactly one of --config (a new run) or --resume (continue a run; its config is stored "
                     "in the checkpoint, change it with key=value overrides)")
    if args.all_folds and args.resume is not None:
        parser.error("--all-folds starts a new run: use --config, not --resume")
    return args


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from experiments.folds import run_all_folds
    from trainer.checkpoint import load_checkpoint, resolve_checkpoint
    from trainer.lifecycle import run_training
    from utils.config import apply_overrides, build_config, load_config
    from utils.distributed import shutdown
    from utils.logger import require_wandb
    from utils.run_dir import RunDir

    state, run_dir = None, None
    fresh = RunDir(args.resume) if args.resume is not None and args.resume.is_dir() else None
    if fresh is not None and not fresh.last.is_file() and fresh.config.is_file():
        LOG.info("%s: stopped before its first checkpoint; starting it again in the same directory", fresh)
        config, run_dir = load_config(fresh.config, args.overrides), fresh
    elif args.resume is not None:
        ckpt = resolve_checkpoint(args.resume)
        state = load_checkpoint(ckpt)
        raw = state["config"]
        config = build_config(raw, str(ckpt), apply_overrides(raw, args.overrides))
        run_dir = RunDir(ckpt.parent)
        if state.get("stopped_early") or state["epoch"] >= config.trainer.epochs:
            LOG.info("%s: run already finished (%d epochs); nothing to do", ckpt, state["epoch"])
            return {"epochs": state["epoch"], "run_dir": str(run_dir)}
    else:
        config = load_config(args.config, args.overrides)
    require_wandb(config.logging.wandb)
    try:
        if args.all_folds:
            return run_all_folds(config, args.overrides)
        summary, _ = run_training(config, overrides=args.overrides, run_dir=run_dir, resume_state=state,
                                  resume_source=str(args.resume))
        return summary
    finally:
        shutdown()


script = as_script(main)

if __name__ == "__main__":
    main()
