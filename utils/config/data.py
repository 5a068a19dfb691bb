"""The `data` and `augment` sections of the schema: where the photos are, how people are split, how a photo
is decoded, cropped, augmented and cached."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, field_validator, model_validator

from utils.config.base import DATASET_NAMES, MAX_SIDE, Section, absolute


class StepConfig(Section):
    """One albumentations transform: its class name and keyword arguments."""

    name: str
    """albumentations transform class name"""
    args: dict[str, Any] = Field(default_factory=dict)
    """its keyword arguments"""


class DataConfig(Section):
    dataset: Literal[DATASET_NAMES] = "MaskSplitByProfileDataset"  # type: ignore[valid-type]
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


class MixConfig(Section):
    alpha: float = Field(1.0, gt=0.0)
    """α of the Beta(α, α) mixing ratio"""
    prob: float = Field(0.5, ge=0.0, le=1.0)
    """share of training batches mixed"""


class FaceCropConfig(Section):
    """Crop each photo to its face (`data_loader.face_crop`)."""

    margin: float = Field(0.3, ge=0.0, le=2.0)
    """share of the face box added on every side"""
    min_score: float = Field(0.5, ge=0.0, le=1.0)
    """boxes below this detector score use the fallback window"""
    detector: Literal["mtcnn", "haar"] = "mtcnn"
    """`mtcnn` or `haar` (see `tools.faces`)"""
    fallback_scale: float = Field(0.7, gt=0.0, le=1.0)
    """fallback: a centred window of the crop's aspect, this share of the largest that fits"""


class AugmentConfig(Section):
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
    center_crop: Optional[tuple[float, float]] = None
    """`[height, width]` shares of the photo: cut each photo to its centred window of that size before the cache
    and the steps (`[0.625, 0.667]` is 320×256 of a 512×384 photo: the face gets 1.5× the pixels at the same
    input size); the cache then holds the crop at `image_size`, and validation, inference, TTA and the ONNX
    export see the same pixels. `null`: the whole photo (or `face_crop`)"""
    face_crop: Optional[FaceCropConfig] = None
    """`{margin: 0.3, min_score: 0.5, detector: mtcnn, fallback_scale: 0.7}`: cut each photo to its face (boxes
    from `faces.csv`, see docs/leaderboard.md) before the cache and the steps; boxes below `min_score` use a
    centred window of `fallback_scale`"""

    @field_validator("center_crop")
    @classmethod
    def _shares(cls, v: Optional[tuple[float, float]]) -> Optional[tuple[float, float]]:
        if v is not None and not all(0.0 < share <= 1.0 for share in v):
            raise ValueError(f"must be [height, width] shares of the photo in (0, 1], got {list(v)}")
        return v

    @model_validator(mode="after")
    def _one_crop(self) -> "AugmentConfig":
        if self.center_crop is not None and self.face_crop is not None:
            raise ValueError("center_crop and face_crop both cut the photo before the resize: choose one "
                             "(augment.center_crop=null to use the face crop)")
        return self

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
