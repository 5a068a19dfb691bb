"""YAML config + `key.sub=value` overrides -> one typed, validated, frozen `Config`."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Sequence, Union

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from utils.errors import ConfigError, did_you_mean
from utils.labels import NUM_CLASSES

DATASETS = ("MaskSplitByProfileDataset", "MaskBaseDataset")
SCHEDULERS = ("cosine", "tanh", "step", "multistep", "plateau", "poly", "none")
MAX_SIDE = 2048  # network input side; the photos are 512 x 384
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MONITOR_METRICS = ("val_f1", "val_acc", "val_loss", "train_loss", "ema_val_f1", "ema_val_acc", "ema_val_loss")


@dataclass(frozen=True)
class MonitorSpec:
    """`trainer.monitor`: the metric that picks `best.pth`, drives early stopping and the unfreeze, and its
    direction. Written `max val_f1` in configs and checkpoints; a mapping `{mode, metric}` is read too."""

    mode: Literal["min", "max"]
    metric: str

    @classmethod
    def parse(cls, value: Any) -> "MonitorSpec":
        if isinstance(value, MonitorSpec):
            return value
        if isinstance(value, dict) and set(value) == {"mode", "metric"}:
            mode, metric = value["mode"], value["metric"]
        elif isinstance(value, str) and len(value.split()) == 2:
            mode, metric = value.split()
        else:
            mode = metric = None
        if mode not in ("min", "max") or metric not in MONITOR_METRICS:
            raise ValueError(f"must be 'min|max <metric>' with metric in {list(MONITOR_METRICS)}, got {value!r}")
        return cls(mode, metric)

    def __str__(self) -> str:
        return f"{self.mode} {self.metric}"

    @property
    def direction(self) -> str:
        """Optuna's word for it: `maximize` or `minimize`."""
        return "maximize" if self.mode == "max" else "minimize"

    @property
    def needs_validation(self) -> bool:
        return self.metric != "train_loss"

    @property
    def on_ema(self) -> bool:
        """True when the metric judges the EMA weights (then `best.pth` holds them as the best)."""
        return self.metric.startswith("ema_")


Monitor = Annotated[MonitorSpec, BeforeValidator(MonitorSpec.parse), PlainSerializer(str, return_type=str)]


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
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True, allow_inf_nan=False)


class StepConfig(_Section):
    """One albumentations transform: its class name and keyword arguments."""

    name: str
    """albumentations transform class name"""
    args: dict[str, Any] = Field(default_factory=dict)
    """its keyword arguments"""


