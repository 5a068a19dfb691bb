"""A run as everything after training sees it: one object opened from a run directory that owns its config,
its summary, whether it finished, and which files are its model (`best`, `swa`, `last`, the folds of a K-fold
run, the members of a repeated run, the swa -> best fallback). Reads files only: no torch."""
from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Optional

from utils.config import Config, read_saved_config
from utils.errors import DataError, UserError
from utils.run_dir import FOLD_NAME, RunDir, read_config, run_finished

LOG = logging.getLogger(__name__)
Which = Literal["best", "swa", "soup", "last"]
AVERAGED = ("swa", "soup")  # models made after the last epoch: a run that stopped before may lack them
FINISHED = ("finished", "stopped early")  # summary.json statuses of a run that will not go on


def model_choice(config: Config) -> Literal["best", "swa", "soup"]:
    """Which checkpoint is a run's model under `config`: "swa" with `trainer.swa.use`, "soup" with
    `trainer.soup.use`, else "best"."""
    trainer = config.trainer
    if trainer.swa is not None and trainer.swa.use:
        return "swa"
    return "soup" if trainer.soup is not None and trainer.soup.use else "best"


def checkpoint_file(path: Path | str, which: Literal["last", "best"] = "last") -> Path:
    """A checkpoint file, or a run directory's `last.pth` / `best.pth` (`which`); one line when missing."""
    path = Path(path)
    if path.is_dir():
        checkpoint = getattr(RunDir(path), which)
        if not checkpoint.is_file():
            raise UserError(f"{path}: this run directory holds no {checkpoint.name} (yet)")
        return checkpoint
    if not path.is_file():
        raise UserError(f"{path}: checkpoint not found")
    return path


