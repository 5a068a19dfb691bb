"""The review sheet of label suspects: each suspect's 7 photos in a row, the written and the suggested label
above them, 25 suspects a page (`label_issues.png`, `label_issues_2.png`, ...), drawn with matplotlib (Agg)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from data_loader.images import load_image, resize_to  # noqa: E402
from utils.errors import DataError  # noqa: E402
from utils.io import atomic_write_with  # noqa: E402
from utils.labels import MASK_BY_STEM  # noqa: E402

PER_PAGE = 25
THUMB_HW = (128, 96)  # a photo's thumbnail, height x width
ROW_PX, LABEL_PX, DPI = THUMB_HW[0] + 6, 22, 100
ORDER = list(MASK_BY_STEM)  # mask1..mask5, incorrect_mask, normal


def thumbnails(photos: Sequence[str]) -> np.ndarray:
    """The person's photos side by side in stem order (a grey tile for a photo that cannot be read)."""
    by_stem = {Path(p).stem: p for p in photos}
    tiles = []
    for stem in ORDER:
        try:
            tiles.append(resize_to(load_image(by_stem[stem], draft_size=THUMB_HW[::-1]), THUMB_HW))
        except (KeyError, DataError, OSError):
            tiles.append(np.full((*THUMB_HW, 3), 128, dtype=np.uint8))
        tiles.append(np.full((THUMB_HW[0], 4, 3), 255, dtype=np.uint8))
    return np.concatenate(tiles, axis=1)


def page_paths(first: Path, n_pages: int) -> list[Path]:
    """label_issues.png, label_issues_2.png, ..."""
    return [first if k == 0 else first.with_name(f"{first.stem}_{k + 1}{first.suffix}") for k in range(n_pages)]


def draw_page(rows: pd.DataFrame, start: int) -> plt.Figure:
    width = len(ORDER) * (THUMB_HW[1] + 4)
    height = len(rows) * (ROW_PX + LABEL_PX) + 30
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    fig.text(0.01, 1 - 18 / height, "  ".join(f"{k + 1}:{s}" for k, s in enumerate(ORDER)), fontsize=8,
             color="grey")
    for k, row in enumerate(rows.itertuples(index=False)):
        top = 30 + k * (ROW_PX + LABEL_PX)
        boundary = " · near a group boundary: not drafted" if row.near_boundary else ""
        fig.text(0.005, 1 - (top + 15) / height, f"#{start + k + 1} {row.id} {row.field}: written {row.written} "
                 f"→ suggested {row.suggested} (score {row.score:.2f}){boundary}", fontsize=9,
                 color="firebrick" if not row.near_boundary else "grey")
        fig.figimage(thumbnails(str(row.photos).split(";")), xo=0, yo=height - (top + LABEL_PX + THUMB_HW[0]))
    return fig


def write_sheet(table: pd.DataFrame, first: Path) -> list[Path]:
    """Pages of the suspects in `table` order, written atomically; stale later pages of an earlier call are
    removed. Returns the pages written."""
    pages = [table.iloc[k:k + PER_PAGE] for k in range(0, len(table), PER_PAGE)] or [table.iloc[:0]]
    paths = page_paths(first, len(pages))
    for k, (rows, path) in enumerate(zip(pages, paths)):
        fig = draw_page(rows, k * PER_PAGE)
        if rows.empty:
            fig.text(0.05, 0.5, "no suspects", fontsize=12)
        try:
            atomic_write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
        finally:
            plt.close(fig)
    for stale in first.parent.glob(f"{first.stem}_*{first.suffix}"):
        if stale not in paths and stale.stem.rsplit("_", 1)[-1].isdigit():
            stale.unlink()
    return paths
