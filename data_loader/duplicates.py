"""Near-duplicate people: one person under two ids (same photos), found by perceptual hashes.

A person listed twice would otherwise land on both sides of a split; `duplicate_groups` gives the
groups that splits keep together.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from data_loader.images import load_image

HASH_STEMS = ("normal", "mask1")  # photos hashed per person for the near-duplicate search


def difference_hash(image: np.ndarray, size: int = 8) -> np.ndarray:
    """64-bit dHash (as bools) of an HxWx3 image: brightness gradients of a 9x8 thumbnail."""
    from PIL import Image

    gray = np.asarray(Image.fromarray(image).convert("L").resize((size + 1, size)), dtype=np.int16)
    return (gray[:, 1:] > gray[:, :-1]).ravel()


def near_duplicate_people(images: pd.DataFrame, max_distance: int = 6) -> list[tuple[str, str, int]]:
    """Pairs of people whose `normal` and `mask1` photos are nearly identical (Hamming distance of
    their dHashes <= `max_distance` bits out of 128)."""
    stems = images["path"].map(lambda p: Path(p).stem)
    chosen = images[stems.isin(HASH_STEMS)].assign(stem=stems).sort_values(["person_id", "stem"])
    hashes = {pid: np.concatenate([difference_hash(load_image(p, (96, 128))) for p in group["path"]])
              for pid, group in chosen.groupby("person_id") if len(group) == len(HASH_STEMS)}
    ids = sorted(hashes)
    if len(ids) < 2:
        return []
    bits = np.stack([hashes[i] for i in ids]).astype(np.int32)
    distance = bits @ (1 - bits).T + (1 - bits) @ bits.T
    a, b = np.nonzero(np.triu(distance <= max_distance, k=1))
    return [(ids[i], ids[j], int(distance[i, j])) for i, j in zip(a, b)]


def duplicate_groups(images: pd.DataFrame, max_distance: int = 6) -> dict[str, str]:
    """Person id -> the smallest id of its group of near-duplicate people (itself when it has none)."""
    parent = {pid: pid for pid in images["person_id"].unique()}

    def root(pid: str) -> str:
        while parent[pid] != pid:
            parent[pid] = parent[parent[pid]]
            pid = parent[pid]
        return pid

    for a, b, _ in near_duplicate_people(images, max_distance):
        ra, rb = root(a), root(b)
        parent[max(ra, rb)] = min(ra, rb)
    return {pid: root(pid) for pid in parent}