def read_summary(run_dir: Path | RunDir) -> dict[str, Any]:
    """A run's `summary.json` ({} if absent, unreadable or not a mapping)."""
    try:
        loaded = json.loads(RunDir(Path(run_dir)).summary.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def read_metrics(path: Path) -> list[dict[str, float]]:
    """Rows of a `metrics.csv` (empty if absent), numbers parsed, `epoch` as int; a damaged file is a
    `DataError` naming the file and line."""
    if not Path(path).is_file():
        return []
    rows = []
    with open(path, newline="") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                parsed = {k: float(v) for k, v in row.items() if v != "" and k is not None}
                parsed["epoch"] = int(parsed["epoch"])
            except (ValueError, TypeError, KeyError):
                raise DataError(f"{path}: line {line}: not a metrics row (the file is damaged)") from None
            rows.append(parsed)
    return rows


@dataclass(frozen=True)
class Run:
    """A run directory opened for reading (an ordinary run, a K-fold run, a repeated run, a fold, a member).
    Files are read when first asked for, once."""

    dir: RunDir

    @classmethod
    def open(cls, path: Path | str | RunDir) -> "Run":
        return cls(path if isinstance(path, RunDir) else RunDir(Path(path)))

    @property
    def path(self) -> Path:
        return self.dir.path

    def __str__(self) -> str:
        return str(self.dir)

    @cached_property
    def raw_config(self) -> dict[str, Any]:
        """config.yaml as a plain mapping ({} when absent or unreadable): for tables that must not stop."""
        return read_config(self.dir)

    @cached_property
    def config(self) -> Config:
        """The resolved config the run saved, validated without torch (a `ConfigError` naming the file)."""
        if not self.dir.config.is_file():
            raise UserError(f"{self.dir.config}: not found (not a run directory, or one from before its config)")
        return read_saved_config(self.dir.config)

    @cached_property
    def summary(self) -> dict[str, Any]:
        """summary.json ({} when absent or unreadable)."""
        return read_summary(self.dir)

    @property
    def kind(self) -> Literal["single", "kfold", "repeated"]:
        if self.dir.is_repeated:
            return "repeated"
        return "kfold" if self.dir.folds_summary.is_file() or self.dir.folds_dir.is_dir() else "single"

    @property
    def model_which(self) -> Literal["best", "swa", "soup"]:
        """The model its recipe names: "swa" or "soup" when config.yaml sets `trainer.swa.use` or
        `trainer.soup.use`, else "best"."""
        trainer = self.raw_config.get("trainer")
        for name in AVERAGED:
            section = trainer.get(name) if isinstance(trainer, dict) else None
            if isinstance(section, dict) and section.get("use"):
                return name  # type: ignore[return-value]
        return "best"

    @property
    def finished(self) -> bool:
        """Whether summary.json says the run ended (all its epochs, or stopped early) and `last.pth` is there."""
        summary, trainer = self.summary, self.raw_config.get("trainer")
        try:
            epochs, stopped_early = int(summary["epochs"]), bool(summary["stopped_early"])
            planned = int(trainer["epochs"])  # type: ignore[index]
        except (KeyError, TypeError, ValueError):
            return False
        return (self.dir.last.is_file() and summary.get("status") in FINISHED
                and run_finished(epoch=epochs, epochs=planned, stopped_early=stopped_early))

    def n_folds(self) -> Optional[int]:
        """`data.n_folds` of the run's config, None when it cannot be read."""
        try:
            return int(self.raw_config["data"]["n_folds"])
        except (KeyError, TypeError, ValueError):
            return None

    def folds(self) -> list["Run"]:
        """The folds that count: `fold_0 .. fold_{n-1}` for `data.n_folds` holding a `best.pth`; other
        entries of `folds/` (backups, copies, extra or unfinished folds) are named in one warning."""
        n_folds, kept, left_out = self.n_folds(), [], [p.name for p in self.dir.strays()]
        for fold in self.dir.folds():
            k = int(FOLD_NAME.fullmatch(fold.path.name).group(1))
            if fold.best.is_file() and (n_folds is None or k < n_folds):
                kept.append(Run(fold))
            else:
                left_out.append(fold.path.name)
        if left_out and kept:
            LOG.warning("%s: %s left out (not one of the run's %s folds with a best.pth)", self.dir.folds_dir,
                        ", ".join(left_out), n_folds if n_folds is not None else "K")
        return kept

    def members(self) -> list["Run"]:
        """The members of a repeated run (`seeds/seed_<s>`), in seed order."""
        return [Run(m) for m in self.dir.members()]

    def weights_file(self, which: Optional[Which] = None, *, explicit: bool = True) -> Path:
        """This run's own checkpoint: `which`, else the recipe's model; `swa` (`soup`) falls back to `best.pth`
        with a warning when the run did not write it (stopped before its first averaged epoch, or had no
        validated epoch), unless it was asked for by name (`which` and `explicit`)."""
        chosen = which or self.model_which
        if chosen not in AVERAGED:
            return checkpoint_file(self.path, "last" if chosen == "last" else "best")
        averaged = self.dir.swa if chosen == "swa" else self.dir.soup
        if averaged.is_file():
            return averaged
        why = "stopped before its first averaged epoch" if chosen == "swa" else "had no validated epoch"
        if (which == chosen and explicit) or not self.dir.best.is_file():
            raise UserError(f"{averaged}: not found (a run writes it with trainer.{chosen}, unless it {why}); use "
                            "--which best")
        LOG.warning("%s: no %s (%s); using %s", self.path, averaged.name, why.replace("had no", "no"),
                    self.dir.best.name)
        return self.dir.best

    def model_files(self, which: Optional[Which] = None) -> list[Path]:
        """The checkpoints that make this run's model: its own, each fold's (a K-fold run, or its `folds/`
        directory), or each member's (a repeated run). `which` as for `weights_file`."""
        if self.dir.best.is_file() or self.dir.swa.is_file() or self.dir.soup.is_file():
            return [self.weights_file(which)]
        top = Run(RunDir(self.path.parent)) if self.path.name == "folds" and self.path.is_dir() else self
        folds = top.folds() if top.dir.folds_dir.is_dir() else []
        if folds:
            return [fold.weights_file(which or top.model_which, explicit=False) for fold in folds]
        members = self.members()
        if members:
            return [path for member in members for path in member.model_files(which)]
        return [self.weights_file(which)]


def model_files(path: Path | str, which: Optional[Which] = None) -> list[Path]:
    """A checkpoint file as it is, or the model files of the run at `path` (`Run.model_files`)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.exists():
        raise UserError(f"{path}: checkpoint not found")
    return Run.open(path).model_files(which)
