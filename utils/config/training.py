"""The model, optimisation and loop sections of the schema: `model`, `optimizer`, `scheduler`, `loss`,
`trainer` (freeze, EMA, weight averaging) and `logging`. Names that only timm knows (backbones, optimizers)
are checked by `utils.config.backbone` when a config is resolved, not here."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from utils.config.base import SCHEDULERS, Monitor, MonitorSpec, Section, absolute
from utils.labels import NUM_CLASSES


class ModelConfig(Section):
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
    age: Literal["classes", "ordinal"] = "classes"
    """with `head: multi`: `classes` (the age head predicts the 3 groups) or `ordinal` (it predicts the age in
    one-year bins 18..60, learnt from each person's written age with an ordinal loss; the group boundaries are
    refitted on validation for macro-F1 after every validation pass, start at `data.age_bounds`, and are saved
    in the checkpoint, logged as `val_age_low`/`val_age_high`)"""
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


class OptimizerConfig(Section):
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
    def _lower_case(cls, v: str) -> str:
        """timm's names are lower case; whether it knows the name is checked on resolving (`utils.config.backbone`)."""
        return v.lower()


class SchedulerConfig(Section):
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


class LossConfig(Section):
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


class FreezeConfig(Section):
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


class EmaConfig(Section):
    """Exponential moving average of the weights (timm `ModelEmaV3`), evaluated beside the raw weights."""

    decay: float = Field(0.9998, gt=0.0, lt=1.0)
    """decay of the moving average per optimizer update"""
    warmup: bool = True
    """timm's EMA warmup: the decay ramps up over the first updates"""


class SwaConfig(Section):
    """Stochastic weight averaging over the last epochs (`trainer/swa.py`)."""

    epochs: int = Field(5, ge=1)
    """how many of the last epochs to average (their end-of-epoch weights, equally)"""
    bn_update: bool = True
    """recompute BatchNorm statistics of the averaged weights over one pass of the training data"""
    use: bool = False
    """`swa.pth` is the run's model: `--all-folds` writes `oof.csv` from each fold's `swa.pth`, and prediction
    from the run (or each of its folds) uses it instead of `best.pth` (`inference.py --which` overrides)"""


class SoupConfig(Section):
    """A greedy soup of the best epochs' weights (`trainer/soup.py`)."""

    top_k: int = Field(5, ge=2)
    """the epochs (best validation scores) whose weights are candidates, tried best first"""
    bn_update: bool = True
    """recompute BatchNorm statistics of each tried soup over one pass of the training data"""
    use: bool = False
    """`soup.pth` is the run's model (as `trainer.swa.use` makes `swa.pth` it; not both)"""


class TrainerConfig(Section):
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
    """`auto` (bf16 on GPUs with native bf16, fp16 + grad scaler below; on a CPU with native bf16, AVX512-BF16 or
    AMX, the training step in bf16 and validation and prediction in fp32, elsewhere fp32), `fp16`, `bf16` (fp16
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
    soup: Optional[SoupConfig] = None
    """`{top_k: 5}`: a greedy soup — the best epoch's weights, then each of the next best epochs' averaged in if
    validation does not get worse — saved as `soup.pth`, its validation score in `summary.json` (optimistic: the
    same people chose it; judge it on eval data or OOF). Needs a validation set; candidates are kept in memory
    (top_k copies of the weights), so a resumed run's soup draws on the epochs since the resume"""
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


class WandbConfig(Section):
    project: str = "mask-classification"
    """Weights & Biases project"""
    mode: Literal["offline", "online"] = "offline"
    """`offline` (sync later with `wandb sync`) or `online`"""
    entity: Optional[str] = None
    """Weights & Biases team or user; `null`: your default"""


class LoggingConfig(Section):
    """Optional mirrors of the TensorBoard logs."""

    wandb: Optional[WandbConfig] = None
    """`{project: …, mode: offline|online, entity: …}` mirrors scalars and images to Weights & Biases (`pip
    install wandb` first; a clear error if it is missing)"""
