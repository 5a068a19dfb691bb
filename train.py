"""Train a model: `python train.py --config configs/demo.yaml [key.sub=value ...] [--resume RUN]`."""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Optional, Sequence

from data_loader.transforms import resolve_augment
from trainer.build import build_trainer, split_summary
from trainer.checkpoint import load_checkpoint, resolve_checkpoint
from trainer.folds import run_all_folds
from trainer.session import run_info, supervised_fit
from utils.config import apply_overrides, build_config, load_config, save_config
from utils.distributed import broadcast_object, shutdown
from utils.errors import UserError, cli_main
from utils.logger import RunLogger, file_log, require_wandb, setup_logging, start_wandb
from utils.run_dir import create_run_dir
from utils.seed import seed_everything

LOG = logging.getLogger("train")


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", type=Path, help="YAML config (not needed with --resume)")
    parser.add_argument("--resume", type=Path, help="run directory or checkpoint to continue")
    parser.add_argument("--all-folds", action="store_true",
                        help="train every fold of data.n_folds into RUN/folds/fold_k and write RUN/oof.csv")
    parser.add_argument("overrides", nargs="*", help="config overrides, key.sub=value")
    args = parser.parse_args(argv)
    if args.config is None and args.resume is None:
        parser.error("give --config or --resume")
    return args


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    setup_logging()
    state = None
    if args.resume is not None:
        ckpt = resolve_checkpoint(args.resume)
        state = load_checkpoint(ckpt)
        raw = state["config"]
        config = build_config(raw, str(ckpt), apply_overrides(raw, args.overrides))
        run_dir = ckpt.parent
    else:
        config = load_config(args.config, args.overrides)
        run_dir = None
    config = resolve_augment(config)
    require_wandb(config.logging.wandb)
    if args.all_folds:
        if args.resume is not None or config.data.n_folds < 2:
            raise UserError("--all-folds needs --config (not --resume) and data.n_folds >= 2")
        return run_all_folds(config, args.overrides)
    seed_everything(config.seed, config.trainer.deterministic)
    trainer = build_trainer(config, run_dir or Path("."))  # everything validated before writing
    if state is not None:
        try:
            trainer.load_state_dict(state)
        except (RuntimeError, KeyError, ValueError) as err:
            raise UserError(f"{ckpt}: cannot resume from this checkpoint ({str(err).splitlines()[0][:160]})") from None
        if trainer.finished:
            LOG.info("%s: run already finished (%d epochs); nothing to do", ckpt, trainer.epoch)
            return {"epochs": trainer.epoch, "run_dir": str(run_dir)}
    else:
        new_dir = create_run_dir(config.save_dir, config.name) if trainer.dist.is_main else None
        run_dir = trainer.run_dir = Path(broadcast_object(str(new_dir), trainer.dist))
    if not trainer.dist.is_main:  # rank 0 alone writes files and logs
        logging.getLogger().setLevel(logging.WARNING)
        summary = supervised_fit(trainer, None)
        shutdown()
        return {**summary, "run_dir": str(run_dir)}
    save_config(config, run_dir / "config.yaml")
    with file_log(run_dir / "train.log"):
        LOG.info("run directory: %s (%s, device %s, %d process(es))",
                 run_dir, split_summary(trainer), trainer.device, trainer.dist.world_size)
        wandb_run = start_wandb(config.logging.wandb, run_dir, config.name, config.to_dict())
        run_logger = RunLogger(run_dir, trainer.epoch, run_info(config, args.overrides), wandb_run)
        summary = supervised_fit(trainer, run_logger)
        LOG.info("done: best %s=%.4f at epoch %d; checkpoints in %s; view with: tensorboard --logdir %s",
                 summary["metric"], summary["best"], summary["best_epoch"], run_dir, config.save_dir)
    shutdown()
    return {**summary, "run_dir": str(run_dir)}


if __name__ == "__main__":
    main()
