"""`report.png`: one picture of a run that a teammate reads in a chat window (matplotlib Agg, no torch).

Title line (recipe, backbone, input size, epochs, best epoch, the model's validation F1 ± its 95 %
people-bootstrap half-width); learning curves (loss, macro-F1 train and val, per-task F1); the per-task
confusion matrices of the run's model on validation (counts, coloured by row share); per-class F1 bars with
each class's support. A K-fold or repeated run shows its members side by side: one curve and one bar per fold
or seed, confusion matrices of the pooled predictions (`oof.csv`, or every seed's).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from utils.errors import DataError, UserError  # noqa: E402
from utils.io import atomic_write_with  # noqa: E402
from utils.labels import GENDER_NAMES, MASK_NAMES, NUM_CLASSES, TASKS, age_group_names, class_names  # noqa: E402
from utils.predictions import Predictions, read_predictions  # noqa: E402
from utils.run import read_metrics, read_summary  # noqa: E402
from utils.run_dir import RunDir, read_config  # noqa: E402

WIDTH_PX, HEIGHT_PX, DPI = 1600, 1150, 100
TASK_NAMES = {"mask": MASK_NAMES, "gender": GENDER_NAMES, "age": age_group_names()}
CURVES = {  # panel title -> metrics.csv columns drawn in it
    "loss": ("train_loss", "val_loss"),
    "macro-F1": ("train_f1", "val_f1", "ema_val_f1"),
    "per-task F1 (val solid, train dashed)": tuple(f"{s}_f1_{t}" for t in TASKS for s in ("val", "train")),
}


@dataclass
class ReportData:
    """What the picture shows, read from the run's files (so tests can check the numbers drawn)."""

    title: str
    members: list[str]  # "" for a single run, "fold 0", "seed 42", ... for a parent
    metrics: list[list[dict[str, float]]]  # each member's metrics.csv rows
    predictions: Optional[Predictions] = None  # pooled over members
    per_class: list[np.ndarray] = field(default_factory=list)  # each member's per-class F1
    notes: list[str] = field(default_factory=list)


def class_f1(pred: Predictions) -> np.ndarray:
    from sklearn.metrics import f1_score

    return f1_score(pred.labels, pred.preds, labels=range(NUM_CLASSES), average=None, zero_division=0)


def members_of(run: RunDir) -> list[tuple[str, RunDir]]:
    """(label, directory) of each member: folds of a K-fold run, seeds of a repeated run, else the run."""
    if run.is_repeated:
        return [(f"seed {m.path.name.split('_')[-1]}", m) for m in run.members()]
    folds = list(run.folds())
    if folds:
        return [(f"fold {f.path.name.split('_')[-1]}", f) for f in folds]
    return [("", run)]


def member_predictions(run: RunDir) -> Optional[Predictions]:
    for path in (run.oof, run.val_predictions):
        if path.is_file():
            return read_predictions(path)
    return None


def title_of(run: RunDir, config: dict[str, Any], kind: str) -> str:
    """recipe · backbone · size · epochs · best epoch · F1 ± half-width."""
    model, trainer = config.get("model") or {}, config.get("trainer") or {}
    size = (config.get("augment") or {}).get("image_size") or ["?", "?"]
    parts = [f"{config.get('name', run.path.parent.name)}/{run.path.name}{kind}",
             f"{model.get('backbone', '?')} ({model.get('head', '?')} head)", f"{size[0]}×{size[1]}",
             f"{trainer.get('epochs', '?')} epochs"]
    summary = read_summary(run.path)
    if isinstance(summary.get("best_epoch"), int) and summary["best_epoch"] > 0:
        parts.append(f"best epoch {summary['best_epoch']}")
    for source, key in ((summary, "model_f1"), (read_json(run.folds_summary), "oof_f1"),
                        (read_json(run.seeds_summary), "model_f1")):
        if isinstance(source.get(key), (int, float)):
            pm = source.get(f"{key}_pm")
            score = f"val F1 {source[key]:.4f}" + (f" ± {pm:.4f}" if isinstance(pm, (int, float)) else "")
            which = summary.get("model") if key == "model_f1" else None
            parts.append(score + (f" ({which}.pth)" if which else ""))
            break
    return " · ".join(parts)


