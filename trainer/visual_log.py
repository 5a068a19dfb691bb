"""What the Trainer shows in TensorBoard besides scalars: samples, confusion matrix, mistakes."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from data_loader.datasets import ImageDataset
from data_loader.images import load_image
from utils.config import Config
from utils.labels import GENDER_NAMES, MASK_NAMES, TASKS, age_group_names, split_classes
from utils.logger import RunLogger
from utils.visuals import confusion_figure, denormalize, figure_to_array, image_grid_figure, short_name

TASK_NAMES = {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age": age_group_names()}
N_SAMPLES = 16
N_MISTAKES = 12


def log_augmented_samples(run_logger: RunLogger, dataset: ImageDataset, mean: Sequence[float],
                          std: Sequence[float], names: Sequence[str], n: int = N_SAMPLES) -> None:
    """A grid of the first `n` training samples as the network sees them (after augmentation), each
    titled with its training label (`names`: the class names of the training labels)."""
    if len(dataset) == 0:
        return
    items = [dataset[i] for i in range(min(n, len(dataset)))]
    images = denormalize(torch.stack([item[0] for item in items]), mean, std)
    titles = [short_name(names[int(item[1])]) for item in items]
    grid = image_grid_figure(list(images), titles, cols=8, title_size=13)
    run_logger.add_image("train/augmented_samples", figure_to_array(grid), 0)


def confident_mistakes(y_true: np.ndarray, probs: np.ndarray, n: int = N_MISTAKES) -> np.ndarray:
    """Indices of the `n` wrong predictions with the highest predicted probability."""
    pred = probs.argmax(axis=1)
    wrong = np.flatnonzero(pred != y_true)
    confidence = probs[wrong, pred[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def log_best_epoch(run_logger: RunLogger, epoch: int, *, y_true: np.ndarray, probs: np.ndarray,
                   paths: Sequence[str], class_names: Sequence[str]) -> None:
    """Confusion matrix and most confidently wrong validation images of a new best epoch."""
    pred = probs.argmax(axis=1)
    fig = confusion_figure(y_true, pred, class_names)
    run_logger.add_image("val/confusion_matrix", figure_to_array(fig), epoch)
    for task, true_ids, pred_ids in zip(TASKS, split_classes(np.asarray(y_true)), split_classes(pred)):
        fig = confusion_figure(true_ids, pred_ids, TASK_NAMES[task])
        run_logger.add_image(f"val/confusion_{task}", figure_to_array(fig), epoch)
    idx = confident_mistakes(y_true, probs)
    if len(idx):
        images = [load_image(paths[i], (192, 256)) for i in idx]
        titles = [f"true {class_names[y_true[i]]}\npred {class_names[pred[i]]} ({probs[i, pred[i]]:.2f})" for i in idx]
        grid = figure_to_array(image_grid_figure(images, titles))
        run_logger.add_image("val/confident_mistakes", grid, epoch)
    run_logger.writer.flush()


class BestEpochVisuals:
    """Epoch callback: draws the confusion matrix and confident mistakes when the monitored metric
    improves (matplotlib stays out of the training loop itself)."""

    def __init__(self, run_logger: RunLogger, class_names: Sequence[str]) -> None:
        self.run_logger, self.class_names = run_logger, list(class_names)

    def __call__(self, trainer: Any, epoch: int, metrics: dict, result: Any, improved: bool) -> None:
        if improved and result is not None:
            log_best_epoch(self.run_logger, epoch, y_true=result.y_true, probs=result.probs, paths=result.paths,
                           class_names=self.class_names)


CORE_HPARAMS = ("model.backbone", "model.head", "model.pretrained", "augment.image_size", "optimizer.name",
                "optimizer.lr", "optimizer.weight_decay", "scheduler.name", "loss.name", "trainer.epochs",
                "data.batch_size", "seed")


def hparam_value(value: Any) -> int | float | str | bool:
    """A TensorBoard-friendly form: numbers and booleans as they are, anything else as text."""
    if isinstance(value, (int, float, str, bool)):
        return value
    if isinstance(value, (list, tuple)):
        return "x".join(map(str, value))
    return str(value)


def key_hparams(config: Config, overrides: Sequence[str] = ()) -> dict[str, Any]:
    """The run's HParams entry: a few core keys and every key set by an override (a search trial's
    parameters among them), by their dotted config names, with the resolved values."""
    values = config.to_dict()
    keys = dict.fromkeys([*CORE_HPARAMS, *(o.split("=", 1)[0].strip() for o in overrides if "=" in o)])
    out = {}
    for key in keys:
        node: Any = values
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            out[key] = hparam_value(node)
    return out
