"""YAML config + `key.sub=value` overrides -> one typed, validated, frozen `Config`."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from utils.errors import ConfigError, did_you_mean

DATASETS = ("MaskSplitByProfileDataset", "MaskBaseDataset")
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "plateau", "poly", "none")
MAX_SIDE = 2048  # network input side; the photos are 512 x 384
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MONITOR_METRICS = ("val_f1", "val_acc", "val_loss", "train_loss", "ema_val_f1", "ema_val_acc", "ema_val_loss")


class _Loader(yaml.SafeLoader):
    """Safe YAML loader that also reads `1e-3` as a float (YAML 1.1 needs `1.0e-3`)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:\d[\d_]*)?(?:\.\d*)?[eE][-+]?\d+$"),
    list("-+0123456789."),
)


def absolute(path: Optional[Path]) -> Optional[Path]:
    """`path` made absolute against the current directory (normalised, symlinks kept)."""
    return Path(os.path.abspath(os.path.expanduser(path))) if path is not None else None


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StepConfig(_Section):
    """One albumentations transform: its class name and keyword arguments."""

    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class DataConfig(_Section):
    dataset: Literal[DATASETS] = "MaskSplitByProfileDataset"  # type: ignore[valid-type]
    train_dir: Path = Path("data/train")
    eval_dir: Optional[Path] = Path("data/eval")
    val_ratio: float = Field(0.2, ge=0.0, lt=1.0)
    n_folds: int = Field(0, ge=0)
    fold: int = Field(0, ge=0)
    age_bounds: tuple[int, int] = (30, 60)
    relabel: Optional[Path] = None
    skip_bad_images: bool = False
    group_duplicates: bool = True
    pseudo_labels: Optional[Path] = None
    pseudo_weight: float = Field(0.5, gt=0.0, le=1.0)
    jpeg_draft: bool = True
    sampler: Literal["random", "balanced"] = "random"
    cache: Literal["none", "memory", "disk"] = "none"
    cache_dir: Path = Path(".cache/images")
    batch_size: int = Field(32, gt=0)
    num_workers: Optional[int] = Field(None, ge=0)

    @field_validator("train_dir", "eval_dir", "relabel", "cache_dir", "pseudo_labels")
    @classmethod
    def _absolute(cls, v: Optional[Path]) -> Optional[Path]:
        """Stored absolute, so a run resumed from another directory reads the same data."""
        return absolute(v)

    @model_validator(mode="after")
    def _fold_in_range(self) -> "DataConfig":
        if self.n_folds == 1 or (self.n_folds and self.fold >= self.n_folds):
            raise ValueError(f"need n_folds >= 2 and 0 <= fold < n_folds, got n_folds={self.n_folds}, fold={self.fold}")
        return self

    @field_validator("age_bounds")
    @classmethod
    def _bounds_increase(cls, v: tuple[int, int]) -> tuple[int, int]:
        if not 0 < v[0] < v[1]:
            raise ValueError(f"must be two increasing positive ages, got {list(v)}")
        return v


class MixConfig(_Section):
    alpha: float = Field(1.0, gt=0.0)
    prob: float = Field(0.5, ge=0.0, le=1.0)


class FaceCropConfig(_Section):
    """Crop each photo to its face (`data_loader.face_crop`)."""

    margin: float = Field(0.3, ge=0.0, le=2.0)  # share of the face box added on every side
    min_score: float = Field(0.5, ge=0.0, le=1.0)  # boxes below this score use the fallback
    detector: Literal["mtcnn", "haar"] = "mtcnn"
    fallback_scale: float = Field(0.7, gt=0.0, le=1.0)  # centred window, share of the largest of that aspect


class AugmentConfig(_Section):
    image_size: Optional[tuple[int, int]] = None  # (height, width); None: backbone default
    mean: Optional[tuple[float, float, float]] = None
    std: Optional[tuple[float, float, float]] = None
    train: list[StepConfig] = Field(default_factory=list)
    eval: list[StepConfig] = Field(default_factory=list)
    mixup: Optional[MixConfig] = None
    cutmix: Optional[MixConfig] = None
    cutmix_mode: Literal["random", "half"] = "random"
    face_crop: Optional[FaceCropConfig] = None

    @model_validator(mode="after")
    def _half_alone(self) -> "AugmentConfig":
        if self.cutmix_mode == "half" and self.mixup is not None:
            raise ValueError("cutmix_mode=half cannot be combined with mixup")
        return self

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v: Optional[tuple[int, int]]) -> Optional[tuple[int, int]]:
        if v is not None and not (0 < min(v) and max(v) <= MAX_SIDE):
            raise ValueError(f"must be [height, width] in 1..{MAX_SIDE}, got {list(v)}")
        return v


class ModelConfig(_Section):
    backbone: str = "resnet18"
    pretrained: bool = False
    pretrained_path: Optional[Path] = None
    head: Literal["linear", "shallow", "multi"] = "linear"
    hidden_dim: int = Field(512, gt=0)
    activation: str = "gelu"
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)

    @field_validator("pretrained_path")
    @classmethod
    def _absolute(cls, v: Optional[Path]) -> Optional[Path]:
        return absolute(v)

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, v: str) -> str:
        import timm

        if not timm.is_model(v):
            raise ValueError(f"unknown timm model {v!r}{did_you_mean(v, timm.list_models())}")
        return v


