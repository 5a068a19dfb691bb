"""Demo data in the competition layout: `python -m tools.synthetic --out DIR`.

Each person is a drawn face with cues a small CNN can learn, plus noise:
mask state = where the mask sits (over the nose / lowered to the chin / absent),
gender = hair length (long / short), age group = hair colour and forehead lines.
Like real photos taken in one sitting, a person's 7 photos share background, clothes, skin and hair
(`--no-identity` draws background and clothes anew for every photo); eval_truth.csv names each
photo's person, so grouping photos into people can be measured. `--style b` draws the same layout in a
second, independent style (tools/synthetic_b.py) and `--style c` a third (tools/synthetic_c.py: age in face shape and
skin, not hair) to judge recipes on data they were not chosen on.
"""
from __future__ import annotations

import argparse
import hashlib
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import NamedTuple, Optional, Sequence

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from tools import synthetic_b, synthetic_c
from utils.cli import as_script, cli_main
from utils.io import atomic_write_text
from utils.labels import DEFAULT_AGE_BOUNDS, GENDER_NAMES, MASK_BY_STEM, age_group, encode

WIDTH, HEIGHT = 384, 512
HAIR_BY_AGE_GROUP = ((35, 25, 20), (135, 130, 125), (240, 240, 235))  # dark, grey, white
MASK_COLOURS = ((150, 190, 235), (35, 35, 40), (240, 170, 195), (120, 200, 160), (90, 110, 200))
CUE_NOISE = 0.005  # share of people whose gender cue is the other one (atypical looks)


def sample_age(rng: np.random.Generator) -> int:
    """18-60 with 60 rare (~8%), as in the real data."""
    r = rng.random()
    if r < 0.08:
        return 60
    return int(rng.integers(18, 30)) if r < 0.54 else int(rng.integers(30, 60))


def _person_style(rng: np.random.Generator, gender: int, age: int) -> dict:
    long_hair = (gender == 1) != (rng.random() < CUE_NOISE)
    grey = np.array(HAIR_BY_AGE_GROUP[age_group(age, DEFAULT_AGE_BOUNDS)]) + rng.integers(-15, 16, 3)
    return {
        "background": tuple(int(v) for v in rng.integers(60, 200, 3)),
        "shirt": tuple(int(v) for v in rng.integers(0, 256, 3)),
        "skin": tuple(int(v) for v in np.array((225, 190, 160)) + rng.integers(-35, 20, 3)),
        "hair": tuple(int(v) for v in np.clip(grey, 0, 255)),
        "long_hair": long_hair,
        "lines": age_group(age, DEFAULT_AGE_BOUNDS) * 2,
    }