def read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def collect(run_path: Path) -> ReportData:
    """Read everything the picture needs; a run without metrics.csv is one line."""
    run = RunDir(run_path)
    members = members_of(run)
    metrics = [read_metrics(m.metrics) for _, m in members]
    if not any(metrics):
        raise UserError(f"{run}: no metrics.csv with an epoch in it (the run stopped before its first epoch, "
                        "or this is not a run directory)")
    kind = " (repeated)" if run.is_repeated else " (K-fold)" if len(members) > 1 else ""
    config = read_config(run)
    data = ReportData(title=title_of(run, config, kind), members=[label for label, _ in members], metrics=metrics)
    bounds = (config.get("data") or {}).get("age_bounds")
    if isinstance(bounds, list) and len(bounds) == 2 and list(bounds) != [30, 60]:
        data.notes.append(f"trained with age bounds {bounds}; every F1 here uses the competition's <30/30-59/>=60")
    pooled = [member_predictions(m) for _, m in members] if len(members) > 1 else [member_predictions(run)]
    if run.oof.is_file():
        data.predictions = read_predictions(run.oof)
    elif all(p is not None for p in pooled):
        data.predictions = concat(pooled)
    else:
        data.notes.append("no validation predictions (a run without a validation set, or trained before runs "
                          "kept them): curves only")
    if data.predictions is not None:
        if len(members) > 1:  # one bar per member: a fold's own photos, a seed's whole set
            sets = ([subset(data.predictions, fold=k) for k in range(len(members))] if run.oof.is_file()
                    else pooled)
            data.per_class = [class_f1(p) for p in sets]
        else:
            data.per_class = [class_f1(data.predictions)]
    return data


def concat(sets: list[Optional[Predictions]]) -> Predictions:
    parts = [p for p in sets if p is not None]
    return Predictions(source=parts[0].source, paths=np.concatenate([p.paths for p in parts]),
                       people=np.concatenate([p.people for p in parts]),
                       labels=np.concatenate([p.labels for p in parts]), preds=np.concatenate([p.preds for p in parts]))


def subset(pred: Predictions, fold: int) -> Predictions:
    """The photos of one fold of an oof.csv (its `fold` column, read again)."""
    import pandas as pd

    folds = pd.read_csv(pred.source, usecols=["path", "fold"]).set_index("path")["fold"]
    keep = folds.reindex(pred.paths).to_numpy() == fold
    return Predictions(pred.source, pred.paths[keep], pred.people[keep], pred.labels[keep], pred.preds[keep])


def series(rows: list[dict[str, float]], column: str) -> tuple[list[int], list[float]]:
    """(epochs, values) of one metrics.csv column, the epochs that have it."""
    points = [(r["epoch"], r[column]) for r in rows if column in r]
    return ([int(e) for e, _ in points], [v for _, v in points]) if points else ([], [])


def mean_series(data: ReportData, column: str) -> tuple[list[int], list[float]]:
    """The members' mean of a column, over the epochs every member has."""
    found = [dict(zip(*series(rows, column))) for rows in data.metrics]
    epochs = sorted(set.intersection(*(set(f) for f in found))) if all(found) else []
    return epochs, [float(np.mean([f[e] for f in found])) for e in epochs]


