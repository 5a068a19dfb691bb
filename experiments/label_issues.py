"""Find the label noise: people whose written gender or age group, or whose incorrect_mask/normal photos,
the out-of-fold predictions contradict.

Gender and age are properties of a person, so the evidence of the person's photos is pooled: the mean of
their log-probabilities of each gender (age group), renormalised, is the person's pooled probability (the
mean, not the sum: a person's 7 photos are not 7 independent witnesses). A field is suspect when its pooled
probability names another value; its score is that value's pooled probability. A mask swap is a person whose
`incorrect_mask` photo is predicted `normal` and whose `normal` photo is predicted `incorrect`: its score is
the geometric mean of those two probabilities. Ages near a group boundary are not noise by themselves
(people of 57-59 look 60): an age suspect whose written age lies within `BOUNDARY_MARGIN` years of the
suggested group is listed but never drafted. NumPy and pandas only.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from utils.labels import GENDER_NAMES, NUM_AGE, NUM_CLASSES, NUM_GENDER, age_group_names, split_classes
from utils.run_dir import PROB_COLUMNS, RunDir, read_config

FIELDS = ("gender", "age", "swap_mask")
AGE_RANGES = ((18, 29), (30, 59), (60, 60))  # the competition's groups, as the ages the data holds
REPRESENTATIVE_AGE = (24, 45, 60)  # the integer age a drafted fix writes for each group
BOUNDARY_MARGIN = 3  # years: a written age this close to the suggested group is not drafted
DEFAULT_THRESHOLD = 0.9  # pooled probability of the suggestion for the draft (docs/benchmarks.md)
EPS = 1e-7
COLUMNS = ["id", "person", "field", "written", "suggested", "score", "disagree", "mean_prob", "near_boundary",
           "photos"]


def person_id(folder: str) -> str:
    """The train.csv id of a person folder `<id>_<gender>_<race>_<age>`."""
    return folder.split("_", 1)[0]


def written_age(folder: str) -> int | None:
    """The age written in a person folder's name, if it ends in one."""
    tail = folder.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def task_probs(probs: np.ndarray, task: int, size: int) -> np.ndarray:
    """(N, size) probabilities of one task's values: the 18 classes' probabilities summed per value."""
    groups = split_classes(np.arange(NUM_CLASSES))[task]
    return np.stack([probs[:, groups == v].sum(axis=1) for v in range(size)], axis=1)


def pooled(log_probs: np.ndarray) -> np.ndarray:
    """A person's pooled probabilities from its photos' (n, k) log-probabilities: mean, renormalised."""
    mean = log_probs.mean(axis=0)
    weights = np.exp(mean - mean.max())
    return weights / weights.sum()


def age_distance(age: int | None, group: int) -> float:
    """Years from `age` to the ages of `group` (0 inside it; inf for an unknown age)."""
    if age is None:
        return float("inf")
    low, high = AGE_RANGES[group]
    return float(max(low - age, age - high, 0))


def person_suspects(people: pd.DataFrame, probs: np.ndarray, field: str) -> list[dict[str, Any]]:
    """Rows for `gender` or `age` of every person whose pooled probability names another value."""
    task, size = (1, NUM_GENDER) if field == "gender" else (2, NUM_AGE)
    names = GENDER_NAMES if field == "gender" else age_group_names()
    values = np.log(np.clip(task_probs(probs, task, size), EPS, 1.0))
    written = split_classes(people["label"].to_numpy())[task]
    rows = []
    for person, index in people.groupby("person", sort=True).indices.items():
        truth = int(written[index[0]])
        posterior = pooled(values[index])
        suggestion = int(posterior.argmax())
        if suggestion == truth:
            continue
        age = written_age(person)
        rows.append({"id": person_id(person), "person": person, "field": field,
                     "written": names[truth] if field == "gender" else f"{names[truth]} ({age})",
                     "suggested": names[suggestion], "value": GENDER_NAMES[suggestion] if field == "gender"
                     else REPRESENTATIVE_AGE[suggestion], "score": float(posterior[suggestion]),
                     "disagree": int((values[index].argmax(axis=1) != truth).sum()),
                     "mean_prob": float(np.exp(values[index, suggestion]).mean()),
                     "near_boundary": field == "age" and age_distance(age, suggestion) < BOUNDARY_MARGIN,
                     "photos": ";".join(people["path"].to_numpy()[index])})
    return rows


