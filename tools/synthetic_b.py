"""A second, independently drawn synthetic style (`python -m tools.synthetic --style b`).

Other shapes, cues and noise than style `a`, so that a recipe tuned on one style can be judged on the
other: a squarer face framed anywhere in the photo at 0.75-1.25x, a two-colour gradient background,
gender = jaw width and earrings (5 % atypical), age = a hairline that recedes and hair that greys
*continuously* with age (so 29 and 31 look alike, as in real photos), mask = a pleated mask, patterned or
plain, that sits over the nose (worn), under it at any height down to the chin (incorrect) or hangs at
the neck in some photos without a mask; noise = blur, a colour cast, JPEG quality 35-90.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

WIDTH, HEIGHT = 384, 512
CUE_NOISE = 0.05  # share of people with the other gender's jaw and earrings
HANGING_MASK = 0.3  # share of maskless photos with a mask hanging at the neck


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def person_style(rng: np.random.Generator, gender: int, age: int) -> dict:
    """What stays the same across one person's photos."""
    feminine = (gender == 1) != (rng.random() < CUE_NOISE)
    years = (age - 18) / 42  # 0 at 18, 1 at 60
    grey = float(np.clip(years + rng.normal(0, 0.08), 0, 1))
    base = np.array((40, 30, 25)) + rng.integers(-20, 25, 3)
    hair = base * (1 - grey) + np.array((225, 225, 220)) * grey
    return {
        "background": _colour(rng, 40, 220), "background2": _colour(rng, 40, 220),
        "shirt": _colour(rng), "collar": bool(rng.random() < 0.5),
        "skin": tuple(int(v) for v in np.array((200, 160, 130)) + rng.integers(-60, 45, 3)),
        "hair": tuple(int(v) for v in np.clip(hair, 0, 255)),
        "hairline": float(np.clip(0.15 + 0.55 * years + rng.normal(0, 0.05), 0.05, 0.8)),
        "jaw": 0.72 if feminine else 1.0, "earrings": feminine,
        "brow": 3 if feminine else 7,
    }


def _background(style: dict) -> Image.Image:
    top, bottom = np.array(style["background"], float), np.array(style["background2"], float)
    t = np.linspace(0, 1, HEIGHT)[:, None, None]
    rows = (top * (1 - t) + bottom * t).repeat(WIDTH, axis=1)
    return Image.fromarray(rows.astype(np.uint8))


def _face(d: ImageDraw.ImageDraw, style: dict, cx: float, cy: float, w: float, h: float) -> None:
    jaw = w * style["jaw"]
    outline = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + 0.2 * h), (cx + jaw, cy + 0.75 * h),
               (cx, cy + h), (cx - jaw, cy + 0.75 * h), (cx - w, cy + 0.2 * h)]
    d.polygon(outline, fill=style["skin"])
    fringe = (0.85 - style["hairline"]) * 0.6 * h  # how far hair reaches down the forehead: less with age
    d.rectangle([cx - w, cy - 1.15 * h, cx + w, cy - h + fringe], fill=style["hair"])
    for side in (-1, 1):
        d.rectangle([cx + side * w - 0.12 * w, cy - h, cx + side * w + 0.12 * w, cy - 0.1 * h], fill=style["hair"])
        ex = cx + side * 0.42 * w
        d.line([ex - 0.2 * w, cy - 0.3 * h, ex + 0.2 * w, cy - 0.3 * h], fill=(40, 30, 25), width=style["brow"])
        d.rectangle([ex - 0.12 * w, cy - 0.18 * h, ex + 0.12 * w, cy - 0.08 * h], fill=(25, 25, 30))
        if style["earrings"]:
            d.ellipse([cx + side * w - 9, cy + 0.1 * h, cx + side * w + 9, cy + 0.1 * h + 26], fill=(230, 200, 60))
    d.polygon([(cx, cy - 0.05 * h), (cx - 0.16 * w, cy + 0.28 * h), (cx + 0.16 * w, cy + 0.28 * h)],
              fill=(150, 95, 75))  # a nose that survives downscaling: what an incorrectly worn mask shows
    d.arc([cx - 0.3 * w, cy + 0.35 * h, cx + 0.3 * w, cy + 0.6 * h], 20, 160, fill=(150, 50, 60), width=5)


def _mask(d: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, top: float, w: float, h: float) -> None:
    colour = _colour(rng, 30, 250)
    box = [cx - 0.9 * w, top, cx + 0.9 * w, top + h]
    d.rectangle(box, fill=colour)
    stripe = _colour(rng) if rng.random() < 0.4 else None
    for k in range(1, 4):  # pleats, or stripes of a patterned mask
        y = top + k * h / 4
        d.line([box[0], y, box[2], y], fill=stripe or tuple(int(c * 0.7) for c in colour), width=6 if stripe else 2)
    for side in (-1, 1):
        d.line([cx + side * 0.9 * w, top + 4, cx + side * 1.05 * w, top - 0.3 * h], fill=colour, width=3)


def draw_photo(style: dict, mask: int, rng: np.random.Generator) -> Image.Image:
    """One 384x512 photo of a person with mask state 0 (worn), 1 (incorrect) or 2 (none)."""
    img = _background(style)
    d = ImageDraw.Draw(img)
    s = rng.uniform(0.75, 1.25)
    cx, cy = WIDTH / 2 + rng.uniform(-50, 50), HEIGHT * 0.4 + rng.uniform(-40, 40)
    w, h = 78 * s, 100 * s
    shirt = [(cx - 1.9 * w, HEIGHT), (cx - 1.2 * w, cy + 1.25 * h), (cx + 1.2 * w, cy + 1.25 * h),
             (cx + 1.9 * w, HEIGHT)]
    d.polygon(shirt, fill=style["shirt"])
    d.rectangle([cx - 0.35 * w, cy + 0.8 * h, cx + 0.35 * w, cy + 1.3 * h], fill=style["skin"])  # neck
    if style["collar"]:
        d.polygon([(cx - 0.4 * w, cy + 1.25 * h), (cx, cy + 1.55 * h), (cx + 0.4 * w, cy + 1.25 * h)], fill=(245,) * 3)
    _face(d, style, cx, cy, w, h)
    if mask == 0:
        _mask(d, rng, cx, cy - rng.uniform(0.02, 0.1) * h, w, 0.95 * h)
    elif mask == 1:  # under the nose, anywhere down to the chin
        top = cy + rng.uniform(0.3, 0.75) * h
        _mask(d, rng, cx, top, w, min(0.95 * h, cy + 1.1 * h - top))
    elif rng.random() < HANGING_MASK:
        _mask(d, rng, cx, cy + 1.15 * h, 0.8 * w, 0.45 * h)
    img = img.rotate(rng.uniform(-10, 10), fillcolor=style["background2"])
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0, 2.0)))
    pixels = np.asarray(img, dtype=np.float32) * rng.uniform(0.8, 1.2, 3) + rng.normal(0, 6, (HEIGHT, WIDTH, 3))
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()  # compression artefacts of phone photos
    img.save(buffer, "JPEG", quality=int(rng.integers(35, 91)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
