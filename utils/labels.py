"""The competition's task: the one place that maps (mask, gender, age group) to the 18 class ids
and back, for single ids (`encode`/`decode`) and for whole arrays or tensors (`split_classes`)."""
from __future__ import annotations

from typing import NamedTuple, Sequence, TypeVar

import numpy as np

Array = TypeVar("Array")  # numpy array or torch tensor of integer class ids

MASK_NAMES: tuple[str, ...] = ("wear", "incorrect", "not")
GENDER_NAMES: tuple[str, ...] = ("male", "female")
NUM_MASK, NUM_GENDER, NUM_AGE = 3, 2, 3
NUM_CLASSES = NUM_MASK * NUM_GENDER * NUM_AGE
TASKS: tuple[str, ...] = ("mask", "gender", "age")
TASK_SIZES: tuple[int, ...] = (NUM_MASK, NUM_GENDER, NUM_AGE)
DEFAULT_AGE_BOUNDS: tuple[int, int] = (30, 60)

# File stem -> mask state. `mask1`..`mask5` are worn masks.
MASK_BY_STEM: dict[str, int] = {
    **{f"mask{i}": 0 for i in range(1, 6)},
    "incorrect_mask": 1,
    "normal": 2,
}


class Label(NamedTuple):
    """The three factors of a class id."""

    mask: int
    gender: int
    age_group: int


def age_group(age: int, bounds: Sequence[int] = DEFAULT_AGE_BOUNDS) -> int:
    """Age group 0 (< bounds[0]), 1 (< bounds[1]) or 2 (>= bounds[1])."""
    low, high = bounds
    if age < low:
        return 0
    return 1 if age < high else 2


def encode(mask: int, gender: int, age_grp: int) -> int:
    """Class id = mask * 6 + gender * 3 + age group."""
    if not (0 <= mask < NUM_MASK and 0 <= gender < NUM_GENDER and 0 <= age_grp < NUM_AGE):
        raise ValueError(f"label out of range: mask={mask}, gender={gender}, age_group={age_grp}")
    return mask * NUM_GENDER * NUM_AGE + gender * NUM_AGE + age_grp


def decode(class_id: int) -> Label:
    """Inverse of `encode`."""
    if not 0 <= class_id < NUM_CLASSES:
        raise ValueError(f"class id out of range: {class_id}")
    mask, rest = divmod(int(class_id), NUM_GENDER * NUM_AGE)
    gender, age_grp = divmod(rest, NUM_AGE)
    return Label(mask, gender, age_grp)


def gender_id(gender: str) -> int:
    """'male' -> 0, 'female' -> 1."""
    return GENDER_NAMES.index(gender)


def age_group_names(bounds: Sequence[int] = DEFAULT_AGE_BOUNDS) -> tuple[str, str, str]:
    """Readable age-group names, e.g. ('<30', '30-59', '>=60')."""
    low, high = bounds
    return (f"<{low}", f"{low}-{high - 1}", f">={high}")


def class_names(bounds: Sequence[int] = DEFAULT_AGE_BOUNDS) -> list[str]:
    """Readable names for all classes in id order, e.g. 'wear/female/30-59'."""
    ages = age_group_names(bounds)
    return [
        f"{MASK_NAMES[lab.mask]}/{GENDER_NAMES[lab.gender]}/{ages[lab.age_group]}"
        for lab in (decode(c) for c in range(NUM_CLASSES))
    ]


def split_classes(class_ids: Array) -> tuple[Array, Array, Array]:
    """(mask, gender, age group) ids of an array or tensor of class ids (vectorised `decode`)."""
    per_mask = NUM_GENDER * NUM_AGE
    return class_ids // per_mask, (class_ids // NUM_AGE) % NUM_GENDER, class_ids % NUM_AGE


def regroup_age(class_ids: Array, ages: Array, bounds: Sequence[int]) -> Array:
    """The same classes with the age group recomputed from `ages` under `bounds`."""
    mask, gender, _ = split_classes(np.asarray(class_ids))
    groups = np.searchsorted(np.asarray(bounds), np.asarray(ages), side="right")
    return mask * NUM_GENDER * NUM_AGE + gender * NUM_AGE + groups
