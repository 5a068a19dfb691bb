import hashlib

import numpy as np
import pandas as pd
from PIL import Image

from data_loader.people import IMAGE_EXTENSIONS
from tools.synthetic import generate


def digest(root):
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def test_layout_matches_competition(demo_data):
    train = pd.read_csv(demo_data / "train" / "train.csv", dtype=str)
    assert list(train.columns) == ["id", "gender", "race", "age", "path"]
    assert train["id"].str.fullmatch(r"\d{6}").all()
    assert set(train["gender"]) <= {"male", "female"} and set(train["race"]) == {"Asian"}
    assert train["age"].astype(int).between(18, 60).all()
    assert (train["path"] == train["id"] + "_" + train["gender"] + "_Asian_" + train["age"]).all()
    files = [p for p in (demo_data / "train" / "images").rglob("*") if p.is_file()]
    images = [p for p in files if not p.name.startswith("._")]
    assert len(images) == 7 * len(train)
    assert {p.suffix for p in images} <= set(IMAGE_EXTENSIONS)
    with Image.open(images[0]) as img:
        assert img.size == (384, 512) and img.mode == "RGB"


def test_eval_is_shuffled_hashed_with_truth_outside(demo_data):
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype=str)
    truth = pd.read_csv(demo_data / "eval_truth.csv", dtype={"ImageID": str})
    assert list(info.columns) == ["ImageID", "ans"] and (info["ans"] == "0").all()
    assert info["ImageID"].tolist() == truth["ImageID"].tolist()
    assert info["ImageID"].str.fullmatch(r"[0-9a-f]{40}\.jpg").all()
    assert all((demo_data / "eval" / "images" / i).is_file() for i in info["ImageID"])
    assert truth["ans"].between(0, 17).all()
    # shuffled: the 7 photos of a person are not consecutive rows
    masks = truth["ans"].to_numpy() // 6
    assert not all(np.array_equal(masks[i:i + 7], [0, 0, 0, 0, 0, 1, 2]) for i in range(0, len(masks), 7))


def test_deterministic_for_a_seed_and_workers(tmp_path):
    generate(tmp_path / "a", 4, 2, seed=5, workers=1)
    generate(tmp_path / "b", 4, 2, seed=5, workers=2)
    generate(tmp_path / "c", 4, 2, seed=6, workers=1)
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_quirks_present_in_a_larger_set(tmp_path):
    generate(tmp_path, 60, 0, seed=0, workers=2)
    files = [p for p in (tmp_path / "train" / "images").rglob("*") if p.is_file()]
    assert any(p.name.startswith("._") for p in files)
    suffixes = {p.suffix for p in files if not p.name.startswith("._")}
    assert {".jpg", ".jpeg", ".png"} <= suffixes
    ages = pd.read_csv(tmp_path / "train" / "train.csv")["age"]
    assert (ages == 60).any() and (ages < 30).any() and ages.between(30, 59).any()


def test_a_person_keeps_background_and_clothes_unless_identity_is_off(tmp_path):
    from data_loader.images import load_image
    from predict.person_groups import photo_statistics

    def spread(identity):
        out = tmp_path / str(identity)
        generate(out, 0, 3, seed=8, identity=identity)
        truth = pd.read_csv(out / "eval_truth.csv")
        assert sorted(truth["person"].value_counts().tolist()) == [7, 7, 7]
        stats = {person: np.stack([photo_statistics(load_image(str(out / "eval" / "images" / i), (96, 128)))
                                   for i in rows["ImageID"]]) for person, rows in truth.groupby("person")}
        return max(s[:, :3].std(axis=0).max() for s in stats.values())  # top border (background) colour

    on, off = spread(True), spread(False)  # with identity only the per-photo exposure (±15 %) moves it
    assert on < 0.1 and off > 2 * on


def test_style_b_keeps_the_layout_and_draws_other_photos(tmp_path):
    generate(tmp_path / "a", 3, 2, seed=4, style="a")
    generate(tmp_path / "b", 3, 2, seed=4, style="b")
    for name in ("train/train.csv", "eval/info.csv", "eval_truth.csv"):  # same people, labels and ids
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    photos = {s: sorted(p for p in (tmp_path / s / "train" / "images").rglob("*.*")
                  if not p.name.startswith("._")) for s in ("a", "b")}
    names = {s: sorted((p.parent.name, p.stem) for p in photos[s]) for s in ("a", "b")}
    assert names["a"] == names["b"]
    with Image.open(photos["b"][0]) as img:
        assert img.size == (384, 512) and img.mode == "RGB"
    pixels = [np.asarray(Image.open(photos[s][0]), dtype=float) for s in ("a", "b")]  # the same photo's stem
    assert np.abs(pixels[0] - pixels[1]).mean() > 20


def test_style_b_ages_its_people_continuously():
    from tools import synthetic_b

    def hairline(age):
        return np.mean([synthetic_b.person_style(np.random.default_rng([age, k]), 0, age)["hairline"]
                        for k in range(200)])

    lines = [hairline(age) for age in (20, 29, 31, 45, 59, 60)]
    assert all(a < b for a, b in zip(lines, lines[1:]))  # recedes with every step of age
    assert lines[2] - lines[1] < 0.1 < lines[4] - lines[0]  # 29 and 31 look alike, 20 and 59 do not


def test_style_b_gender_cue_is_jaw_and_earrings():
    from tools import synthetic_b

    styles = {g: [synthetic_b.person_style(np.random.default_rng([g, k]), g, 40) for k in range(400)]
              for g in (0, 1)}
    earrings = {g: np.mean([s["earrings"] for s in styles[g]]) for g in (0, 1)}
    assert earrings[0] < 0.15 and earrings[1] > 0.85  # 5 % atypical either way
    assert all(s["earrings"] == (s["jaw"] < 1) for g in (0, 1) for s in styles[g])


def test_style_c_keeps_the_layout_and_ages_faces_not_hair(tmp_path):
    """Style c: the same people, labels and file names; age in the face's shape and skin, continuously, and
    hair colour unrelated to age."""
    from tools import synthetic_c

    generate(tmp_path / "a", 2, 1, seed=5, style="a")
    generate(tmp_path / "c", 2, 1, seed=5, style="c")
    for name in ("train/train.csv", "eval/info.csv", "eval_truth.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "c" / name).read_bytes()
    photo = next((tmp_path / "c" / "train" / "images").rglob("normal.*"))
    with Image.open(photo) as img:
        assert img.size == (384, 512) and img.mode == "RGB"

    def mean_of(age, key):
        return np.mean([synthetic_c.person_style(np.random.default_rng([age, k]), 0, age)[key] for k in range(200)],
                       axis=0)

    jowls = [mean_of(age, "jowl") for age in (20, 29, 31, 45, 59)]
    assert all(a < b for a, b in zip(jowls, jowls[1:])) and jowls[2] - jowls[1] < 0.05 < jowls[4] - jowls[0]
    assert mean_of(20, "blotches") < 2 < 15 < mean_of(59, "blotches")
    assert np.abs(mean_of(20, "hair") - mean_of(59, "hair")).max() < 15  # hair says nothing of age
    bun = {g: np.mean([synthetic_c.person_style(np.random.default_rng([g, k]), g, 40)["bun"] for k in range(400)])
           for g in (0, 1)}
    assert bun[0] < 0.08 and bun[1] > 0.92
