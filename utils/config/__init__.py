"""The experiment configuration. The schema is pure (`base`, `data`, `training`, `schema`: pydantic only);
`reader` turns YAML files and overrides into a `Config`; `backbone` adds what only timm knows.

    from utils.config import Config, load_config
"""
from utils.config.base import (
    DATASET_NAMES,
    IMAGENET_MEAN,
    IMAGENET_STD,
    MAX_SIDE,
    MONITOR_METRICS,
    SCHEDULERS,
    MonitorSpec,
)
from utils.config.data import AugmentConfig, DataConfig, FaceCropConfig, MixConfig, StepConfig
from utils.config.reader import (
    apply_overrides,
    build_config,
    check_cli_values,
    load_config,
    merged,
    parse_override,
    read_recipe,
    read_saved_config,
    read_yaml,
    save_config,
)
from utils.config.schema import Config, section_fields
from utils.config.training import (
    EmaConfig,
    FreezeConfig,
    LoggingConfig,
    LossConfig,
    ModelConfig,
    OptimizerConfig,
    SchedulerConfig,
    SoupConfig,
    SwaConfig,
    TrainerConfig,
    WandbConfig,
)

__all__ = [
    "DATASET_NAMES", "IMAGENET_MEAN", "IMAGENET_STD", "MAX_SIDE", "MONITOR_METRICS", "SCHEDULERS", "MonitorSpec",
    "AugmentConfig", "DataConfig", "FaceCropConfig", "MixConfig", "StepConfig", "apply_overrides", "build_config",
    "check_cli_values", "load_config", "merged", "parse_override", "read_recipe", "read_saved_config", "read_yaml",
    "save_config", "Config", "section_fields", "EmaConfig", "FreezeConfig", "LoggingConfig", "LossConfig",
    "ModelConfig", "OptimizerConfig", "SchedulerConfig", "SoupConfig", "SwaConfig", "TrainerConfig", "WandbConfig",
]
