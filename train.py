"""Train a model: `python train.py --config configs/demo.yaml [key.sub=value ...] [--resume RUN] [--all-folds]`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from utils.cli import as_script, cli_main

LOG = logging.getLogger("train")
EPILOG = "Every config key and its default: docs/config.md."


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    """Options and `key=value` overrides, in any order (nothing heavy is imported before this)."""
    parser = argparse.ArgumentParser(description=__doc__, epilog=EPILOG)
    what = parser.add_argument_group("what to train (one of)")
    what.add_argument("--config", type=Path, metavar="YAML", help="experiment config, e.g. configs/demo.yaml")
    what.add_argument("--resume", type=Path, metavar="RUN_OR_PTH",
                      help="continue a run: its directory (last.pth) or a checkpoint file")
    what.add_argument("--refit", type=Path, metavar="RUN",
                      help="train RUN's recipe on every training person for the epochs its validation chose "
                           "(the final fit), into a new run directory that names RUN")
    how = parser.add_argument_group("how")
    how.add_argument("--all-folds", action="store_true",
                     help="train every fold of data.n_folds into RUN/folds/fold_k and write RUN/oof.csv")
    how.add_argument("--seeds", type=int, metavar="N",
                     help="train the recipe with N training seeds (seed, seed+1, ...; one split) into "
                          "RUN/seeds/seed_<seed>; RUN/seeds_summary.json holds mean ± sd")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value",
                        help="config overrides, e.g. trainer.epochs=5 optimizer.lr=1e-4")
    args = parser.parse_intermixed_args(argv)
    if sum(x is not None for x in (args.config, args.resume, args.refit)) != 1:
        parser.error("give exactly one of --config (a new run), --resume (continue a run; its config is stored "
                     "in the checkpoint, change it with key=value overrides) or --refit (a final fit on everyone)")
    if args.refit is not None and (args.all_folds or args.seeds is not None):
        parser.error("--refit trains one model on every person: no --all-folds or --seeds")
    if args.all_folds and args.resume is not None:
        parser.error("--all-folds starts a new run: use --config, not --resume")
    if args.seeds is not None and args.resume is not None:
        parser.error("--seeds starts a new run: use --config, not --resume (resume a member by its directory)")
    if args.seeds is not None and args.seeds < 2:
        parser.error(f"--seeds {args.seeds}: give at least 2 training seeds")
    return args


def finished_run(target: Path) -> Optional[dict]:
    """`--resume` of a run directory whose summary.json says it finished, read without torch (seconds
    sooner than loading its checkpoint): the line to log and the result; None when not that case."""
    from utils.run import Run

    run = Run.open(target)
    if not (Path(target).is_dir() and run.finished):
        return None
    epochs, stopped_early = int(run.summary["epochs"]), bool(run.summary["stopped_early"])
    why = "stopped early" if stopped_early else f"{epochs} of {epochs} epochs done"
    LOG.info("%s: run already finished (%s); nothing to do", run.dir.last, why)
    return {"epochs": epochs, "run_dir": str(run)}


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    from utils.config import load_config

    if args.resume is not None and not args.overrides and (done := finished_run(args.resume)) is not None:
        return done
    refit_info = None
    if args.refit is not None:
        from experiments.refit import refit_config

        config, args.overrides, refit_info = refit_config(args.refit, args.overrides)
    elif args.resume is None:
        config = load_config(args.config, args.overrides)  # before torch loads
    from experiments.folds import run_all_folds
    from trainer.lifecycle import run_training
    from trainer.resume import plan_resume
    from utils.distributed import shutdown
    from utils.logger import require_wandb

    resume = plan_resume(args.resume, args.overrides) if args.resume is not None else None
    if resume is not None and (resume.finished or resume.state is None):
        LOG.info(resume.describe())
        if resume.finished:
            return {"epochs": resume.state["epoch"], "run_dir": str(resume.run_dir)}
    config = resume.config if resume is not None else config
    require_wandb(config.logging.wandb)
    try:
        if args.seeds is not None:
            from experiments.repeats import run_seeds

            return run_seeds(config, args.seeds, args.overrides, all_folds=args.all_folds)
        if args.all_folds:
            return run_all_folds(config, args.overrides)
        summary, _ = run_training(config, overrides=args.overrides, resume=resume, info=refit_info)
        return summary
    finally:
        shutdown()


script = as_script(main)

if __name__ == "__main__":
    main()
