"""Where an epoch's time goes: waiting for the loader, the training steps, validation, logging, checkpoints.

`LoaderClock` wraps a loader and adds up the seconds the loop spent waiting for its batches; `EpochClock`
times the sections of `Trainer.run_epoch`; `loader_bound_note` is the one line a user gets when the loader
kept the training step waiting, with the knob to turn. On a GPU the step runs asynchronously and the host
blocks where it reads a value back (the loss every few steps, the end of the epoch), so the time the host
spent waiting for batches is time the GPU had no work queued: the share is the loader's cost, not the model's.
"""
from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Optional

LOG = logging.getLogger(__name__)
LOADER_BOUND_SHARE = 0.10  # a loader wait above this share of the training time gets a note


class LoaderClock:
    """Iterates `loader`, adding up the seconds spent waiting for each batch in `wait`."""

    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader, self.wait = loader, 0.0

    def __len__(self) -> int:
        return len(self.loader)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator[Any]:
        batches = iter(self.loader)
        while True:
            start = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            finally:
                self.wait += time.perf_counter() - start
            yield batch


class EpochClock:
    """Seconds per named section of one epoch (`with clock.section("val"): ...`), summed over repeats."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def shares(self) -> dict[str, float]:
        """Each section's share of the sections' total (`loader_wait` lies inside `train` and is not added)."""
        total = sum(v for k, v in self.seconds.items() if k != "loader_wait")
        return {k: v / total for k, v in self.seconds.items()} if total > 0 else {}


def loader_knob(num_workers: int, cache: str, cpus: Optional[int] = None) -> str:
    """What to turn when the loader is slow, given today's settings."""
    cpus = cpus if cpus is not None else (os.cpu_count() or 1)
    if cache == "none":
        return "set data.cache: memory (or disk) so each photo is decoded once"
    if num_workers < max(cpus - 1, 1):
        return f"raise data.num_workers (now {num_workers}; this machine has {cpus} CPU cores)"
    return "lighten augment.train (its heaviest steps), or lower augment.image_size"


def loader_bound_note(wait: float, train_seconds: float, *, num_workers: int, cache: str,
                      cpus: Optional[int] = None, threshold: float = LOADER_BOUND_SHARE) -> Optional[str]:
    """One line when the loader kept the training step waiting more than `threshold` of the training time."""
    if train_seconds <= 0 or wait / train_seconds <= threshold:
        return None
    return (f"the data loader kept the training step waiting {wait / train_seconds:.0%} of this epoch's training "
            f"time ({wait:.1f} of {train_seconds:.1f} s): {loader_knob(num_workers, cache, cpus)}")


class LoaderNote:
    """Epoch callback: after the first epoch this process trains, `loader_bound_note` as one warning."""

    def __init__(self, *, num_workers: int, cache: str) -> None:
        self.num_workers, self.cache, self.seen = num_workers, cache, False

    def __call__(self, trainer: Any, epoch: int, metrics: dict[str, float], judged: Any, improved: bool) -> None:
        if self.seen:
            return
        self.seen = True
        note = loader_bound_note(metrics.get("loader_wait", 0.0), metrics.get("train_time", 0.0),
                                 num_workers=self.num_workers, cache=self.cache)
        if note is not None:
            LOG.warning(note)
