"""The run directory and its layout: the one place that names the files a run writes.

`saved/<name>/<YYYYmmdd-HHMMSS>/` is never reused. A K-fold run holds one ordinary run directory
per fold under `folds/fold_k/`; a repeated run (`train.py --seeds N`) one run (or K-fold run) per
training seed under `seeds/seed_<seed>/`; a tuning study one per trial under `tune/trial_NNNN/`.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Union

from utils.labels import NUM_CLASSES

FOLD_NAME = re.compile(r"fold_([0-9]+)")  # folds/fold_<k>, ASCII digits
SEED_NAME = re.compile(r"seed_([0-9]+)")  # seeds/seed_<seed>, ASCII digits

OOF_COLUMNS = ["path", "fold", "label"]  # oof.csv: the image, its fold, its class, then PROB_COLUMNS
PROB_COLUMNS = [f"prob_{c:02d}" for c in range(NUM_CLASSES)]  # oof.csv's probability columns


@dataclass(frozen=True)
class Folder:
    """A directory the project writes; subclasses name its files as properties."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def __fspath__(self) -> str:
        return str(self.path)

    def __str__(self) -> str:
        return str(self.path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name


@dataclass(frozen=True)
class RunDir(Folder):
    """A run directory; its properties are the paths of the files in it."""

    # files other commands write into a run directory on the user's behalf (not the run's own record)
    COMMAND_OUTPUTS = ("submission", "label_issues", "label_sheet", "relabel_draft")
    FOLDERS = ("folds_dir", "seeds_dir")

    @classmethod
    def own_files(cls) -> frozenset[str]:
        """The names of the files a run writes about itself: every file property but `COMMAND_OUTPUTS`. The
        outputs guard protects exactly these, so a file named here is protected the day it is added."""
        here = cls(".")
        names = [n for n, v in vars(cls).items() if isinstance(v, property) and n not in cls.COMMAND_OUTPUTS
                 and n not in cls.FOLDERS and isinstance(getattr(here, n), Path)]
        return frozenset(getattr(here, n).name for n in names)

    # files of every run
    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def best(self) -> Path:
        return self.path / "best.pth"

    @property
    def last(self) -> Path:
        return self.path / "last.pth"

    @property
    def swa(self) -> Path:
        return self.path / "swa.pth"

    @property
    def soup(self) -> Path:
        return self.path / "soup.pth"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.csv"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def log(self) -> Path:
        return self.path / "train.log"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    @property
    def submission(self) -> Path:
        return self.path / "submission.csv"

    @property
    def report(self) -> Path:
        """The run's picture (`utils.run_report`)."""
        return self.path / "report.png"

    # the label-issue finder's outputs (tools.label_issues)
    @property
    def label_issues(self) -> Path:
        return self.path / "label_issues.csv"

    @property
    def label_sheet(self) -> Path:
        """The first page of the review sheet (later pages: label_issues_2.png, ...)."""
        return self.path / "label_issues.png"

    @property
    def relabel_draft(self) -> Path:
        return self.path / "relabel_draft.csv"

    @property
    def val_predictions(self) -> Path:
        """Per-photo validation predictions of the run's model (`utils.predictions`)."""
        return self.path / "val_predictions.csv"

    # K-fold runs
    @property
    def folds_dir(self) -> Path:
        return self.path / "folds"

    def fold(self, k: int) -> "RunDir":
        """The run directory of fold `k`."""
        return RunDir(self.folds_dir / f"fold_{k}")

    def folds(self) -> Iterator["RunDir"]:
        """The fold directories the project wrote (`fold_<k>`), in fold order; anything else people leave
        in `folds/` (a backup, a copy) is not a fold (see `strays`)."""
        return iter(numbered(self.folds_dir, FOLD_NAME))

    def strays(self) -> list[Path]:
        """Entries of `folds/` that are not fold directories of this project."""
        if not self.folds_dir.is_dir():
            return []
        folds = {f.path for f in self.folds()}
        return sorted(p for p in self.folds_dir.iterdir() if p not in folds)

    @property
    def oof(self) -> Path:
        return self.path / "oof.csv"

    @property
    def folds_summary(self) -> Path:
        return self.path / "folds_summary.json"

    # repeated runs (train.py --seeds N)
    @property
    def seeds_dir(self) -> Path:
        return self.path / "seeds"

    def member(self, seed: int) -> "RunDir":
        """The run directory of the member trained with `seed`."""
        return RunDir(self.seeds_dir / f"seed_{seed}")

    def members(self) -> list["RunDir"]:
        """The members the project wrote (`seed_<seed>`), in seed order."""
        return numbered(self.seeds_dir, SEED_NAME)

    @property
    def seeds_summary(self) -> Path:
        return self.path / "seeds_summary.json"

    @property
    def is_repeated(self) -> bool:
        return self.seeds_summary.is_file() or self.seeds_dir.is_dir()

    @property
    def is_member(self) -> bool:
        return self.path.parent.name == "seeds" and SEED_NAME.fullmatch(self.path.name) is not None

    @property
    def is_fold(self) -> bool:
        return self.path.parent.name == "folds" and self.path.name.startswith("fold_")

    @property
    def top(self) -> "RunDir":
        """The run a fold or a seed member belongs to (itself for an ordinary run)."""
        return RunDir(self.path.parent.parent) if self.is_fold or self.is_member else self

    @classmethod
    def create(cls, save_dir: Union[str, Path], name: str) -> "RunDir":
        """Make a fresh `save_dir/name/YYYYmmdd-HHMMSS[-k]` directory."""
        base = Path(save_dir) / name
        base.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for k in range(1000):
            path = base / (stamp if k == 0 else f"{stamp}-{k}")
            try:
                path.mkdir()
                return cls(path)
            except FileExistsError:
                continue
        raise RuntimeError(f"cannot create a run directory under {base}")


@dataclass(frozen=True)
class TuneDir(Folder):
    """A tuning study's directory, `saved/<name>/tune/`: its properties are the paths of the files in it."""

    def trial(self, number: int) -> RunDir:
        """The run directory of trial `number` (`trial_NNNN`)."""
        return RunDir(self.path / f"trial_{number:04d}")

    @property
    def study_db(self) -> Path:
        """The default SQLite storage of the study."""
        return self.path / "study.db"

    @property
    def storage_lock(self) -> Path:
        return self.path / ".storage.lock"

    @property
    def trials_csv(self) -> Path:
        return self.path / "trials.csv"

    @property
    def best_config(self) -> Path:
        return self.path / "best_config.yaml"

    def plot(self, name: str) -> Path:
        """One of the study's pictures (`<name>.png`)."""
        return self.path / f"{name}.png"


def numbered(folder: Path, pattern: re.Pattern[str]) -> list[RunDir]:
    """The sub-directories of `folder` whose names match `pattern` (`fold_<k>`, `seed_<s>`), in number order."""
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := pattern.fullmatch(p.name)) is not None
             and p.is_dir()]
    return [RunDir(p) for _, p in sorted(found)]


def read_config(run: RunDir) -> dict[str, Any]:
    """A run's resolved config.yaml as a plain dict, without torch ({} when absent, unreadable or not a mapping)."""
    import yaml

    try:
        loaded = yaml.safe_load(run.config.read_text()) if run.config.is_file() else {}
    except (OSError, yaml.YAMLError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def create_run_dir(save_dir: Union[str, Path], name: str) -> Path:
    """A fresh run directory's path (see `RunDir.create`)."""
    return RunDir.create(save_dir, name).path


def run_finished(*, epoch: int, epochs: int, stopped_early: bool) -> bool:
    """The one rule: a run is finished when it stopped early or has trained `epochs` epochs."""
    return stopped_early or epoch >= epochs
