"""Person-consistent predictions: group evaluation photos into people without labels, then pool the gender
and age evidence of each group (the mask state stays per photo). Numpy and scikit-learn only."""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from sklearn.cluster import AgglomerativeClustering

from utils.labels import NUM_AGE, NUM_GENDER, NUM_MASK, split_classes

EPS = 1e-7
BORDER = 0.15  # share of the height / width read as background (top, sides) and clothes (bottom)
# the network's gender/age outputs beside the border colours (chosen on one synthetic set, seed 21: grouping
# purity 0.81 without them, 0.92 at 0.5; the backbone's pooled features grouped photos by mask state, 0.42)
ATTRIBUTE_WEIGHT = 0.5
# a photo this sure of its gender (or age group) keeps its own answer: on synthetic data, where the network is
# right about them, pooling everything at grouping purity 0.9 cost 2 points of macro-F1
CONFIDENT = 0.9


def photo_statistics(image: np.ndarray) -> np.ndarray:
    """What stays the same across one sitting and is not the face: the median colour of the top, left,
    right and bottom borders of an HxWx3 uint8 photo (background, clothes), scaled to [0, 1]."""
    h, w = image.shape[:2]
    dy, dx = max(1, int(h * BORDER)), max(1, int(w * BORDER))
    regions = (image[:dy], image[:, :dx], image[:, w - dx:], image[h - dy:])
    return np.concatenate([np.median(r.reshape(-1, 3), axis=0) / 255.0 for r in regions]).astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each column standardised over the set, then each row scaled to unit length."""
    x = (x - x.mean(axis=0)) / (x.std(axis=0) + EPS)
    return x / (np.linalg.norm(x, axis=1, keepdims=True) + EPS)


def person_attributes(probs: np.ndarray) -> np.ndarray:
    """The network's view of who is in a photo whatever the mask: log gender and age-group probabilities."""
    _, gender, age = marginals(probs)
    return np.log(np.concatenate([gender, age], axis=1) + 1e-4)


def group_photos(statistics: np.ndarray, attributes: Optional[np.ndarray] = None, *, group_size: float,
                 attribute_weight: float = ATTRIBUTE_WEIGHT) -> np.ndarray:
    """A group id per photo: Ward clustering of the photo statistics and (weighed by `attribute_weight`) the
    network's person attributes, each part standardised, into about len/`group_size` groups. The size is a
    hint for the number of groups only: groups of other sizes form where the photos say so."""
    parts = [unit_rows(statistics)]
    if attributes is not None:
        parts.append(attribute_weight * unit_rows(attributes))
    features = np.concatenate(parts, axis=1)
    n = len(features)
    n_groups = int(min(n, max(1, round(n / group_size))))
    if n_groups < 2:
        return np.zeros(n, dtype=np.int64)
    return AgglomerativeClustering(n_clusters=n_groups, linkage="ward").fit_predict(features).astype(np.int64)


def marginals(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, gender, age group) probabilities of (N, 18) class probabilities."""
    mask_id, gender_id, age_id = split_classes(np.arange(probs.shape[1]))
    out = []
    for ids, size in ((mask_id, NUM_MASK), (gender_id, NUM_GENDER), (age_id, NUM_AGE)):
        out.append(np.stack([probs[:, ids == k].sum(axis=1) for k in range(size)], axis=1))
    return out[0], out[1], out[2]


def pool_groups(probs: np.ndarray, groups: np.ndarray, confident: float = CONFIDENT) -> np.ndarray:
    """Class probabilities with each group's gender and age evidence pooled: per group, the normalised
    geometric mean of its photos' gender (and age-group) marginals replaces each photo's own, by reweighting
    its 18 probabilities with the ratio pooled / own (the mask state and the rest of the photo's joint stay
    its own). A photo whose own gender (or age) probability already reaches `confident` keeps it for that
    task: pooling is for the photos the network is unsure of, and a mixed-up group must not overrule a clear
    photo."""
    _, gender, age = marginals(probs)
    mask_id, gender_id, age_id = split_classes(np.arange(probs.shape[1]))
    out = probs.astype(np.float64)
    for own, ids in ((gender, gender_id), (age, age_id)):
        pooled = np.empty_like(own)
        for g in np.unique(groups):
            rows = groups == g
            log_mean = np.log(own[rows] + EPS).mean(axis=0)
            pooled[rows] = np.exp(log_mean - log_mean.max()) / np.exp(log_mean - log_mean.max()).sum()
        sure = own.max(axis=1, keepdims=True) >= confident
        ratio = np.where(sure, 1.0, (pooled + EPS) / (own + EPS))
        out = out * ratio[:, ids]
    return out / out.sum(axis=1, keepdims=True)


def purity(groups: np.ndarray, people: Sequence[object]) -> float:
    """Share of photos whose group's most common person is their own (1.0: no group mixes people)."""
    people = np.asarray(people)
    agreeing = 0
    for g in np.unique(groups):
        _, counts = np.unique(people[groups == g], return_counts=True)
        agreeing += counts.max()
    return agreeing / max(len(people), 1)


def completeness(groups: np.ndarray, people: Sequence[object]) -> float:
    """Share of photos in their person's most common group (1.0: no person is split between groups)."""
    return purity(np.asarray(people), groups)
