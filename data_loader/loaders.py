"""DataLoaders: epoch-seeded shuffling, sharded across DDP ranks, same batches for any worker count."""
from __future__ import annotations

import math
import os
from typing import Iterator, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[tuple[int, int]]):
    """A permutation that depends only on (seed, epoch), split across `num_replicas` ranks.

    Yields `(index, epoch)` keys so that the dataset knows the epoch even inside persistent
    workers. Like `DistributedSampler`, the permutation is padded by repeating its start so
    every rank gets the same number of samples. Call `set_epoch` before each epoch.
    """

    def __init__(self, length: int, seed: int, rank: int = 0, num_replicas: int = 1, shuffle: bool = True,
                 weights: Optional[torch.Tensor] = None) -> None:
        self.length, self.seed, self.shuffle, self.weights = length, seed, shuffle, weights
        self.rank, self.num_replicas = rank, num_replicas
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def indices(self) -> list[int]:
        """This rank's share of the epoch's (padded) order."""
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:  # `length` draws with replacement, in proportion to `weights`
            order = torch.multinomial(self.weights, self.length, replacement=True, generator=gen).tolist()
        elif self.shuffle:
            order = torch.randperm(self.length, generator=gen).tolist()
        else:
            order = list(range(self.length))
        total = len(self) * self.num_replicas
        order += (order * math.ceil(total / max(1, len(order))))[: total - len(order)]
        return order[self.rank:total:self.num_replicas]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter([(i, self.epoch) for i in self.indices()])

    def __len__(self) -> int:
        return math.ceil(self.length / self.num_replicas)


def balanced_weights(labels: Sequence[int]) -> torch.Tensor:
    """Per-sample weight 1 / (number of samples of its class), indexed by class id, so every class
    present is drawn equally often."""
    labels_t = torch.as_tensor(list(labels), dtype=torch.long)
    counts = torch.bincount(labels_t)
    return 1.0 / counts[labels_t].double()


def default_num_workers(world_size: int = 1) -> int:
    """Loader workers for this machine: its CPUs shared by the ranks on it, at most 8 each."""
    return max(0, min((os.cpu_count() or 1) // max(1, world_size), 8))


def build_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    seed: int,
    num_workers: Optional[int] = None,
    pin_memory: bool = False,
    rank: int = 0,
    world_size: int = 1,
    balanced_labels: Optional[Sequence[int]] = None,
) -> DataLoader:
    """Shuffled, drop-last loader for training; ordered loader for evaluation (sharded under DDP,
    padded to equal shares; `Trainer.evaluate` drops the padding again)."""
    workers = default_num_workers(world_size) if num_workers is None else num_workers
    weights = balanced_weights(balanced_labels) if train and balanced_labels is not None else None
    sampler = EpochShuffleSampler(len(dataset), seed, rank, world_size, shuffle=train, weights=weights)
    per_rank = len(sampler)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=train and per_rank > batch_size,
        num_workers=workers,
        pin_memory=pin_memory,
        persistent_workers=workers > 0,
        prefetch_factor=4 if workers > 0 else None,
        generator=torch.Generator().manual_seed(seed),
    )
