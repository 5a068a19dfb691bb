"""Decode once: every photo decoded and resized to one fixed pre-augmentation size, in a uint8
array of shape (N, H, W, 3) held in memory or in a memory-mapped file keyed by data set + size.

A memory cache built before the DataLoader starts is shared by its (forked) workers; a disk cache
is built once by the first local rank and mapped by every DDP rank and worker.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm import tqdm

from data_loader.images import load_image, resize_to
from utils.dist_info import DistInfo, barrier
from utils.errors import DataError

LOG = logging.getLogger(__name__)
PHOTO_HW = (512, 384)  # competition photos: height, width
JPEG_SCALES = (8, 4, 2, 1)
Decode = Callable[[str], np.ndarray]  # path -> upright uint8 RGB, e.g. a face crop


def draft_size(image_size: Optional[Sequence[int]], draft: bool) -> Optional[tuple[int, int]]:
    """The JPEG draft target (w, h) for `data.jpeg_draft`: decode at the smallest DCT scale that still
    covers the network input `image_size` (h, w); None decodes at full size. `cache_size` is the
    array shape the same rule gives for the image cache."""
    if not draft or image_size is None:
        return None
    return (int(image_size[1]), int(image_size[0]))


def cache_size(image_size: Sequence[int], draft: bool, photo_hw: Sequence[int] = PHOTO_HW) -> tuple[int, int]:
    """(height, width) of cached photos: the smallest JPEG draft scale of a photo that still covers
    `image_size` (the full photo without `draft`)."""
    height, width = photo_hw
    for scale in JPEG_SCALES if draft else (1,):
        if height // scale >= image_size[0] and width // scale >= image_size[1]:
            return height // scale, width // scale
    return height, width


def decode_fixed(path: str, hw: tuple[int, int], decode: Optional[Decode] = None) -> np.ndarray:
    """Decode `path` (with `decode`, else in JPEG draft mode) and resize to exactly `hw` if needed."""
    image = decode(path) if decode is not None else load_image(path, (hw[1], hw[0]))
    return resize_to(image, hw)


def fill(array: np.ndarray, paths: Sequence[str], hw: tuple[int, int], decode: Optional[Decode] = None) -> None:
    for i, path in enumerate(tqdm(paths, desc="decode", leave=False, disable=None)):
        array[i] = decode_fixed(path, hw, decode)


def memory_cache(paths: Sequence[str], hw: tuple[int, int], decode: Optional[Decode] = None) -> np.ndarray:
    """All photos decoded into RAM."""
    array = np.empty((len(paths), *hw, 3), dtype=np.uint8)
    fill(array, paths, hw, decode)
    return array


def cache_key(paths: Sequence[str], hw: tuple[int, int], tag: str = "") -> str:
    """Changes when a file is added, removed, resized, touched, or the size or `tag` (how photos are
    decoded, e.g. the face crop's fingerprint) changes."""
    digest = hashlib.sha1(json.dumps([*hw, tag] if tag else list(hw)).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{os.path.abspath(path)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:20]


def disk_cache(paths: Sequence[str], hw: tuple[int, int], cache_dir: Path, dist_info: DistInfo = DistInfo(),
               decode: Optional[Decode] = None, tag: str = "") -> np.ndarray:
    """A read-only memory map of all photos; built (atomically) by local rank 0 if missing."""
    path = Path(cache_dir) / f"images-{cache_key(paths, hw, tag)}-{hw[0]}x{hw[1]}.u8"
    shape = (len(paths), *hw, 3)
    if dist_info.local_rank == 0 and not path.is_file():
        check_room("disk", int(np.prod(shape)), cache_dir)  # only a cache still to be written needs room
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        fill(array, paths, hw, decode)
        array.flush()
        del array
        os.replace(tmp, path)
        LOG.info("wrote image cache %s (%.1f MB)", path, np.prod(shape) / 2**20)
    barrier(dist_info)
    return np.load(path, mmap_mode="r")


def available_memory() -> Optional[int]:
    """Bytes of memory available to new allocations (Linux `MemAvailable`), None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_room(mode: str, needed: int, cache_dir: Optional[Path]) -> None:
    """Refuse a cache that would not fit: 80% of available memory, or the disk's free space."""
    gb = 2**30
    if mode == "memory":
        room = available_memory()
        if room is not None and needed > 0.8 * room:
            raise DataError(f"data.cache=memory needs {needed / gb:.1f} GB but {room / gb:.1f} GB are available: "
                            "use data.cache=disk or a smaller augment.image_size")
    elif mode == "disk" and cache_dir is not None:
        probe = Path(cache_dir)
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        free = shutil.disk_usage(probe).free
        if needed > free:
            raise DataError(f"data.cache=disk needs {needed / gb:.1f} GB in {cache_dir} but {free / gb:.1f} GB are "
                            "free: choose another data.cache_dir or a smaller augment.image_size")


def build_cache(mode: str, paths: Sequence[str], hw: tuple[int, int], cache_dir: Optional[Path] = None,
                dist_info: DistInfo = DistInfo(), decode: Optional[Decode] = None,
                tag: str = "") -> Optional[np.ndarray]:
    """The cache for `data.cache` = none | memory | disk; refused in one line when it cannot fit.
    `decode` replaces the plain draft-mode decode (e.g. a face crop) and `tag` names it in the key."""
    if mode == "none":
        return None
    if mode == "memory":
        check_room(mode, len(paths) * hw[0] * hw[1] * 3, cache_dir)
    array = (memory_cache(paths, hw, decode) if mode == "memory"
             else disk_cache(paths, hw, Path(cache_dir), dist_info, decode=decode, tag=tag))
    LOG.info("image cache (%s): %d photos at %dx%d, %.1f MB", mode, len(paths), hw[1], hw[0], array.nbytes / 2**20)
    return array
