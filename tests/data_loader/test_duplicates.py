"""data_loader.duplicates: near-duplicate people by difference hashes, grouped so a split keeps them together."""
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from data_loader.duplicates import HASH_STEMS, difference_hash, duplicate_groups, near_duplicate_people


def test_the_hash_bit_is_set_where_brightness_rises_to_the_right():
    rising = np.tile(np.linspace(0, 255, 90).astype(np.uint8)[None, :, None], (80, 1, 3))
    assert difference_hash(rising).shape == (64,) and difference_hash(rising).all()
    assert not difference_hash(rising[:, ::-1].copy()).any()
    half = rising.copy()
    half[40:] = half[40:, ::-1]  # the bottom half falls: its 4 rows of 8 bits are 0
    assert difference_hash(half).tolist() == [True] * 32 + [False] * 32
    assert difference_hash(rising, size=4).shape == (16,)


def people(root: Path, photos: dict[str, np.ndarray]) -> pd.DataFrame:
    """person id -> its image (saved for every hashed stem and one more)."""
    rows = []
    for pid, image in photos.items():
        folder = root / pid
        folder.mkdir(parents=True)
        for stem in (*HASH_STEMS, "mask2"):
            Image.fromarray(image).save(folder / f"{stem}.png")
            rows.append({"person_id": pid, "path": str(folder / f"{stem}.png")})
    return pd.DataFrame(rows)


def noise(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (128, 96, 3), dtype=np.uint8)


def test_one_person_under_three_ids_is_one_group_under_its_smallest_id(tmp_path):
    face, other = noise(0), noise(1)
    images = people(tmp_path, {"000009": face, "000003": face, "000005": other, "000001": face})
    pairs = near_duplicate_people(images)
    assert pairs == [("000001", "000003", 0), ("000001", "000009", 0), ("000003", "000009", 0)]
    assert duplicate_groups(images) == {"000009": "000001", "000003": "000001", "000005": "000005",
                                        "000001": "000001"}


def test_the_distance_counts_differing_bits_over_both_photos_up_to_the_limit(tmp_path):
    base = noise(2)
    changed = base.copy()
    changed[:, :48] = 255 - changed[:, :48]  # the left half inverted: many hash bits flip
    images = people(tmp_path, {"a": base, "b": changed})
    hashes = [np.concatenate([difference_hash(np.asarray(Image.open(tmp_path / p / f"{s}.png").resize((96, 128))))
                              for s in sorted(HASH_STEMS)]) for p in ("a", "b")]
    bits = int((hashes[0] != hashes[1]).sum())
    assert 0 < bits <= 128
    assert near_duplicate_people(images, max_distance=bits) == [("a", "b", bits)]
    assert near_duplicate_people(images, max_distance=bits - 1) == []
    assert duplicate_groups(images, max_distance=bits - 1) == {"a": "a", "b": "b"}


def test_a_person_missing_a_hashed_photo_and_a_lone_person_have_no_pairs(tmp_path):
    face = noise(3)
    images = people(tmp_path, {"p1": face, "p2": face})
    assert near_duplicate_people(images[~images["path"].str.endswith("p2/normal.png")]) == []
    assert near_duplicate_people(images[images["person_id"] == "p1"]) == []
    assert duplicate_groups(images[images["person_id"] == "p1"]) == {"p1": "p1"}


def test_chained_pairs_join_into_one_group(monkeypatch):
    import data_loader.duplicates as duplicates

    images = pd.DataFrame({"person_id": ["d", "c", "b", "a", "e"], "path": ""})
    monkeypatch.setattr(duplicates, "near_duplicate_people",
                        lambda images, max_distance: [("c", "d", 1), ("b", "d", 2), ("a", "b", 0)])
    assert duplicate_groups(images) == {"a": "a", "b": "a", "c": "a", "d": "a", "e": "e"}