def swap_suspects(people: pd.DataFrame, probs: np.ndarray) -> list[dict[str, Any]]:
    """Rows for people whose incorrect_mask photo looks `normal` and whose normal photo looks `incorrect`."""
    mask = task_probs(probs, 0, 3)
    written = split_classes(people["label"].to_numpy())[0]
    rows = []
    for person, index in people.groupby("person", sort=True).indices.items():
        incorrect, normal = index[written[index] == 1], index[written[index] == 2]
        if len(incorrect) != 1 or len(normal) != 1:
            continue
        p_normal, p_incorrect = float(mask[incorrect[0], 2]), float(mask[normal[0], 1])
        if p_normal <= mask[incorrect[0], 1] or p_incorrect <= mask[normal[0], 2]:
            continue  # both photos must point the other way
        rows.append({"id": person_id(person), "person": person, "field": "swap_mask",
                     "written": "incorrect_mask/normal", "suggested": "swapped", "value": "swap",
                     "score": float(np.sqrt(p_normal * p_incorrect)), "disagree": 2,
                     "mean_prob": (p_normal + p_incorrect) / 2, "near_boundary": False,
                     "photos": ";".join(people["path"].to_numpy()[index])})
    return rows


def find_label_issues(frame: pd.DataFrame) -> pd.DataFrame:
    """Every suspect of an oof.csv / val_predictions.csv frame (path, person, label, prob_00..), ranked by
    score within each field (the fields in FIELDS order)."""
    people = frame.assign(person=frame["person"].astype(str) if "person" in frame
                          else frame["path"].map(lambda p: Path(p).parent.name))
    probs = people[PROB_COLUMNS].to_numpy(dtype=np.float64)
    rows = [*person_suspects(people, probs, "gender"), *person_suspects(people, probs, "age"),
            *swap_suspects(people, probs)]
    table = pd.DataFrame(rows, columns=[*COLUMNS, "value"])
    order = {f: k for k, f in enumerate(FIELDS)}
    table = table.assign(_field=table["field"].map(order)).sort_values(["_field", "score"], ascending=[True, False])
    return table.drop(columns="_field").reset_index(drop=True)


def draft(table: pd.DataFrame, threshold: float, source: str) -> pd.DataFrame:
    """The `data.relabel` rows (`id,field,value`, plus `source`: the run they came from) of the suspects at or
    above `threshold`, near-boundary ages left out."""
    chosen = table[(table["score"] >= threshold) & ~table["near_boundary"].astype(bool)]
    return pd.DataFrame({"id": chosen["id"], "field": chosen["field"], "value": chosen["value"].astype(str),
                         "source": source})


def read_run(run: RunDir) -> pd.DataFrame:
    """A K-fold run's oof.csv (or, with a warning, a run's val_predictions.csv) with its probabilities; one line
    for a run without predictions or one trained on relabelled labels (its folder names no longer tell the
    written labels)."""
    import logging

    from utils.errors import UserError
    from utils.predictions import read_probability_frame

    relabel = (read_config(run).get("data") or {}).get("relabel")
    if relabel:
        raise UserError(f"{run}: trained with data.relabel={relabel}; find label issues on a K-fold run of the "
                        "written labels (train.py --all-folds without data.relabel)")
    if run.oof.is_file():
        source = run.oof
    elif run.val_predictions.is_file():
        logging.getLogger(__name__).warning("%s: no oof.csv, so only the validation people are checked (train.py "
                                            "--all-folds checks everyone)", run)
        source = run.val_predictions
    else:
        raise UserError(f"{run}: no oof.csv (train a K-fold run: train.py --config C --all-folds data.n_folds=5)")
    return read_probability_frame(source)
