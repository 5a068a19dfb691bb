"""Device and mixed-precision choices, and the checks that keep a GPU from failing late or silently.

Public API: `resolve_device`, `check_cuda_arch`, `amp_dtype`, `cpu_native_bf16`, `nvidia_driver_version`.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Optional

import torch

from utils.errors import ConfigError, UserError

LOG = logging.getLogger(__name__)
AMP_DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
NATIVE_BF16 = (8, 0)  # Ampere and newer; below, torch emulates bf16 without tensor cores
DRIVER_FILE = Path("/proc/driver/nvidia/version")
# GPUs the default (CUDA 13) torch build no longer covers -> the documented install that does
INSTALL_FOR = {(7, 0): "pip install -r requirements-v100.txt   # torch 2.10.0 + cu128, built for sm_70",
               (7, 2): "pip install -r requirements-v100.txt   # torch 2.10.0 + cu128, built for sm_70"}
GENERIC_INSTALL = "pip install -r requirements-v100.txt (torch 2.10.0 + cu128: sm_50 to sm_120)"


def nvidia_driver_version(driver_file: Path = DRIVER_FILE) -> Optional[str]:
    """The NVIDIA kernel driver's version when the machine has one (e.g. '535.161.08'), else None."""
    try:
        text = driver_file.read_text()
    except OSError:
        return None
    match = re.search(r"Kernel Module\s+(?:for \w+\s+)?([\d.]+)", text) or re.search(r"\s(\d+\.\d+(?:\.\d+)?)\s", text)
    return match.group(1) if match else "unknown"


def _build() -> str:
    return f"torch {torch.__version__} (CUDA {torch.version.cuda or 'none'})"


def resolve_device(spec: str = "auto") -> torch.device:
    """'auto' -> CUDA if usable, else CPU (saying so when an NVIDIA GPU is present but unusable);
    'cuda[:N]' refuses when CUDA is not usable. A CUDA device is checked with `check_cuda_arch`."""
    if spec == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        else:
            driver = nvidia_driver_version()
            if driver is not None:
                LOG.warning("an NVIDIA GPU is present (driver %s) but %s cannot use it (driver older than the "
                            "build needs?); training on the CPU", driver, _build())
            return torch.device("cpu")
    else:
        device = torch.device(spec)
        if device.type == "cuda" and not torch.cuda.is_available():
            driver = nvidia_driver_version()
            why = f"NVIDIA driver {driver} too old for {_build()}" if driver else f"no NVIDIA GPU/driver ({_build()})"
            raise ConfigError(f"trainer.device: {spec!r} requested but CUDA is not usable: {why}")
    check_cuda_arch(device)
    return device


def _capability(device: torch.device) -> tuple[int, int]:
    return tuple(torch.cuda.get_device_capability(device))  # type: ignore[return-value]


def check_cuda_arch(device: torch.device) -> None:
    """Raise a one-line `UserError` when this torch build has no kernels for the GPU's compute
    capability (neither its `sm_XY` nor an older `compute_XY` PTX the driver could compile)."""
    if device.type != "cuda":
        return
    major, minor = _capability(device)
    arch_list = torch.cuda.get_arch_list()
    ours = major * 10 + minor
    sm = {int(a[3:]) for a in arch_list if a.startswith("sm_") and a[3:].isdigit()}
    ptx = {int(a[8:]) for a in arch_list if a.startswith("compute_") and a[8:].isdigit()}
    if ours in sm or any(p <= ours for p in ptx):
        return
    name = torch.cuda.get_device_name(device)
    install = INSTALL_FOR.get((major, minor), GENERIC_INSTALL)
    raise UserError(f"{name} (compute capability {major}.{minor}, sm_{ours}) is not supported by {_build()}, "
                    f"built for {' '.join(arch_list)}; install a build that is: {install}")


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX, as oneDNN reports it)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def _cpu_amp_dtype(amp: str, training: bool) -> Optional[torch.dtype]:
    """CPU autocast runs in the training step only, in bf16 where the CPU has it natively (about 1.7x the
    fp32 step of the demo's resnet10t on AVX512-BF16); validation and prediction stay fp32, so a checkpoint
    predicts the same on every CPU and in its ONNX export."""
    if not training:
        if amp not in ("none", "auto"):
            LOG.warning("trainer.amp=%s: predicting in fp32 on the CPU (CPU autocast is for training only)", amp)
        return None
    if amp == "fp16":
        LOG.warning("trainer.amp=fp16 ignored on the CPU (fp16 is for GPUs); training in %s",
                    "bf16" if cpu_native_bf16() else "fp32")
    if amp == "none" or not cpu_native_bf16():
        if amp == "bf16":
            LOG.warning("trainer.amp=bf16: this CPU has no native bf16 (AVX512-BF16/AMX); training in fp32")
        return None
    return torch.bfloat16


def amp_dtype(amp: str, device: torch.device, *, training: bool = False) -> Optional[torch.dtype]:
    """Autocast dtype for `trainer.amp` on `device`, or None; `training`: for the training step.

    On a GPU, `auto`: bf16 where the GPU has native bf16 (compute capability >= 8.0), fp16 (with a grad
    scaler) below that. An explicit `bf16` on a GPU without native bf16 falls back to fp16 with a warning
    (torch would otherwise emulate it, slowly, without tensor cores). On the CPU: `_cpu_amp_dtype`."""
    if device.type != "cuda":
        return _cpu_amp_dtype(amp, training)
    if amp == "none":
        return None
    native_bf16 = _capability(device) >= NATIVE_BF16
    if amp == "auto":
        return torch.bfloat16 if native_bf16 else torch.float16
    if amp == "bf16" and not native_bf16:
        LOG.warning("trainer.amp=bf16: %s has no native bf16 (compute capability %d.%d < 8.0); using fp16 with a "
                    "grad scaler instead", torch.cuda.get_device_name(device), *_capability(device))
        return torch.float16
    return AMP_DTYPES[amp]


def dtype_name(dtype: Optional[torch.dtype]) -> str:
    """'bf16', 'fp16' or 'fp32' (no autocast), for logs and summary.json."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "fp32")