class OptimizerConfig(_Section):
    name: str = "adamw"
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(0.05, ge=0.0)
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    backbone_lr_scale: float = Field(1.0, gt=0.0)
    layer_decay: Optional[float] = Field(None, gt=0.0, le=1.0)

    @field_validator("name")
    @classmethod
    def _known_optimizer(cls, v: str) -> str:
        from timm.optim import list_optimizers

        names = list_optimizers()
        if v.lower() not in names:
            raise ValueError(f"unknown optimizer {v!r}{did_you_mean(v.lower(), names)}")
        return v.lower()


class SchedulerConfig(_Section):
    name: Literal[SCHEDULERS] = "cosine"  # type: ignore[valid-type]
    warmup_epochs: int = Field(0, ge=0)
    warmup_lr: float = Field(1e-6, ge=0.0)
    min_lr: float = Field(1e-6, ge=0.0)
    decay_epochs: float = Field(10, gt=0)
    decay_rate: float = Field(0.1, gt=0.0)
    patience: int = Field(2, ge=0)

    @model_validator(mode="after")
    def _plateau_factor(self) -> "SchedulerConfig":
        if self.name == "plateau" and self.decay_rate >= 1:
            raise ValueError(f"decay_rate must be < 1 for plateau (it multiplies the rate), got {self.decay_rate}")
        return self


class LossConfig(_Section):
    name: Literal["ce", "focal", "label_smoothing", "focal_ls", "soft_f1"] = "ce"
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    gamma: float = Field(2.0, ge=0.0)
    class_weights: Union[Literal["auto"], list[float], None] = None
    task_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # mask, gender, age (model.head: multi)

    @field_validator("class_weights")
    @classmethod
    def _eighteen_weights(cls, v):
        if isinstance(v, list) and (len(v) != 18 or min(v) < 0):
            raise ValueError(f"must be 'auto' or a list of 18 non-negative weights, got {len(v)} values")
        return v


class FreezeConfig(_Section):
    """Melting: train the head alone, then unfreeze after `epochs` or a `patience` plateau."""

    epochs: Optional[int] = Field(None, gt=0)
    patience: Optional[int] = Field(None, gt=0)

    @model_validator(mode="after")
    def _one_trigger(self) -> "FreezeConfig":
        if self.epochs is None and self.patience is None:
            raise ValueError("set freeze.epochs and/or freeze.patience (or freeze: null)")
        return self


class EmaConfig(_Section):
    """Exponential moving average of the weights (timm `ModelEmaV3`), evaluated beside the raw weights."""

    decay: float = Field(0.9998, gt=0.0, lt=1.0)
    warmup: bool = True


