"""Decoding one image file into the uint8 RGB array every other module works on."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

from utils.errors import DataError


def load_image(path: str | Path, draft_size: Optional[tuple[int, int]] = None) -> np.ndarray:
    """Decode an RGB image as uint8 HxWx3. With `draft_size` (w, h), a JPEG is decoded at the
    smallest DCT scale that is still at least that size (much faster, same look after resize)."""
    try:
        with Image.open(path) as img:
            if draft_size is not None and img.format == "JPEG":
                img.draft("RGB", draft_size)
            return np.asarray(img.convert("RGB"))
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: cannot decode image ({err})") from None
