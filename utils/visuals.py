"""Figures for TensorBoard and reports: confusion matrix, image grids (matplotlib, no display)."""
from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import confusion_matrix  # noqa: E402

CARD_PX = 560  # a TensorBoard image card's width: figures are drawn at this size to be read without enlarging


def short_name(name: str) -> str:
    """A compact tick label: 'wear/female/30-59' -> 'wear F 30-59'; other names unchanged."""
    parts = name.split("/")
    if len(parts) == 3:
        return f"{parts[0]} {parts[1][:1].upper()} {parts[2]}"
    return name


def confusion_figure(y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str],
                     size_px: int = CARD_PX) -> Figure:
    """Counts in each cell, colours normalised per true-class row, compact class names; drawn at `size_px`
    square with fonts that stay legible there (the 18-class matrix has lines between the mask blocks)."""
    n = len(class_names)
    counts = confusion_matrix(y_true, y_pred, labels=range(n))
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts, dtype=float), where=rows > 0)
    font = 8 if n > 6 else 13
    fig, ax = plt.subplots(figsize=(size_px / 100, size_px / 100), dpi=100)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            if counts[i, j]:
                ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=font,
                        color="white" if shares[i, j] > 0.5 else "black")
    if n == 18:
        for edge in (5.5, 11.5):
            ax.axhline(edge, color="grey", linewidth=0.8)
            ax.axvline(edge, color="grey", linewidth=0.8)
    labels = [short_name(c) for c in class_names]
    ax.set_xticks(range(n), labels, rotation=90 if n > 6 else 0, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted", fontsize=font + 1)
    ax.set_ylabel("true", fontsize=font + 1)
    fig.tight_layout(pad=0.3)
    return fig


def image_grid_figure(images: Sequence[np.ndarray], titles: Sequence[str], cols: int = 4,
                      title_size: int = 8) -> Figure:
    """Images (HxWx3 uint8, or 3xHxW floats in [0, 1]) in a grid, each with a title."""
    rows = max(1, -(-len(images) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 3.0 * rows), dpi=80, squeeze=False)
    images = [im.permute(1, 2, 0).numpy() if isinstance(im, torch.Tensor) else im for im in images]
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, title in zip(axes.flat, images, titles):
        ax.imshow(image)
        ax.set_title(title, fontsize=title_size)
    fig.tight_layout()
    return fig


def denormalize(batch: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo `Normalize` on a (N, 3, H, W) batch; returns floats in [0, 1]."""
    mean_t = torch.tensor(mean, dtype=batch.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=batch.dtype).view(1, 3, 1, 1)
    return (batch * std_t + mean_t).clamp(0, 1)


def figure_to_array(fig: Figure) -> np.ndarray:
    """Render a figure to an HxWx3 uint8 array (and close it)."""
    fig.canvas.draw()
    array = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return array
