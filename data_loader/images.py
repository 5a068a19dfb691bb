"""Image files as they are: decoded to uint8 RGB whatever their mode (16-bit, palette, alpha, CMYK,
float), turned upright by their EXIF orientation, and checked for integrity without rejecting a file
that decodes. The one place training, evaluation, the cache and inference read photos through."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from utils.errors import DataError, first_line

MAX_PIXELS = 40_000_000  # a competition photo has 0.2 M; larger files are refused in one line
END_MARKERS = {"JPEG": b"\xff\xd9", "PNG": b"IEND\xaeB`\x82"}
TAIL_BYTES = 64
ORIENTATION = 0x0112
SWAPS_AXES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 degrees


def _open(path: Path) -> Image.Image:
    """Open lazily, refusing decompression bombs with one line."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise DataError(f"{path}: image larger than {MAX_PIXELS:,} pixels; refused") from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise DataError(f"{path}: image of {img.width}x{img.height} pixels is larger than {MAX_PIXELS:,}; refused")
    return img


def to_rgb8(img: Image.Image) -> np.ndarray:
    """uint8 HxWx3 of any Pillow mode: high-bit-depth and float images are scaled, not clipped."""
    if img.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        values = np.asarray(img, dtype=np.float64)
        top = 1.0 if img.mode == "F" and values.max(initial=0) <= 1.0 else 255.0 if values.max(initial=0) <= 255 \
            else 65535.0
        gray = np.clip(np.round(values * (255.0 / top)), 0, 255).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.asarray(img.convert("RGB"))


def load_image(path: str | Path, draft_size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode an image as upright uint8 RGB (HxWx3). With `draft_size` (w, h), a JPEG is decoded at
    the smallest DCT scale that still covers that size once upright (much faster, same look after
    resize)."""
    try:
        with _open(Path(path)) as img:
            orientation = img.getexif().get(ORIENTATION, 1)
            if draft_size is not None and img.format == "JPEG":
                w, h = draft_size
                img.draft("RGB", (h, w) if orientation in SWAPS_AXES else (w, h))
            upright = ImageOps.exif_transpose(img) if orientation != 1 else img
            return to_rgb8(upright)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, UnidentifiedImageError) as err:
        raise DataError(f"{path}: cannot decode image ({first_line(err) if str(err) else type(err).__name__})"
                        ) from None


def check_image(path: Path) -> None:
    """Raise `DataError` if `path` is empty, not an image, too large, or cannot be decoded.

    Cheap for sound files: the header is parsed and the format's end marker looked for in the last
    bytes. A file whose marker is not at its end (cut short, or with bytes after the marker, as phones
    append) is decoded in full, and refused only if that fails.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        if size == 0:
            raise DataError(f"{path}: empty image file")
        with _open(path) as img:
            fmt = img.format
        with open(path, "rb") as f:
            f.seek(max(0, size - TAIL_BYTES))
            tail = f.read()
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise DataError(f"{path}: not a readable image ({err.__class__.__name__})") from None
    marker = END_MARKERS.get(fmt or "")
    if marker is not None and marker not in tail:
        try:
            with _open(path) as img:
                img.load()
        except (OSError, SyntaxError, ValueError) as err:
            raise DataError(f"{path}: truncated or damaged {fmt} file ({first_line(err)[:80]})") from None


def resize_to(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """`image` resized to exactly (height, width) `hw` (PIL bilinear, antialiased when shrinking); the
    one resize of decoded photos, so cached and uncached pixels are the same."""
    if image.shape[:2] == tuple(hw):
        return image
    return np.asarray(Image.fromarray(image).resize((hw[1], hw[0]), Image.BILINEAR))
