"""The whole experiment as one typed, frozen `Config`: its sections, the cross-field rules, and the names of
the keys each section allows. Pure: validating a config imports neither torch nor timm (the backbone's
input size and normalisation are filled in by `utils.config.backbone`)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from pydantic import BaseModel, Field, field_validator, model_validator

from utils.config.base import Section
from utils.config.data import AugmentConfig, DataConfig
from utils.config.training import (
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    TrainerConfig,
)


class Config(Section):
    """The whole experiment. Each section goes to the factory that needs it."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$")
    """run name: `saved/<name>/<timestamp>/`"""
    seed: int = Field(42, ge=0, lt=2**32)
    """shuffling, augmentation and initialisation; also the split unless `data.split_seed` is set"""
    save_dir: Path = Path("saved")
    """root of run directories"""
    data: DataConfig = Field(default_factory=DataConfig)
    """the data set, its split and the loaders"""
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    """input size, normalisation, augmentation, mixing and face crops"""
    model: ModelConfig = Field(default_factory=ModelConfig)
    """the network: a timm backbone and a head"""
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    """the optimizer (timm) and its parameter groups"""
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    """the learning-rate schedule"""
    loss: LossConfig = Field(default_factory=LossConfig)
    """the training loss"""
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    """the training loop: epochs, device, precision, checkpoint rule"""
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    """optional mirrors of the TensorBoard logs"""

    @field_validator("name")
    @classmethod
    def _inside_save_dir(cls, v: str) -> str:
        if set(v) == {"."}:
            raise ValueError(f"{v!r} would put the run outside save_dir; use letters, digits, _ . -")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        """Combinations that would silently not do what they say."""
        has_val = self.data.val_ratio > 0 or self.data.n_folds >= 2
        on_val = self.trainer.monitor.needs_validation
        if self.model.head == "multi" and self.loss.class_weights is not None:
            raise ValueError("loss.class_weights: not used by model.head: multi (its losses are per task); "
                             "weigh the tasks with loss.task_weights or set class_weights: null")
        if self.model.age == "ordinal" and self.model.head != "multi":
            raise ValueError(f"model.age: ordinal needs model.head: multi (the age is a head of its own), "
                             f"not {self.model.head}")
        if not has_val and self.trainer.freeze is not None and self.trainer.freeze.patience is not None:
            raise ValueError("trainer.freeze.patience: no validation set (data.val_ratio: 0), so it would never "
                             "unfreeze; use trainer.freeze.epochs")
        soup, swa = self.trainer.soup, self.trainer.swa
        if soup is not None and soup.use and swa is not None and swa.use:
            raise ValueError("trainer.soup.use and trainer.swa.use: the run has one model; set one of them false")
        if soup is not None and not has_val:
            raise ValueError("trainer.soup: no validation set (data.val_ratio: 0) to choose the soup's epochs on; "
                             "set trainer.soup: null")
        if soup is not None and not on_val:
            raise ValueError(f"trainer.soup: a soup keeps an epoch only if validation does not get worse, but "
                             f"trainer.monitor is {self.trainer.monitor.metric}; monitor a validation metric")
        if not has_val and on_val and self.scheduler.name == "plateau":
            raise ValueError(f"scheduler.name: plateau follows {self.trainer.monitor.metric}, but there is "
                             "no validation set (data.val_ratio: 0); use another scheduler or monitor train_loss")
        return self

    @property
    def split_seed(self) -> int:
        """The seed that chooses the validation people and folds: `data.split_seed`, else `seed`."""
        return self.data.split_seed if self.data.split_seed is not None else self.seed

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe dict (paths as strings)."""
        return self.model_dump(mode="json")


def section_fields(path: Sequence[Any]) -> list[str]:
    """Key names allowed at `path` (e.g. ['trainer'] -> epochs, amp, ...); [] if not a section."""
    model: Any = Config
    for part in path:
        field = getattr(model, "model_fields", {}).get(str(part))
        if field is None:
            return []
        candidates = [field.annotation, *getattr(field.annotation, "__args__", ())]
        model = next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)
        if model is None:
            return []
    return list(model.model_fields)