class DataConfig(_Section):
    dataset: Literal[DATASETS] = "MaskSplitByProfileDataset"  # type: ignore[valid-type]
    """split by person, stratified over gender × age group. `MaskBaseDataset` splits by image and **leaks
    people** between train and val (inflated scores; for comparison only)"""
    train_dir: Path = Path("data/train")
    """the competition's `train/` folder (`train.csv` and `images/`)"""
    eval_dir: Optional[Path] = Path("data/eval")
    """the `eval/` folder (`info.csv` and `images/`) that `inference.py` predicts; `null`: none"""
    val_ratio: float = Field(0.2, ge=0.0, lt=1.0)
    """share of people (per stratum) in validation, in [0, 1); `0` trains on everyone (no val: `best.pth` = last
    epoch)"""
    n_folds: int = Field(0, ge=0)
    """person-level stratified K-fold (gender × age strata dealt round-robin): validate on fold `fold` of
    `n_folds` instead of `val_ratio`; `train.py --all-folds` trains every fold into `RUN/folds/fold_k/` and
    writes `RUN/oof.csv` (out-of-fold predictions) and the OOF macro-F1 (`RUN/folds_summary.json`)"""
    fold: int = Field(0, ge=0)
    """the fold that validates, `0 .. n_folds - 1` (see `data.n_folds`)"""
    split_seed: Optional[int] = Field(None, ge=0, lt=2**32)
    """seed of the validation split and the folds alone (`null`: the run's `seed`). Runs of one `split_seed` and
    other training seeds are validated on the same people, so `tools.compare` pairs them person by person"""
    age_bounds: tuple[int, int] = (30, 60)
    """age-group boundaries of the **training** labels (`[30, 58]` moves the oldest group down). Validation,
    `best.pth`, early stopping, the unfreeze, `oof.csv`, the confusion matrix and every reported F1 always use the
    competition's groups (<30, 30–59, ≥60); `train.log` says which labels each side uses"""
    relabel: Optional[Path] = None
    """CSV of label fixes `id,field,value` (`gender` male/female, `age` integer, `swap_mask` to swap a person's
    `incorrect_mask`/`normal`), applied at load time and logged; an unknown id is an error. The fixes apply to
    training **and** validation labels: they correct the ground truth, so validation is scored on the corrected
    truth"""
    skip_bad_images: bool = False
    """leave out bad folders/images with a warning instead of failing"""
    group_duplicates: bool = True
    """find near-duplicate people (one person under two ids: dHash of their `normal` and `mask1` photos, as the
    data report does) and keep each group on one side of every split and fold; a warning counts them. About 1 ms
    per person"""
    pseudo_labels: Optional[Path] = None
    """a CSV written by `inference.py --pseudo-labels` (`ImageID,label,probability`): those eval images join the
    **training** set only (never validation, never `oof.csv`), each weighing `pseudo_weight` in the loss; an
    image that is also a training image is refused"""
    pseudo_weight: float = Field(0.5, gt=0.0, le=1.0)
    """loss weight of each pseudo-labelled image, in (0, 1] (see `data.pseudo_labels`)"""
    jpeg_draft: bool = True
    """decode JPEGs at the smallest DCT scale ≥ `augment.image_size` (much faster; steps with absolute pixel
    sizes such as `CenterCrop` then see a smaller image — set `false` for those)"""
    sampler: Literal["random", "balanced"] = "random"
    """`balanced`: draw each training image with weight 1 / (images of its class), indexed by class id, so
    classes come out near uniform (epoch-seeded, sharded under DDP)"""
    cache: Literal["none", "memory", "disk"] = "none"
    """decode every photo once, resized to one pre-augmentation size (the JPEG draft size covering
    `augment.image_size`, or the full photo without `jpeg_draft`), into a uint8 array: `memory` (RAM, shared by
    forked loader workers) or `disk` (a memory-mapped file in `data.cache_dir`, keyed by the files and the size,
    built once by the first local rank and shared by all DDP ranks and workers); later epochs read no image
    files"""
    cache_dir: Path = Path(".cache/images")
    """where `disk` caches live (delete freely)"""
    batch_size: int = Field(32, gt=0)
    """per process"""
    num_workers: Optional[int] = Field(None, ge=0)
    """DataLoader workers"""

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
    """α of the Beta(α, α) mixing ratio"""
    prob: float = Field(0.5, ge=0.0, le=1.0)
    """share of training batches mixed"""


class FaceCropConfig(_Section):
    """Crop each photo to its face (`data_loader.face_crop`)."""

    margin: float = Field(0.3, ge=0.0, le=2.0)
    """share of the face box added on every side"""
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    """boxes below this detector score use the fallback window"""
    detector: Literal["mtcnn", "haar"] = "mtcnn"
    """`mtcnn` or `haar` (see `tools.faces`)"""
    fallback_scale: float = Field(0.7, gt=0.0, le=1.0)
    """fallback: a centred window of the crop's aspect, this share of the largest that fits"""