def draw_photo(style: dict, mask: int, rng: np.random.Generator) -> Image.Image:
    """One 384x512 photo of a person with mask state 0 (worn), 1 (incorrect) or 2 (none)."""
    img = Image.new("RGB", (WIDTH, HEIGHT), style["background"])
    d = ImageDraw.Draw(img)
    s = rng.uniform(0.9, 1.1)
    cx, cy = WIDTH / 2 + rng.uniform(-20, 20), HEIGHT * 0.42 + rng.uniform(-20, 20)
    fw, fh = 80 * s, 105 * s  # face half-width / half-height
    shoulders = [(cx - 170, HEIGHT), (cx - 110, cy + fh + 20), (cx + 110, cy + fh + 20), (cx + 170, HEIGHT)]
    d.polygon(shoulders, fill=style["shirt"])
    hair = {"fill": style["hair"], "outline": (15, 15, 15), "width": 6}
    if style["long_hair"]:
        d.rounded_rectangle([cx - fw - 35, cy - fh - 25, cx + fw + 35, cy + fh + 110], radius=60, **hair)
    d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=style["skin"])
    d.chord([cx - fw - 6, cy - fh - 22, cx + fw + 6, cy - fh * 0.1], 180, 360, **hair)
    for i in range(style["lines"]):
        y = cy - fh * 0.5 + i * 11 * s
        d.line([cx - fw * 0.5, y, cx + fw * 0.5, y], fill=(110, 70, 60), width=5)
    for ex in (-1, 1):
        d.ellipse([cx + ex * fw * 0.4 - 11, cy - 12, cx + ex * fw * 0.4 + 11, cy + 6], fill=(255, 255, 255))
        d.ellipse([cx + ex * fw * 0.4 - 5, cy - 8, cx + ex * fw * 0.4 + 5, cy + 2], fill=(30, 30, 30))
    d.polygon([(cx, cy + 5), (cx - 12, cy + 38 * s), (cx + 12, cy + 38 * s)], fill=(190, 120, 100))
    d.line([cx - 24, cy + 62 * s, cx + 24, cy + 62 * s], fill=(170, 40, 50), width=7)
    if mask != 2:
        colour = MASK_COLOURS[int(rng.integers(len(MASK_COLOURS)))]
        top = cy + (12 if mask == 0 else 52) * s
        d.rounded_rectangle([cx - fw * 0.85, top, cx + fw * 0.85, cy + fh * 0.95], radius=18, fill=colour)
        for ex in (-1, 1):
            d.line([cx + ex * fw * 0.85, top + 10, cx + ex * fw, cy - 5], fill=colour, width=4)
    pixels = np.asarray(img.rotate(rng.uniform(-6, 6), fillcolor=style["background"]), dtype=np.int16)
    noise = rng.normal(0, 12, (HEIGHT // 4, WIDTH // 4, 3)).repeat(4, 0).repeat(4, 1)
    pixels = pixels * rng.uniform(0.85, 1.15) + noise
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _extension(rng: np.random.Generator) -> str:
    r = rng.random()
    if r < 0.03:
        return ".png"
    return ".jpeg" if r < 0.1 else ".jpg"


def _save(img: Image.Image, path: Path) -> None:
    if path.suffix == ".png":
        img.save(path, "PNG", compress_level=1)
    else:
        img.save(path, "JPEG", quality=90)


def photo_style(style: dict, identity: bool, rng: np.random.Generator) -> dict:
    """The style of one photo: the person's, or with `identity` off a new background and shirt (from a
    stream of its own, so the rest of the data set stays the same)."""
    if identity:
        return style
    return {**style, "background": tuple(int(v) for v in rng.integers(60, 200, 3)),
            "shirt": tuple(int(v) for v in rng.integers(0, 256, 3))}


STYLES = {"a": (_person_style, draw_photo), "b": (synthetic_b.person_style, synthetic_b.draw_photo),
          "c": (synthetic_c.person_style, synthetic_c.draw_photo)}
"""style name -> (person style, photo drawer)"""
SWAPPED = {"incorrect_mask": "normal", "normal": "incorrect_mask"}
PLANTED_FILE = "planted_noise.csv"  # beside train/ and eval/: the wrong labels planted (never read by training)


class Noise(NamedTuple):
    """Shares of training people whose written gender, age group or incorrect/normal photos are wrong."""

    gender: float = 0.0
    age: float = 0.0
    swap: float = 0.0


NO_NOISE = Noise()


def _train_person(out: Path, seed: int, k: int, identity: bool = True, style_name: str = "a",
                  noise: Noise = NO_NOISE) -> dict:
    """One training person: photos drawn from the true labels; with `noise`, the written labels may be wrong
    (the real data's label noise), and `planted` lists what was changed."""
    person_style, draw = STYLES[style_name]
    rng = np.random.default_rng([seed, 0, k])
    drift = np.random.default_rng([seed, 2, k])
    gender, age = int(rng.random() < 0.6), sample_age(rng)
    written_gender, written_age, swapped = plant(noise, np.random.default_rng([seed, 4, k]), gender, age)
    pid = f"{k + 1:06d}"
    folder = f"{pid}_{GENDER_NAMES[written_gender]}_Asian_{written_age}"
    (out / "images" / folder).mkdir(parents=True, exist_ok=True)
    style = person_style(rng, gender, age)
    for stem, mask in MASK_BY_STEM.items():
        written_stem = SWAPPED.get(stem, stem) if swapped else stem
        path = out / "images" / folder / f"{written_stem}{_extension(rng)}"
        _save(draw(photo_style(style, identity, drift), mask, rng), path)
        if rng.random() < 0.04:
            (path.parent / f"._{path.name}").write_bytes(b"\x00\x05\x16\x07 AppleDouble junk")
    planted = [{"id": pid, "field": field, "written": str(w), "true": str(t)}
               for field, w, t in (("gender", GENDER_NAMES[written_gender], GENDER_NAMES[gender]),
                                   ("age", written_age, age), ("swap_mask", swapped, False)) if w != t]
    return {"id": pid, "gender": GENDER_NAMES[written_gender], "race": "Asian", "age": written_age, "path": folder,
            "planted": planted}


def plant(noise: Noise, rng: np.random.Generator, gender: int, age: int) -> tuple[int, int, bool]:
    """(written gender, written age, incorrect/normal swapped): each field wrong with its share of `noise`;
    a wrong age is drawn from another age group (a mistake that changes the label)."""
    written_gender = 1 - gender if rng.random() < noise.gender else gender
    written_age = age
    if rng.random() < noise.age:
        group = age_group(age, DEFAULT_AGE_BOUNDS)
        other = int(rng.choice([g for g in range(3) if g != group]))
        written_age = (int(rng.integers(18, 30)), int(rng.integers(30, 60)), 60)[other]
    return written_gender, written_age, bool(rng.random() < noise.swap)


def _eval_person(out: Path, seed: int, k: int, identity: bool = True, style_name: str = "a") -> list[dict]:
    person_style, draw = STYLES[style_name]
    rng = np.random.default_rng([seed, 1, k])
    drift = np.random.default_rng([seed, 3, k])
    gender, age = int(rng.random() < 0.6), sample_age(rng)
    style = person_style(rng, gender, age)
    rows = []
    for stem, mask in MASK_BY_STEM.items():
        image_id = hashlib.sha1(f"{seed}/{k}/{stem}".encode()).hexdigest() + ".jpg"
        _save(draw(photo_style(style, identity, drift), mask, rng), out / "images" / image_id)
        rows.append({"ImageID": image_id, "ans": encode(mask, gender, age_group(age)), "person": k})
    return rows


def _map_people(func, out: Path, seed: int, n_people: int, workers: int, identity: bool = True,
                style: str = "a", *extra: object) -> list:
    """`func(out, seed, k, identity, style, *extra)` for every person k, in order; each person has its own RNG
    stream."""
    if workers <= 1:
        return [func(out, seed, k, identity, style, *extra) for k in range(n_people)]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(func, [out] * n_people, [seed] * n_people, range(n_people), [identity] * n_people,
                             [style] * n_people, *([e] * n_people for e in extra), chunksize=8))


def write_train(out: Path, n_people: int, seed: int, workers: int = 1, identity: bool = True,
                style: str = "a", noise: Noise = NO_NOISE) -> pd.DataFrame:
    """`out/train.csv` and `out/images/<id>_<gender>_Asian_<age>/` with the 7 photos (+ junk); with `noise`,
    `out/../planted_noise.csv` lists the wrong labels planted (`id,field,written,true`)."""
    people = _map_people(_train_person, out, seed, n_people, workers, identity, style, noise)
    table = pd.DataFrame([{k: v for k, v in p.items() if k != "planted"} for p in people])
    atomic_write_text(out / "train.csv", table.to_csv(index=False))
    if noise != NO_NOISE:
        rows = [row for p in people for row in p["planted"]]
        planted = pd.DataFrame(rows, columns=["id", "field", "written", "true"])
        atomic_write_text(out.parent / PLANTED_FILE, planted.to_csv(index=False))
    return table


def write_eval(out: Path, truth_path: Path, n_people: int, seed: int, workers: int = 1,
               identity: bool = True, style: str = "a") -> pd.DataFrame:
    """`out/info.csv` (shuffled, ans=0), hashed `out/images/*.jpg`, and the truth CSV elsewhere (with each
    photo's `person`)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows = [row for person in _map_people(_eval_person, out, seed, n_people, workers, identity, style)
            for row in person]
    truth = pd.DataFrame(rows, columns=["ImageID", "ans", "person"]).sample(frac=1.0, random_state=seed)
    truth = truth.reset_index(drop=True)
    atomic_write_text(out / "info.csv", truth[["ImageID", "ans"]].assign(ans=0).to_csv(index=False))
    atomic_write_text(truth_path, truth.to_csv(index=False))
    return truth


def generate(out: Path, train_people: int, eval_people: int, seed: int, workers: int = 1,
             identity: bool = True, style: str = "a", noise: Noise = NO_NOISE) -> None:
    """The whole demo data set under `out` (train/, eval/, eval_truth.csv; planted_noise.csv with `noise`);
    same files for any `workers`. Eval labels are always true."""
    out = Path(out)
    write_train(out / "train", train_people, seed, workers, identity, style, noise)
    write_eval(out / "eval", out / "eval_truth.csv", eval_people, seed, workers, identity, style)


@cli_main
def main(argv: Optional[Sequence[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train-people", type=int, default=300)
    parser.add_argument("--eval-people", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes (default: CPU count)")
    parser.add_argument("--no-identity", dest="identity", action="store_false",
                        help="a new background and shirt for every photo (default: kept per person)")
    parser.add_argument("--style", choices=STYLES, default="a",
                        help="a: the demo drawings; b: other cues and noise (tools/synthetic_b.py); c: age in face "
                             "shape and skin, not hair (tools/synthetic_c.py)")
    for field, what in (("gender", "gender"), ("age", "age group"), ("swap", "incorrect_mask/normal (swapped)")):
        parser.add_argument(f"--noise-{field}", type=float, default=0.0, metavar="SHARE",
                            help=f"share of training people with a wrong written {what} (listed in "
                                 f"OUT/{PLANTED_FILE}, never read by training)")
    args = parser.parse_args(argv)
    noise = Noise(args.noise_gender, args.noise_age, args.noise_swap)
    if not all(0.0 <= share <= 1.0 for share in noise):
        parser.error(f"--noise-*: shares must be in [0, 1], got {', '.join(f'{s:g}' for s in noise)}")
    generate(args.out, args.train_people, args.eval_people, args.seed, args.workers, args.identity, args.style, noise)
    print(f"demo data written to {args.out} ({args.train_people} train / {args.eval_people} eval people)")


script = as_script(main)

if __name__ == "__main__":
    main()