class TrainerConfig(_Section):
    epochs: int = Field(10, gt=0)
    accumulate_steps: int = Field(1, ge=1)
    grad_clip: Optional[float] = Field(None, gt=0)
    max_bad_steps: int = Field(0, ge=0)
    device: str = "auto"
    amp: Literal["auto", "none", "fp16", "bf16"] = "auto"
    monitor: str = "max val_f1"
    early_stop_patience: int = Field(0, ge=0)
    freeze: Optional[FreezeConfig] = None
    ema: Optional[EmaConfig] = None
    deterministic: bool = False
    channels_last: bool = False
    compile: bool = False
    cudnn_benchmark: bool = True
    sync_bn: bool = False

    @field_validator("device")
    @classmethod
    def _device_form(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", v):
            raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @field_validator("monitor")
    @classmethod
    def _monitor_form(cls, v: str) -> str:
        parts = v.split()
        if len(parts) != 2 or parts[0] not in ("min", "max") or parts[1] not in MONITOR_METRICS:
            raise ValueError(f"must be 'min|max <metric>' with metric in {list(MONITOR_METRICS)}, got {v!r}")
        return v

    @model_validator(mode="after")
    def _ema_monitor_needs_ema(self) -> "TrainerConfig":
        if self.monitor.split()[1].startswith("ema_") and self.ema is None:  # see checkpoint.monitors_ema
            raise ValueError(f"monitor {self.monitor!r} needs trainer.ema")
        return self


class WandbConfig(_Section):
    project: str = "mask-classification"
    mode: Literal["offline", "online"] = "offline"
    entity: Optional[str] = None


class LoggingConfig(_Section):
    """Optional mirrors of the TensorBoard logs."""

    wandb: Optional[WandbConfig] = None


class Config(_Section):
    """The whole experiment. Each section goes to the factory that needs it."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9_.-]+$")
    seed: int = Field(42, ge=0, lt=2**32)
    save_dir: Path = Path("saved")
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    loss: LossConfig = Field(default_factory=LossConfig)
    trainer: TrainerConfig = Field(default_factory=TrainerConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)

    @model_validator(mode="after")
    def _consistent(self) -> "Config":
        """Combinations that would silently not do what they say."""
        has_val = self.data.val_ratio > 0 or self.data.n_folds >= 2
        on_val = self.trainer.monitor.split()[1] != "train_loss"
        if self.model.head == "multi" and self.loss.class_weights is not None:
            raise ValueError("loss.class_weights: not used by model.head: multi (its losses are per task); "
                             "weigh the tasks with loss.task_weights or set class_weights: null")
        if not has_val and self.trainer.freeze is not None and self.trainer.freeze.patience is not None:
            raise ValueError("trainer.freeze.patience: no validation set (data.val_ratio: 0), so it would never "
                             "unfreeze; use trainer.freeze.epochs")
        if not has_val and on_val and self.scheduler.name == "plateau":
            raise ValueError(f"scheduler.name: plateau follows {self.trainer.monitor.split()[1]}, but there is "
                             "no validation set (data.val_ratio: 0); use another scheduler or monitor train_loss")
        return self

    @model_validator(mode="after")
    def _resolve_augment(self) -> "Config":
        """Fill `augment.image_size/mean/std` left empty from the backbone's pretrained config, so a
        loaded config is complete (the resolved values are what `config.yaml` records)."""
        aug = self.augment
        if aug.image_size is not None and aug.mean is not None and aug.std is not None:
            return self
        import timm

        pcfg = timm.get_pretrained_cfg(self.model.backbone)
        pcfg = pcfg.to_dict() if pcfg is not None else {}
        resolved = {"image_size": aug.image_size or tuple(pcfg.get("input_size", (3, 224, 224))[1:]),
                    "mean": aug.mean or tuple(pcfg.get("mean", IMAGENET_MEAN)),
                    "std": aug.std or tuple(pcfg.get("std", IMAGENET_STD))}
        object.__setattr__(self, "augment", aug.model_copy(update=resolved))
        return self

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-safe dict (paths as strings)."""
        return self.model_dump(mode="json")


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split 'a.b=value' into (['a', 'b'], parsed value)."""
    key, sep, raw = text.partition("=")
    if not sep or not key or not all(key.split(".")):
        raise ConfigError(f"override {text!r}: expected key.sub=value")
    try:
        value = _bounded(yaml.load(raw, Loader=_Loader), f"override {text!r}") if raw else None
    except yaml.YAMLError as err:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({err.__class__.__name__})") from None
    return key.split("."), value


def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, str]:
    """Set each override into `raw` in place; return {dotted key: override text}."""
    sources = {}
    for text in overrides:
        keys, value = parse_override(text)
        node = raw
        for i, k in enumerate(keys[:-1]):
            child = node.setdefault(k, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {text!r}: {'.'.join(keys[: i + 1])} is not a section")
            node = child
        node[keys[-1]] = value
        sources[".".join(keys)] = text
    return sources


MAX_YAML_VALUES = 100_000  # a config has a few hundred; YAML aliases could expand to billions


def expanded_size(value: Any, memo: Optional[dict[int, int]] = None) -> int:
    """How many values `value` holds once YAML aliases are expanded (shared nodes counted each time)."""
    memo = {} if memo is None else memo
    if id(value) in memo:
        return memo[id(value)]
    children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    memo[id(value)] = size = 1 + sum(expanded_size(child, memo) for child in children)
    return size


def _bounded(data: Any, where: str) -> Any:
    if expanded_size(data) > MAX_YAML_VALUES:
        raise ConfigError(f"{where}: expands to more than {MAX_YAML_VALUES:,} values (YAML aliases?); refused")
    return data


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping with the safe loader; errors name the file."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = _bounded(yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader), str(path))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}:{where} invalid YAML") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


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


def _describe(err: dict[str, Any]) -> tuple[str, str]:
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key" + did_you_mean(str(err["loc"][-1]), section_fields(err["loc"][:-1]))
    elif err["type"] == "literal_error":
        choices = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        value = str(err.get("input"))
        hint = did_you_mean(value, choices) or f" (choose from: {', '.join(choices)})"
        msg = f"unknown value {value!r}{hint}"
    elif err["type"] not in ("missing", "value_error") and not isinstance(err.get("input"), dict):
        msg = f"{msg} (got {err['input']!r})"
    return loc, msg


def build_config(raw: dict[str, Any], source: str, override_sources: dict[str, str] | None = None) -> Config:
    """Validate a raw mapping; the first problem becomes a one-line `ConfigError`."""
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        loc, msg = _describe(exc.errors()[0])
        override_sources = override_sources or {}
        origin = next((f"override {t!r}" for k, t in override_sources.items()
                       if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")), source)
        raise ConfigError(f"{origin}: {loc}: {msg}") from None


def load_config(path: Optional[Path | str], overrides: Sequence[str] = ()) -> Config:
    """Read `path` (or start from defaults), apply overrides, validate."""
    raw = read_yaml(Path(path)) if path else {}
    sources = apply_overrides(raw, overrides)
    return build_config(raw, str(path) if path else "<defaults>", sources)


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
