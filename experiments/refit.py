"""`train.py --refit RUN`: the final fit on every training person, for the epochs RUN's validation chose.

RUN's resolved recipe is trained again with no validation split (`data.val_ratio=0`): for RUN's best epoch,
or, where the recipe averages weights (`trainer.swa.use`), for its whole schedule (the averaged model is the
last epochs'). The new run directory is an ordinary run (inference, ensembles and export take it as any run);
its summary.json names its parent (`refit_of`), and the run table lists it under its parent. A K-fold run
already trains on everyone, fold by fold: its folds are the final models (docs/leaderboard.md).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from utils.config import Config, load_config
from utils.errors import UserError
from utils.run import Run, read_summary
from utils.run_dir import RunDir

LOG = logging.getLogger(__name__)
FINISHED = ("finished", "stopped early")


def refit_epochs(config: Config, summary: dict[str, Any]) -> int:
    """The epochs the validation chose: the best epoch, or the whole schedule for an averaging recipe."""
    if config.trainer.swa is not None and config.trainer.swa.use:
        return config.trainer.epochs
    return int(summary["best_epoch"])


def check_refittable(run: RunDir, name: str) -> dict[str, Any]:
    """RUN's summary when it is a finished run whose validation chose an epoch; else one line saying why not."""
    if not run.path.is_dir():
        raise UserError(f"--refit {name}: no such run directory")
    if run.folds_dir.is_dir() or run.oof.is_file():
        raise UserError(f"--refit {name}: a K-fold run already trains on every person (each person is in the "
                        "training set of all folds but one); its folds are the final models, see docs/leaderboard.md")
    if run.is_repeated:
        raise UserError(f"--refit {name}: a repeated run; refit one of its members ({run.seeds_dir}/seed_<seed>)")
    if not run.config.is_file():
        raise UserError(f"--refit {name}: no {run.config.name} (not a run directory)")
    summary = read_summary(run.path)
    if summary.get("status") not in FINISHED:
        raise UserError(f"--refit {name}: the run is not finished (status {summary.get('status', 'unknown')}); "
                        "finish it with --resume first")
    best = summary.get("best_epoch")
    if not isinstance(best, int) or best < 1 or not summary.get("metric", "val").startswith(("val", "ema_val")):
        raise UserError(f"--refit {name}: no validation choice to follow (the run had no validation people or "
                        "monitors train_loss); refit a run trained with data.val_ratio > 0")
    return summary


def fitted_age_bounds(run_path: Path) -> tuple[int, int]:
    """The age boundaries fitted on RUN's validation (`model.age: ordinal`), from its model's checkpoint: a refit
    has no validation to fit them on, so it keeps them (as its `data.age_bounds`)."""
    from trainer.checkpoint import load_checkpoint

    path = Run.open(run_path).weights_file(explicit=False)
    state = load_checkpoint(path, which="best")["model"]
    key = next((k for k in state if k.endswith("head.age_bounds")), None)
    if key is None:
        raise UserError(f"--refit {run_path}: {path} has no fitted age boundaries (model.age: ordinal)")
    low, high = (int(round(v)) for v in state[key].tolist())
    LOG.info("refit: the age boundaries fitted on %s's validation, [%d, %d], are kept", run_path, low, high)
    return low, high


def refit_config(run_path: Path, overrides: Sequence[str] = ()) -> tuple[Config, list[str], dict[str, Any]]:
    """(config, overrides, info) of the refit of `run_path`: RUN's recipe on every person for the chosen epochs;
    `overrides` may change anything else (e.g. trainer.device)."""
    run = RunDir(run_path)
    summary = check_refittable(run, str(run_path))
    recipe = load_config(run.config, list(overrides))
    if recipe.trainer.freeze is not None and recipe.trainer.freeze.patience is not None:
        raise UserError(f"--refit {run_path}: trainer.freeze.patience unfreezes on validation, which a refit has "
                        "none of; give trainer.freeze.epochs=N (the epoch RUN unfroze at, see its train.log)")
    epochs = refit_epochs(recipe, summary)
    bounds = fitted_age_bounds(run_path) if recipe.model.age == "ordinal" else None
    refit = ["data.val_ratio=0", "data.n_folds=0", "data.fold=0", f"trainer.epochs={epochs}",
             "trainer.early_stop_patience=0", *(["trainer.soup=null"] if recipe.trainer.soup is not None else []),
             *([f"data.age_bounds=[{bounds[0]},{bounds[1]}]"] if bounds else []), *overrides]
    config = load_config(run.config, refit)
    why = ("the whole schedule: the recipe averages its last epochs' weights" if epochs == recipe.trainer.epochs
           and recipe.trainer.swa is not None and recipe.trainer.swa.use else f"its best epoch {epochs}")
    LOG.info("refit of %s: its recipe on every training person for %d epochs (%s)", run, epochs, why)
    return config, refit, {"refit_of": str(run.path.resolve()), "refit_epochs": epochs}
