"""`train.py --seeds N`: one recipe trained with N training seeds on one split, into one parent run.

The members are ordinary runs (or K-fold runs with `--all-folds`) in `RUN/seeds/seed_<seed>/`, trained with
seeds `seed, seed + 1, …` and one `data.split_seed` (the recipe's), so all of them are validated on the same
people. `RUN/seeds_summary.json` holds the monitored metric's mean ± standard deviation over the seeds and the
95 % interval of the mean macro-F1 (people and seeds resampled, as `tools.compare` does).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Sequence

import numpy as np

from experiments.comparison import load_side, mean_interval
from experiments.folds import check_folds, fold_config, run_all_folds
from trainer.lifecycle import run_training, seeded_parts, shared_run_dir
from utils.config import Config, save_config
from utils.errors import ConfigError
from utils.io import atomic_write_text
from utils.run import read_summary
from utils.run_dir import RunDir
from utils.run_report import checked_report

LOG = logging.getLogger(__name__)


def member_config(config: Config, seed: int) -> Config:
    """`config` with training seed `seed` and the recipe's split pinned (`data.split_seed`)."""
    data = config.data.model_copy(update={"split_seed": config.split_seed})
    return config.model_copy(update={"seed": seed, "data": data})


def member_score(member: RunDir, all_folds: bool) -> dict[str, Any]:
    """The member's monitored value (its OOF macro-F1 for a K-fold member) and its model's macro-F1."""
    if all_folds:
        summary = json.loads(member.folds_summary.read_text())
        return {"metric": "oof_f1", "best": summary["oof_f1"], "model_f1": summary["oof_f1"]}
    summary = read_summary(member.path)
    return {"metric": summary.get("metric"), "best": summary.get("best"), "model_f1": summary.get("model_f1")}


def write_seeds_summary(run_dir: RunDir, config: Config, seeds: Sequence[int], all_folds: bool) -> dict[str, Any]:
    """`seeds_summary.json`: per-seed scores, their mean ± standard deviation and the mean F1's interval."""
    scores = [member_score(run_dir.member(s), all_folds) for s in seeds]
    best = np.array([s["best"] for s in scores], dtype=np.float64)
    summary = {"name": config.name, "status": "finished", "seeds": list(seeds), "split_seed": config.split_seed,
               "all_folds": all_folds, "metric": scores[0]["metric"], "per_seed": [float(b) for b in best],
               "mean": float(best.mean()), "std": float(best.std(ddof=1)) if len(best) > 1 else 0.0}
    if all(s["model_f1"] is not None for s in scores):
        point, low, high = mean_interval(load_side(run_dir.path))
        summary.update(model_f1=point, model_f1_pm=(high - low) / 2)
    atomic_write_text(run_dir.seeds_summary, json.dumps(summary, indent=2))
    LOG.info("%d seeds: %s %.4f ± %.4f (mean ± sd; per seed %s); %s", len(seeds), summary["metric"],
             summary["mean"], summary["std"], ", ".join(f"{b:.4f}" for b in best), run_dir)
    return summary


def run_seeds(config: Config, n_seeds: int, overrides: Sequence[str] = (), *, all_folds: bool = False
              ) -> dict[str, Any]:
    """Train the recipe with seeds `config.seed .. config.seed + n_seeds - 1` into `RUN/seeds/seed_<seed>/`.
    The run directory is created once the first member's parts are built (config and data validated)."""
    if n_seeds < 2:
        raise ConfigError(f"--seeds {n_seeds}: give at least 2 training seeds")
    if all_folds:
        check_folds(config)
    seeds = [config.seed + k for k in range(n_seeds)]
    if seeds[-1] >= 2**32:
        raise ConfigError(f"--seeds {n_seeds}: seed {config.seed} + {n_seeds - 1} is past 2**32 - 1")
    first = member_config(config, seeds[0])
    parts = seeded_parts(fold_config(first, 0) if all_folds else first)
    run_dir = shared_run_dir(config, parts.dist_info)
    if parts.dist_info.is_main:
        save_config(first.model_copy(update={"seed": config.seed}), run_dir.config)
    for k, seed in enumerate(seeds):
        cfg = member_config(config, seed)
        member_overrides = [*overrides, f"seed={seed}", f"data.split_seed={config.split_seed}"]
        LOG.info("seed %d (%d/%d): %s", seed, k + 1, n_seeds, run_dir.member(seed))
        if all_folds:
            run_all_folds(cfg, member_overrides, run_dir=run_dir.member(seed), parts=parts if k == 0 else None)
        else:
            run_training(cfg, overrides=member_overrides, run_dir=run_dir.member(seed), parts=parts if k == 0 else None)
    if not parts.dist_info.is_main:
        return {"run_dir": str(run_dir)}
    summary = write_seeds_summary(run_dir, config, seeds, all_folds)
    checked_report(run_dir.path)
    return {**summary, "run_dir": str(run_dir)}
