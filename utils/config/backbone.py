"""What only timm knows about a config, resolved once: whether its backbone and optimizer names exist, and the
backbone's input size, mean and std where `augment` leaves them empty. The resolved values are what a run's
`config.yaml` and checkpoints record, so a saved config is read back without this step (and without torch)."""
from __future__ import annotations

from typing import Optional

from utils.config.base import IMAGENET_MEAN, IMAGENET_STD
from utils.config.schema import Config
from utils.errors import did_you_mean


def unknown_name(config: Config) -> Optional[tuple[str, str]]:
    """(dotted key, message) for a backbone, optimizer or head activation name timm does not know, else None."""
    import timm
    from timm.optim import list_optimizers

    backbone = config.model.backbone
    if not timm.is_model(backbone):
        return "model.backbone", f"unknown timm model {backbone!r}{did_you_mean(backbone, timm.list_models())}"
    optimizer, names = config.optimizer.name, list_optimizers()
    if optimizer not in names:
        return "optimizer.name", f"unknown optimizer {optimizer!r}{did_you_mean(optimizer, names)}"
    activation = config.model.activation
    if config.model.head == "shallow" and activation_layer(activation) is None:
        return "model.activation", f"unknown activation {activation!r}{did_you_mean(activation, activation_names())}"
    return None


def activation_layer(name: str) -> Optional[type]:
    """timm's activation layer called `name`, or None where timm knows no such name."""
    from timm.layers import get_act_layer

    try:
        return get_act_layer(name)
    except KeyError:
        return None


def activation_names() -> list[str]:
    """The activation names timm knows (for a suggestion; empty if timm moves its table)."""
    from timm.layers import create_act

    return sorted(getattr(create_act, "_ACT_LAYER_DEFAULT", {}))


def is_resolved(config: Config) -> bool:
    """Whether `augment.image_size`, `mean` and `std` are all set (as in every saved config)."""
    aug = config.augment
    return aug.image_size is not None and aug.mean is not None and aug.std is not None


def with_backbone_defaults(config: Config) -> Config:
    """`config` with `augment.image_size/mean/std` left empty filled from the backbone's pretrained settings."""
    if is_resolved(config):
        return config
    import timm

    aug = config.augment
    pcfg = timm.get_pretrained_cfg(config.model.backbone)
    pcfg = pcfg.to_dict() if pcfg is not None else {}
    resolved = {"image_size": aug.image_size or tuple(pcfg.get("input_size", (3, 224, 224))[1:]),
                "mean": aug.mean or tuple(pcfg.get("mean", IMAGENET_MEAN)),
                "std": aug.std or tuple(pcfg.get("std", IMAGENET_STD))}
    return config.model_copy(update={"augment": aug.model_copy(update=resolved)})