def draw_curves(ax: Any, title: str, columns: tuple[str, ...], data: ReportData) -> None:
    """One line per column (and per member of a parent; a parent's per-task panel: the members' mean)."""
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    per_task = title.startswith("per-task")
    several = len(data.members) > 1
    drawn = 0
    for c, column in enumerate(columns):
        lines = ([("mean", mean_series(data, column))] if per_task and several
                 else [(label, series(rows, column)) for label, rows in zip(data.members, data.metrics)])
        for m, (label, (epochs, values)) in enumerate(lines):
            if not epochs:
                continue
            colour = colours[(c // 2 if per_task else m if several else c) % len(colours)]
            name = f"{label} {column}".strip() if several else column
            ax.plot(epochs, values, "--" if column.startswith("train") else "-", color=colour, label=name,
                    linewidth=1.4, marker="." if len(epochs) < 3 else None)
            drawn += 1
    ax.set_title(title.replace(" (", " of members (") if per_task and several else title, fontsize=11)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if 0 < drawn <= 12:
        ax.legend(fontsize=7, ncol=2 if drawn > 4 else 1)


def draw_confusion(ax: Any, task: str, pred: Predictions, pooled: str = "") -> None:
    from utils.labels import split_classes

    index = TASKS.index(task)
    names = TASK_NAMES[task]
    truth, guess = split_classes(pred.labels)[index], split_classes(pred.preds)[index]
    counts = np.bincount(truth * len(names) + guess, minlength=len(names) ** 2).reshape(len(names), len(names))
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros(counts.shape), where=rows > 0)
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            ax.text(j, i, f"{counts[i, j]}\n{shares[i, j]:.0%}", ha="center", va="center", fontsize=9,
                    color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(names)), names, fontsize=9)
    ax.set_yticks(range(len(names)), names, fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{task}: counts, row share{pooled}", fontsize=11)


def short_name(name: str) -> str:
    """'wear/female/30-59' -> 'wear / F 30-59' on two lines."""
    mask, gender, age = name.split("/")
    return f"{mask}\n{gender[0].upper()} {age}"


def draw_per_class(ax: Any, data: ReportData) -> None:
    support = np.bincount(data.predictions.labels, minlength=NUM_CLASSES)
    width = 0.8 / len(data.per_class)
    for k, f1 in enumerate(data.per_class):
        label = data.members[k] if len(data.per_class) > 1 else "F1"
        ax.bar(np.arange(NUM_CLASSES) - 0.4 + width * (k + 0.5), f1, width=width, label=label)
    names = [f"{short_name(n)}\nn={s}" for n, s in zip(class_names(), support)]
    ax.set_xticks(range(NUM_CLASSES), names, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("F1")
    ax.set_title("per-class F1 on validation (n = photos of the class)", fontsize=11)
    ax.grid(axis="y", alpha=0.3)
    if len(data.per_class) > 1:
        ax.legend(fontsize=7, ncol=min(len(data.per_class), 6))


def draw(data: ReportData) -> Figure:
    """The figure, WIDTH_PX wide."""
    fig = plt.figure(figsize=(WIDTH_PX / DPI, HEIGHT_PX / DPI), dpi=DPI)
    grid = fig.add_gridspec(3, 3, height_ratios=[1, 1, 1.05], hspace=0.55, wspace=0.25)
    for col, (title, columns) in enumerate(CURVES.items()):
        draw_curves(fig.add_subplot(grid[0, col]), title, columns, data)
    if data.predictions is not None:
        for col, task in enumerate(TASKS):
            pooled = f" ({len(data.members)} {data.members[0].split()[0]}s pooled)" if len(data.members) > 1 else ""
            draw_confusion(fig.add_subplot(grid[1, col]), task, data.predictions, pooled)
        draw_per_class(fig.add_subplot(grid[2, :]), data)
    else:
        fig.add_subplot(grid[1:, :]).axis("off")
    fig.suptitle(data.title + ("\n" + "; ".join(data.notes) if data.notes else ""), fontsize=12)
    return fig


def write_report(run_path: Path) -> Path:
    """Draw `report.png` in the run directory, atomically; returns its path."""
    run = RunDir(run_path)
    fig = draw(collect(run.path))
    try:
        atomic_write_with(run.report, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    finally:
        plt.close(fig)
    return run.report


def checked_report(run_path: Path) -> Optional[Path]:
    """`write_report` at the end of a run: a damaged file read back makes no picture, but never a failed run."""
    try:
        return write_report(run_path)
    except (UserError, DataError, OSError, ValueError) as err:
        import logging

        logging.getLogger(__name__).warning("report.png not drawn: %s", err)
        return None