class AugmentConfig(_Section):
    image_size: Optional[tuple[int, int]] = None
    """network input `[height, width]`"""
    mean: Optional[tuple[float, float, float]] = None
    """normalisation mean per RGB channel (0–1); `null`: the backbone's pretrained values"""
    std: Optional[tuple[float, float, float]] = None
    """normalisation standard deviation per RGB channel (> 0); `null`: the backbone's pretrained values"""
    train: list[StepConfig] = Field(default_factory=list)
    """albumentations steps for training, `{name: <class>, args: {...}}`, applied to the decoded photo; then
    `Resize(image_size)`, `Normalize`, `ToTensorV2` are appended"""
    eval: list[StepConfig] = Field(default_factory=list)
    """albumentations steps for validation and inference, `{name: <class>, args: {...}}`; then
    `Resize(image_size)`, `Normalize`, `ToTensorV2` are appended"""
    mixup: Optional[MixConfig] = None
    """`{alpha: 1.0, prob: 0.5}`: MixUp / CutMix on training batches (timm `Mixup`; labels mixed by area, losses
    take the soft targets). Any batch size works: in an odd batch the last image passes unmixed"""
    cutmix: Optional[MixConfig] = None
    """`{alpha: 1.0, prob: 0.5}`: MixUp / CutMix on training batches (timm `Mixup`; labels mixed by area, losses
    take the soft targets). Any batch size works: in an odd batch the last image passes unmixed"""
    cutmix_mode: Literal["random", "half"] = "random"
    """`half`: face-aware CutMix — an image takes the left or right half (cut at the centre ± 10%) of a partner,
    λ ≈ 0.5"""
    face_crop: Optional[FaceCropConfig] = None
    """`{margin: 0.3, min_score: 0.5, detector: mtcnn, fallback_scale: 0.7}`: cut each photo to its face (boxes
    from `faces.csv`, see docs/leaderboard.md) before the cache and the steps; boxes below `min_score` use a
    centred window of `fallback_scale`"""

    @model_validator(mode="after")
    def _half_alone(self) -> "AugmentConfig":
        if self.cutmix_mode == "half" and self.mixup is not None:
            raise ValueError("cutmix_mode=half cannot be combined with mixup")
        return self

    @field_validator("std")
    @classmethod
    def _positive_std(cls, v: Optional[tuple[float, float, float]]) -> Optional[tuple[float, float, float]]:
        if v is not None and min(v) <= 0:
            raise ValueError(f"must be three positive numbers (it divides every pixel), got {list(v)}")
        return v

    @field_validator("image_size")
    @classmethod
    def _positive_size(cls, v: Optional[tuple[int, int]]) -> Optional[tuple[int, int]]:
        if v is not None and not (0 < min(v) and max(v) <= MAX_SIDE):
            raise ValueError(f"must be [height, width] in 1..{MAX_SIDE}, got {list(v)}")
        return v


class ModelConfig(_Section):
    backbone: str = "resnet18"
    """any `timm` model name (ConvNeXt, Swin, EfficientNet, ResNet, …)"""
    pretrained: bool = False
    """timm pretrained weights"""
    pretrained_path: Optional[Path] = None
    """local weight file instead of a download"""
    head: Literal["linear", "shallow", "multi"] = "linear"
    """`linear` (dropout + Linear), `shallow` (Linear → act → BatchNorm1d → dropout → Linear) or `multi` (mask 3
    / gender 2 / age 3 heads; their log-probabilities sum to the 18-class prediction, each task has its own loss
    weighted by `loss.task_weights`; `loss.class_weights` is refused with it)"""
    hidden_dim: int = Field(512, gt=0)
    """width of the `shallow` head's hidden layer"""
    activation: str = "gelu"
    """activation of the `shallow` head (any timm activation name)"""
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    """dropout before the head's last Linear"""
    drop_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """classifier dropout inside the backbone, passed to `timm.create_model`"""
    drop_path_rate: float = Field(0.0, ge=0.0, lt=1.0)
    """stochastic depth of the backbone, passed to `timm.create_model`"""

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
    """any `timm.optim.list_optimizers()` name"""
    lr: float = Field(1e-3, gt=0.0)
    """learning rate of the head (the backbone's is `lr` × `backbone_lr_scale`)"""
    weight_decay: float = Field(0.05, ge=0.0)
    """decoupled weight decay; none on biases, norms and what the backbone lists in `no_weight_decay()`
    (position embeddings, Swin's relative position tables)"""
    momentum: float = Field(0.9, ge=0.0, lt=1.0)
    """momentum of optimizers that take one (e.g. `sgd`, `momentum`)"""
    backbone_lr_scale: float = Field(1.0, gt=0.0)
    """backbone learning rate = `lr` × this (the head keeps `lr`)"""
    layer_decay: Optional[float] = Field(None, gt=0.0, le=1.0)
    """layer-wise LR decay inside the backbone (timm's layer groups), e.g. `0.75`"""

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
    """`cosine`, `tanh`, `step`, `multistep`, `poly` (timm, stepped per update), `plateau` (torch
    `ReduceLROnPlateau` on `trainer.monitor`, per epoch, after the warmup; needs a validation set unless the
    monitor is `train_loss`), `none`. **Extending a run** (`--resume RUN trainer.epochs=N`):
    `cosine`/`tanh`/`poly` continue from the current step on the schedule of an N-epoch run (the same rates a
    run started with N epochs has from there on); `step`/`multistep` keep their milestones (`decay_epochs` is
    absolute); `plateau` keeps its state. The rates used are logged per epoch as `lr_head` and `lr_backbone`"""
    warmup_epochs: int = Field(0, ge=0)
    """epochs of linear warmup, from `warmup_lr` to `optimizer.lr`"""
    warmup_lr: float = Field(1e-6, ge=0.0)
    """learning rate at the start of the warmup"""
    min_lr: float = Field(1e-6, ge=0.0)
    """lowest learning rate of the schedule"""
    decay_epochs: float = Field(10, gt=0)
    """`step`/`multistep`: epochs between decays"""
    decay_rate: float = Field(0.1, gt=0.0)
    """`step`/`multistep`: the factor of each decay; `plateau`: the factor (< 1)"""
    patience: int = Field(2, ge=0)
    """`plateau`: epochs without improvement of the monitored metric before the rate is multiplied by
    `decay_rate` (its state is in checkpoints: resume is exact)"""

    @model_validator(mode="after")
    def _plateau_factor(self) -> "SchedulerConfig":
        if self.name == "plateau" and self.decay_rate >= 1:
            raise ValueError(f"decay_rate must be < 1 for plateau (it multiplies the rate), got {self.decay_rate}")
        return self


