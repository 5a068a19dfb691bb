"""DataLoaders with epoch-seeded shuffling (same order for any worker count, resumable)."""
from __future__ import annotations

import os
from typing import Iterator, Optional

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on (seed, epoch); call `set_epoch` before each epoch."""

    def __init__(self, length: int, seed: int) -> None:
        self.length = length
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(torch.randperm(self.length, generator=gen).tolist())

    def __len__(self) -> int:
        return self.length


def default_num_workers() -> int:
    """Loader workers for this machine: the CPU count, at most 8."""
    return min(os.cpu_count() or 1, 8)


def build_loader(
    dataset: Dataset,
    batch_size: int,
    train: bool,
    seed: int,
    num_workers: Optional[int] = None,
    pin_memory: bool = False,
) -> DataLoader:
    """Shuffled, drop-last loader for training; ordered loader for evaluation."""
    workers = default_num_workers() if num_workers is None else num_workers
    sampler = EpochShuffleSampler(len(dataset), seed) if train else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        shuffle=False,
        drop_last=train and len(dataset) > batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        generator=torch.Generator().manual_seed(seed),
    )
