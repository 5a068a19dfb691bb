"""Look at the data before training: `python -m tools.data_report --data DIR [--out DIR]`.

Counts per gender x age group and per class, the age histogram, junk / unreadable / missing /
unexpected files, near-duplicate people, and the class balance on each side of the split; with
`--faces` (or when the train dir has a `faces.csv`), the face detection rate per mask state and a
grid of the crops `augment.face_crop` would train on.
Prints a text summary and writes PNG charts (and report.txt) to --out.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from data_loader.datasets import DATASETS
from data_loader.duplicates import near_duplicate_people
from data_loader.face_crop import LEAK_SPREAD, FaceCrop
from data_loader.faces import DETECTORS, FACES_FILE, face_boxes
from data_loader.people import Problem, read_train_csv, scan_train_images
from utils.cli import as_script, cli_main
from utils.config import check_cli_values
from utils.io import atomic_write_text
from utils.labels import DEFAULT_AGE_BOUNDS, GENDER_NAMES, MASK_NAMES, NUM_CLASSES, age_group_names, class_names

PROBLEM_KINDS = ("junk", "unexpected", "unreadable", "missing", "duplicate", "missing_folder")


def people_table(images: pd.DataFrame, bounds: Sequence[int]) -> pd.DataFrame:
    """People per gender (rows) x age group (columns)."""
    people = images.groupby("person_id")[["gender", "age_group"]].first()
    table = pd.crosstab(people["gender"].map(dict(enumerate(GENDER_NAMES))),
                        people["age_group"].map(dict(enumerate(age_group_names(bounds)))))
    return table.reindex(index=list(GENDER_NAMES), columns=list(age_group_names(bounds)), fill_value=0)


def class_counts(labels: pd.Series) -> np.ndarray:
    return np.bincount(labels.to_numpy(dtype=int), minlength=NUM_CLASSES)


def split_balance(images: pd.DataFrame, dataset: str, val_ratio: float, seed: int) -> pd.DataFrame:
    """Images per class on each side of the configured split."""
    train_rows, val_rows = DATASETS[dataset](images).split_indices(val_ratio, seed)
    return pd.DataFrame({"train": class_counts(images["label"].iloc[train_rows]),
                         "val": class_counts(images["label"].iloc[val_rows])}, index=class_names())


def save_charts(out: Path, *, images: pd.DataFrame, ages: pd.Series, bounds: Sequence[int],
                people: pd.DataFrame, balance: pd.DataFrame) -> list[Path]:
    """people_per_group.png, images_per_class.png, age_histogram.png, split_balance.png."""
    from utils.visuals import plt

    out.mkdir(parents=True, exist_ok=True)
    names = class_names(bounds)
    charts = []

    def save(fig, name):
        path = out / name
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        charts.append(path)

    fig, ax = plt.subplots(figsize=(6, 4))
    people.T.plot.bar(ax=ax, rot=0, title="people per gender x age group")
    save(fig, "people_per_group.png")
    fig, ax = plt.subplots(figsize=(10, 4))
    ax.bar(range(NUM_CLASSES), class_counts(images["label"]))
    ax.set_xticks(range(NUM_CLASSES), names, rotation=90, fontsize=7)
    ax.set_title("images per class")
    save(fig, "images_per_class.png")
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.hist(ages, bins=range(int(ages.min()), int(ages.max()) + 2), align="left")
    for bound in bounds:
        ax.axvline(bound - 0.5, color="red", linestyle="--")
    ax.set_title(f"age histogram (people), group boundaries at {list(bounds)}")
    save(fig, "age_histogram.png")
    fig, ax = plt.subplots(figsize=(10, 4))
    (balance / balance.sum()).plot.bar(ax=ax, title="class share per split side")
    ax.set_xticklabels(names, rotation=90, fontsize=7)
    save(fig, "split_balance.png")
    return charts


def face_rates(images: pd.DataFrame, crop: FaceCrop) -> pd.DataFrame:
    """Images and the share with a face box at or above `crop.min_score`, per mask state."""
    found = images["path"].map(crop.has_face)
    table = pd.DataFrame({"images": images.groupby("mask").size(), "faces": found.groupby(images["mask"]).sum()})
    table = table.reindex(range(len(MASK_NAMES)), fill_value=0).set_axis(list(MASK_NAMES))
    return table.assign(rate=table["faces"] / table["images"].replace(0, 1))


def save_crop_grid(path: Path, images: pd.DataFrame, crop: FaceCrop, per_state: int = 6, seed: int = 0) -> Path:
    """A grid of face crops, one row per mask state (title: score, or 'fallback')."""
    from utils.visuals import plt

    fig, axes = plt.subplots(len(MASK_NAMES), per_state, figsize=(1.6 * per_state, 2.2 * len(MASK_NAMES)),
                             squeeze=False)
    for mask, row in enumerate(axes):
        state = images[images["mask"] == mask]
        picks = state.sample(n=min(per_state, len(state)), random_state=seed)["path"].tolist() if len(state) else []
        for ax, pick in zip(row, picks + [None] * per_state):
            ax.axis("off")
            if pick is not None:
                ax.imshow(crop(pick))
                ax.set_title(f"{crop.entry(pick)[1]:.2f}" if crop.has_face(pick) else "fallback",
                             fontsize=8)
        row[0].text(-0.1, 0.5, MASK_NAMES[mask], transform=row[0].transAxes, rotation=90, va="center", ha="right")
    fig.suptitle("face crops per mask state (score of the box)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def summary_text(people: pd.DataFrame, *, counts: np.ndarray, problems: list[Problem],
                 duplicates: list[tuple[str, str, int]], balance: pd.DataFrame, bounds: Sequence[int],
                 faces: Optional[pd.DataFrame] = None) -> str:
    kinds = Counter(p.kind for p in problems)
    lines = ["people per gender x age group:", people.to_string(), "", "images per class:"]
    lines += [f"  {c:2d} {name:<24} {n:6d}" for c, (name, n) in enumerate(zip(class_names(bounds), counts))]
    lines += ["", "files: " + ", ".join(f"{k} {kinds.get(k, 0)}" for k in PROBLEM_KINDS)]
    lines += [f"  {p.kind}: {p.message}" for p in problems if p.kind != "junk"][:50]
    lines += ["", f"near-duplicate people: {len(duplicates)}"]
    lines += [f"  {a} ~ {b} ({d} bits differ)" for a, b, d in duplicates[:50]]
    share = balance / balance.sum().replace(0, 1)
    lines += ["", "split (images per class, train / val, share of side):"]
    lines += [f"  {name:<24} {row.train:6d} {row.val:6d}  {share.loc[name, 'train']:.3f} {share.loc[name, 'val']:.3f}"
              for name, row in balance.iterrows()]
    if faces is not None:
        lines += ["", "face found (score >= min_score), per mask state:"]
        lines += [f"  {name:<10} {int(row.faces):6d} / {int(row.images):6d}  {row.rate:.1%}"
                  for name, row in faces.iterrows()]
        if faces["rate"].max() - faces["rate"].min() >= LEAK_SPREAD:
            lines += [f"  WARNING: detection rates differ by more than {LEAK_SPREAD:.0%} between mask states: "
                      "whether a photo is cut to its face then predicts its mask class (a shortcut the network "
                      "can learn); look at face_crops.png, lower augment.face_crop.min_score or try another "
                      "detector"]
    return "\n".join(lines) + "\n"


def face_section(train_dir: Path, images: pd.DataFrame, detector: Optional[str], min_score: float,
                 out: Optional[Path]) -> tuple[Optional[pd.DataFrame], list[Path]]:
    """(detection rate per mask state, [face_crops.png]) when asked for (`detector`) or when
    `faces.csv` exists; (None, []) otherwise."""
    if detector is None and not (train_dir / FACES_FILE).is_file():
        return None, []
    boxes = face_boxes([train_dir], detector or read_detector(train_dir))
    crop = FaceCrop(boxes, out_hw=(256, 192), min_score=min_score, draft=False)
    grid = [save_crop_grid(out / "face_crops.png", images, crop)] if out is not None else []
    return face_rates(images, crop), grid


def read_detector(train_dir: Path) -> str:
    """The detector an existing `faces.csv` was made with."""
    names = pd.read_csv(train_dir / FACES_FILE, usecols=["detector"])["detector"].dropna()
    return str(names.iloc[0]) if len(names) and names.iloc[0] in DETECTORS else "mtcnn"


def build_report(data: Path, out: Optional[Path], bounds: Sequence[int] = DEFAULT_AGE_BOUNDS,
                 dataset: str = "MaskSplitByProfileDataset", val_ratio: float = 0.2, seed: int = 42,
                 detector: Optional[str] = None, min_score: float = 0.5) -> dict:
    """Scan `data` (a train dir, or a dir holding train/); return the numbers, write text + charts.
    With `detector`, faces are found (or `faces.csv` reused) and the face section added."""
    train_dir = data / "train" if (data / "train" / "train.csv").is_file() else data
    images, problems = scan_train_images(train_dir, bounds)
    ages = read_train_csv(train_dir)["age"]
    people = people_table(images, bounds)
    balance = split_balance(images, dataset, val_ratio, seed)
    duplicates = near_duplicate_people(images)
    counts = class_counts(images["label"])
    charts = (save_charts(out, images=images, ages=ages, bounds=bounds, people=people, balance=balance)
              if out is not None else [])
    faces, grid = face_section(train_dir, images, detector, min_score, out)
    text = summary_text(people, counts=counts, problems=problems, duplicates=duplicates, balance=balance,
                        bounds=bounds, faces=faces)
    if out is not None:
        atomic_write_text(out / "report.txt", text)
    return {"people": people, "class_counts": counts, "problems": problems, "duplicates": duplicates,
            "balance": balance, "faces": faces, "text": text, "charts": charts + grid}


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="train dir (train.csv, images/) or its parent")
    parser.add_argument("--out", type=Path, help="where to write the PNG charts and report.txt")
    parser.add_argument("--age-bounds", type=int, nargs=2, default=list(DEFAULT_AGE_BOUNDS))
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="MaskSplitByProfileDataset")
    parser.add_argument("--val-ratio", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--faces", nargs="?", const="mtcnn", choices=sorted(DETECTORS), metavar="DETECTOR",
                        help="find faces (default detector mtcnn; faces.csv reused) and report the detection rate")
    parser.add_argument("--min-score", type=float, default=0.5, help="face box score counted as found")
    args = parser.parse_args(argv)
    check_cli_values({"--seed": ("seed", args.seed), "--val-ratio": ("data.val_ratio", args.val_ratio),
                      "--age-bounds": ("data.age_bounds", args.age_bounds)})
    report = build_report(args.data, args.out, bounds=args.age_bounds, dataset=args.dataset, val_ratio=args.val_ratio,
                          seed=args.seed, detector=args.faces, min_score=args.min_score)
    print(report["text"], end="")
    if report["charts"]:
        print(f"charts: {', '.join(str(p) for p in report['charts'])}")
    return report


script = as_script(main)

if __name__ == "__main__":
    main()