class LossConfig(_Section):
    name: Literal["ce", "focal", "label_smoothing", "focal_ls", "soft_f1"] = "ce"
    """`ce`, `focal` (`loss.gamma`), `label_smoothing`, `focal_ls` (focal on smoothed targets), `soft_f1` (1 −
    differentiable macro-F1 over the classes in the batch); all accept soft targets"""
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    """smoothing ε (for `ce`, `label_smoothing`, `focal_ls`)"""
    gamma: float = Field(2.0, ge=0.0)
    """focal γ (for `focal`, `focal_ls`)"""
    class_weights: Union[Literal["auto"], list[float], None] = None
    """`auto` (inverse class frequency of the training split, mean 1) or a list of 18 weights, for any loss"""
    task_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    """mask, gender, age loss weights for `model.head: multi`"""

    @field_validator("task_weights")
    @classmethod
    def _task_weights(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) < 0 or sum(v) <= 0:
            raise ValueError(f"must be three non-negative weights (mask, gender, age) with a positive sum, "
                             f"got {list(v)}")
        return v

    @field_validator("class_weights")
    @classmethod
    def _eighteen_weights(cls, v):
        if isinstance(v, list) and (len(v) != NUM_CLASSES or min(v) < 0):
            raise ValueError(f"must be 'auto' or a list of {NUM_CLASSES} non-negative weights, got {len(v)} values")
        return v


class FreezeConfig(_Section):
    """The backbone freeze ("melting"): train the head alone, then unfreeze after `epochs` or a `patience`
    plateau."""

    epochs: Optional[int] = Field(None, gt=0)
    """unfreeze the backbone after this many epochs"""
    patience: Optional[int] = Field(None, gt=0)
    """unfreeze the backbone after this many epochs without improvement of `trainer.monitor` (needs a validation
    set)"""

    @model_validator(mode="after")
    def _one_trigger(self) -> "FreezeConfig":
        if self.epochs is None and self.patience is None:
            raise ValueError("set freeze.epochs and/or freeze.patience (or freeze: null)")
        return self


class EmaConfig(_Section):
    """Exponential moving average of the weights (timm `ModelEmaV3`), evaluated beside the raw weights."""

    decay: float = Field(0.9998, gt=0.0, lt=1.0)
    """decay of the moving average per optimizer update"""
    warmup: bool = True
    """timm's EMA warmup: the decay ramps up over the first updates"""


class SwaConfig(_Section):
    """Stochastic weight averaging over the last epochs (`trainer/averaging.py`)."""

    epochs: int = Field(5, ge=1)
    """how many of the last epochs to average (their end-of-epoch weights, equally)"""
    bn_update: bool = True
    """recompute BatchNorm statistics of the averaged weights over one pass of the training data"""
    use: bool = False
    """`swa.pth` is the run's model: `--all-folds` writes `oof.csv` from each fold's `swa.pth`, and prediction
    from the run (or each of its folds) uses it instead of `best.pth` (`inference.py --which` overrides)"""


