"""What `train.py --resume X` means, decided in one place: a run stopped before its first checkpoint
(start it again in its directory), a checkpoint or a run directory (continue from `last.pth`), or a
finished run (nothing to do). Overrides may change how a run goes on, never what the run is."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from trainer.checkpoint import load_checkpoint
from utils.config import Config, apply_overrides, build_config, load_config
from utils.errors import ConfigError, UserError
from utils.run import checkpoint_file, read_metrics
from utils.run_dir import RunDir, run_finished

# keys an override may change on resume: how long and how fast the run goes on, not what it learns from
RESUME_KEYS = (
    "trainer.epochs", "trainer.early_stop_patience", "trainer.max_bad_steps", "trainer.device", "trainer.compile",
    "trainer.channels_last", "trainer.cudnn_benchmark", "trainer.deterministic", "trainer.threads", "data.batch_size",
    "data.num_workers", "data.cache", "data.cache_dir", "logging",
)


@dataclass(frozen=True)
class Resume:
    """A resolved `--resume`: the config to run, its directory, the checkpoint state (None: the run
    starts again from scratch in `run_dir`) and where the state came from."""

    config: Config
    run_dir: RunDir
    state: Optional[dict[str, Any]]
    source: str

    @property
    def finished(self) -> bool:
        return self.state is not None and run_finished(epoch=self.state["epoch"], epochs=self.config.trainer.epochs,
                                                       stopped_early=bool(self.state.get("stopped_early")))

    def describe(self) -> str:
        """One line for the log."""
        if self.state is None:
            return f"{self.run_dir}: stopped before its first checkpoint; starting it again in the same directory"
        epoch, epochs = self.state["epoch"], self.config.trainer.epochs
        if self.finished:
            why = "stopped early" if self.state.get("stopped_early") else f"{epoch} of {epochs} epochs done"
            return f"{self.source}: run already finished ({why}); nothing to do"
        return f"resumed from {self.source}: epoch {epoch} done, continuing at {epoch + 1}/{epochs}"


def changed_keys(before: dict[str, Any], after: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose resolved values differ between two config dicts."""
    keys = []
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            keys += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            keys.append(f"{prefix}{key}")
    return keys


def check_overrides(saved: Config, resumed: Config, overrides: Sequence[str], source: str) -> None:
    """Refuse, in one line, overrides that would change the split, the data, the model, the labels or
    the recipe of a run being resumed (only RESUME_KEYS may change)."""
    refused = [k for k in changed_keys(saved.to_dict(), resumed.to_dict())
               if not any(k == allowed or k.startswith(allowed + ".") for allowed in RESUME_KEYS)]
    if refused:
        given = next((o for o in overrides if o.split("=", 1)[0].strip() in refused), refused[0])
        raise ConfigError(f"--resume {source}: {given!r} would change what the run is ({refused[0]}); on resume "
                          f"only {', '.join(RESUME_KEYS)} may change — start a new run for the rest")


def plan_resume(target: Path, overrides: Sequence[str]) -> Resume:
    """Decide what resuming `target` means and check the overrides, reading but writing nothing."""
    run = RunDir(target) if Path(target).is_dir() else None
    if run is not None and not run.last.is_file() and run.config.is_file():
        saved = load_config(run.config)
        config = load_config(run.config, overrides)
        check_overrides(saved, config, overrides, str(run))
        return Resume(config=config, run_dir=run, state=None, source=str(run.config))
    ckpt = checkpoint_file(target)
    state = load_checkpoint(ckpt)
    if "optimizer" not in state:
        raise UserError(f"--resume {ckpt}: holds the weights only (best.pth keeps no optimizer state); resume "
                        f"from {RunDir(ckpt.parent).last}")
    saved = build_config(copy.deepcopy(state["config"]), str(ckpt))
    raw = copy.deepcopy(state["config"])
    config = build_config(raw, str(ckpt), apply_overrides(raw, overrides))
    check_overrides(saved, config, overrides, str(ckpt))
    run_dir = RunDir(ckpt.parent)
    read_metrics(run_dir.metrics)  # a damaged metrics.csv is one line now, before config.yaml is rewritten
    return Resume(config=config, run_dir=run_dir, state=state, source=str(ckpt))
