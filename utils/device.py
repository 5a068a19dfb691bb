"""Device and mixed-precision choices."""
from __future__ import annotations

import logging
from typing import Optional

import torch

LOG = logging.getLogger(__name__)
AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' -> CUDA if present, else CPU."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        from utils.errors import ConfigError

        raise ConfigError(f"trainer.device: {spec!r} requested but CUDA is not available")
    return device


def amp_dtype(amp: str, device: torch.device) -> Optional[torch.dtype]:
    """Autocast dtype for `trainer.amp` on `device`, or None (AMP runs on CUDA only)."""
    if amp == "none":
        return None
    if device.type != "cuda":
        LOG.warning("trainer.amp=%s ignored on %s (AMP runs on CUDA only)", amp, device)
        return None
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        LOG.warning("trainer.amp=bf16 not supported on this GPU; using fp16")
        return torch.float16
    return AMP_DTYPES[amp]