class TrainerConfig(_Section):
    epochs: int = Field(10, gt=0)
    """epochs to train (extending a finished run with `--resume RUN trainer.epochs=N` follows the N-epoch
    schedule)"""
    accumulate_steps: int = Field(1, ge=1)
    """gradient accumulation (one optimizer update per N batches; DDP all-reduces once per update)"""
    grad_clip: Optional[float] = Field(None, gt=0)
    """clip the gradient norm (after unscaling under fp16)"""
    max_bad_steps: int = Field(0, ge=0)
    """NaN/Inf-loss steps to skip before stopping the run"""
    device: str = "auto"
    """`auto` (CUDA if present), `cpu`, `cuda`, `cuda:N`"""
    amp: Literal["auto", "none", "fp16", "bf16"] = "auto"
    """`auto` (bf16 on GPUs with native bf16, fp16 + grad scaler below, none on the CPU), `fp16`, `bf16` (fp16
    with a warning on a GPU without native bf16) or `none` (docs/gpus.md)"""
    monitor: Monitor = MonitorSpec("max", "val_f1")
    """`min|max` + `val_f1`, `val_acc`, `val_loss`, `train_loss` (or `ema_val_*` with `trainer.ema`): picks
    `best.pth`, drives early stopping and the unfreeze patience; fixed for the whole run"""
    early_stop_patience: int = Field(0, ge=0)
    """stop after this many epochs without improvement (0 = off)"""
    freeze: Optional[FreezeConfig] = None
    """freeze-then-unfreeze ("melting"): `{epochs: N}` and/or `{patience: K}` (`patience` needs a validation
    set) — train the head on a frozen backbone (its BatchNorm statistics frozen too), then unfreeze everything
    after N epochs or after K epochs without improvement; logged"""
    ema: Optional[EmaConfig] = None
    """`{decay: 0.9998, warmup: true}`: EMA of the weights (timm `ModelEmaV3`), evaluated every epoch as
    `ema_val_*` and saved in checkpoints; `trainer.monitor: max ema_val_f1` picks the best epoch by it, and
    `inference.py` then predicts with the EMA weights"""
    swa: Optional[SwaConfig] = None
    """`{epochs: 5, bn_update: true}`: average the weights of the last `epochs` epochs into `swa.pth` (a
    checkpoint like `best.pth`: `inference.py --ckpt RUN/swa.pth`), its validation macro-F1 in `summary.json`
    beside the best epoch's"""
    deterministic: bool = False
    """`torch.use_deterministic_algorithms` (GPU runs as close to repeatable as PyTorch allows)"""
    channels_last: bool = False
    """channels-last memory format (faster convolutions on GPUs with tensor cores)"""
    compile: bool = False
    """`torch.compile` the model"""
    cudnn_benchmark: bool = True
    """cuDNN autotuning (CUDA; off when `deterministic`)"""
    sync_bn: bool = False
    """SyncBatchNorm under DDP (CUDA)"""
    threads: Optional[int] = Field(None, gt=0)
    """CPU threads of each process for its own math (`torch.set_num_threads`); `null`: PyTorch's default (one
    per core). On a shared CPU set it to your share of the cores (or `OMP_NUM_THREADS`): more threads than
    free cores makes every step slower"""

    @field_validator("device")
    @classmethod
    def _device_form(cls, v: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", v):
            raise ValueError(f"must be auto, cpu, cuda or cuda:N, got {v!r}")
        return v

    @model_validator(mode="after")
    def _ema_monitor_needs_ema(self) -> "TrainerConfig":
        if self.monitor.on_ema and self.ema is None:
            raise ValueError(f"monitor '{self.monitor}' needs trainer.ema")
        return self


class WandbConfig(_Section):
    project: str = "mask-classification"
    """Weights & Biases project"""
    mode: Literal["offline", "online"] = "offline"
    """`offline` (sync later with `wandb sync`) or `online`"""
    entity: Optional[str] = None
    """Weights & Biases team or user; `null`: your default"""


class LoggingConfig(_Section):
    """Optional mirrors of the TensorBoard logs."""

    wandb: Optional[WandbConfig] = None
    """`{project: …, mode: offline|online, entity: …}` mirrors scalars and images to Weights & Biases (`pip
    install wandb` first; a clear error if it is missing)"""


class Config(_Section):
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
        if not has_val and self.trainer.freeze is not None and self.trainer.freeze.patience is not None:
            raise ValueError("trainer.freeze.patience: no validation set (data.val_ratio: 0), so it would never "
                             "unfreeze; use trainer.freeze.epochs")
        if not has_val and on_val and self.scheduler.name == "plateau":
            raise ValueError(f"scheduler.name: plateau follows {self.trainer.monitor.metric}, but there is "
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

    @property
    def split_seed(self) -> int:
        """The seed that chooses the validation people and folds: `data.split_seed`, else `seed`."""
        return self.data.split_seed if self.data.split_seed is not None else self.seed

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
    children: Any = ()
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
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


def unknown_key(raw: Any, path: tuple[str, ...] = ()) -> Optional[tuple[str, ...]]:
    """The first key of `raw` the schema does not have, or None. Checked before validation, which imports
    timm (and torch) to know backbones: a typo costs no import."""
    if not isinstance(raw, dict):
        return None
    allowed = section_fields(list(path))
    for key, value in raw.items():
        if allowed and str(key) not in allowed:
            return (*path, str(key))
        if section_fields([*path, str(key)]):
            found = unknown_key(value, (*path, str(key)))
            if found is not None:
                return found
    return None


def build_config(raw: dict[str, Any], source: str, override_sources: dict[str, str] | None = None) -> Config:
    """Validate a raw mapping; the first problem becomes a one-line `ConfigError`."""
    override_sources = override_sources or {}

    def fail(loc: str, msg: str) -> ConfigError:
        origin = next((f"override {t!r}" for k, t in override_sources.items()
                       if loc == k or loc.startswith(k + ".") or k.startswith(loc + ".")), source)
        return ConfigError(f"{origin}: {loc}: {msg}")

    typo = unknown_key(raw)
    if typo is not None:
        raise fail(".".join(typo), "unknown key" + did_you_mean(typo[-1], section_fields(list(typo[:-1]))))
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        raise fail(*_describe(exc.errors()[0])) from None


def merged(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """`child` over `base`: mappings merge key by key, anything else (lists, null) replaces."""
    out = dict(base)
    for key, value in child.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def read_recipe(path: Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file, resolved through `base: other.yaml` (relative to the file): the base's keys, then
    this file's on top. The result no longer holds `base`."""
    raw = read_yaml(path)
    if "base" not in raw:
        return raw
    base = raw.pop("base")
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{path}: base must be the path of another config file, got {base!r}")
    base_path = Path(os.path.normpath(path.parent / base))
    if base_path.resolve() in {p.resolve() for p in (*_chain, path)}:
        raise ConfigError(f"{path}: base {base!r} leads back to itself")
    return merged(read_recipe(base_path, (*_chain, path)), raw)


def check_cli_values(values: dict[str, tuple[str, Any]]) -> None:
    """Check command-line values with the config's rules: {'--seed': ('seed', -1), ...}; a bad one is a
    one-line `ConfigError` naming the option."""
    overrides = {flag: f"{key}={json.dumps(value)}" for flag, (key, value) in values.items()}
    try:
        load_config(None, list(overrides.values()))
    except ConfigError as err:
        text = str(err)
        for flag, override in overrides.items():
            if text.startswith(f"override {override!r}: "):
                key, value = values[flag]
                raise ConfigError(f"{flag} {value}: {text.split(': ', 2)[-1]} (the rule of {key})") from None
        raise


def load_config(path: Optional[Path | str], overrides: Sequence[str] = ()) -> Config:
    """Read `path` (or start from defaults; `base:` followed), apply overrides, validate."""
    raw = read_recipe(Path(path)) if path else {}
    sources = apply_overrides(raw, overrides)
    return build_config(raw, str(path) if path else "<defaults>", sources)


def save_config(config: Config, path: Path) -> None:
    """Write the resolved config as YAML, atomically."""
    from utils.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
