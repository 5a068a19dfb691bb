"""DDP under torchrun: process group set-up, rank info, and gathering results across ranks."""
from __future__ import annotations

import hashlib
import os
from typing import Any

import torch
import torch.distributed as dist

from utils.dist_info import DistInfo, barrier

__all__ = ["DistInfo", "barrier", "init_distributed", "shutdown", "gather_objects", "broadcast_object",
           "broadcast_buffers", "broadcast_state", "weights_digest", "replica_digests"]


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the torchrun job described by the environment (NCCL on CUDA, gloo on CPU), if any."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistInfo(), device
    info = DistInfo(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        device = torch.device("cuda", info.local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown() -> None:
    """Leave the process group (no-op for a single process)."""
    if dist.is_initialized():
        dist.destroy_process_group()


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """`obj` from every rank, in rank order (just `[obj]` for a single process)."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def broadcast_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's buffers (BatchNorm statistics) to every rank. DDP broadcasts them at the start
    of each forward, so after the last training step the other ranks lag one update behind."""
    if info.enabled:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def broadcast_state(module: torch.nn.Module, info: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank (e.g. after rank 0 loaded a checkpoint)."""
    if info.enabled:
        for tensor in module.state_dict().values():
            dist.broadcast(tensor, src=0)


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers (names, shapes and bytes), to compare replicas."""
    digest = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        digest.update(f"{name}{tuple(tensor.shape)}{tensor.dtype}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def replica_digests(module: torch.nn.Module, info: DistInfo) -> list[str]:
    """Every rank's `weights_digest` of `module`, in rank order (DDP replicas should all agree)."""
    return gather_objects(weights_digest(module), info)
