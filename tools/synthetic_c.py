"""A third synthetic style (`python -m tools.synthetic --style c`), whose cues differ from styles a and b.

Age is carried by the *shape of the face and the texture of the skin*, continuously (a lower face that widens
into jowls, a chin that drops, bags under the eyes, more blotches on the skin as the years go by), never by
hair colour, which is drawn at random; gender by the hairstyle (a bun and thin brows, or short hair and
thick brows; 3 % atypical); mask = a cup-shaped mask over nose and chin (worn), one covering the mouth and
chin only or pulled down to the chin (incorrect); noise = uneven light from one side, sensor noise and JPEG
quality 50-95. The face sits near the middle (±30 px), as in the competition photos.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw

WIDTH, HEIGHT = 384, 512
CUE_NOISE = 0.03  # share of people with the other gender's hairstyle


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(low, high, 3))


def person_style(rng: np.random.Generator, gender: int, age: int) -> dict:
    """What stays the same across one person's photos."""
    feminine = (gender == 1) != (rng.random() < CUE_NOISE)
    years = float(np.clip((age - 18) / 42 + rng.normal(0, 0.07), 0, 1))  # 0 at 18, 1 at 60
    return {
        "background": _colour(rng, 50, 210), "shirt": _colour(rng),
        "skin": tuple(int(v) for v in np.array((210, 170, 140)) + rng.integers(-55, 35, 3)),
        "hair": _colour(rng, 10, 200),  # any colour at any age: not an age cue in this style
        "bun": feminine, "brow": 3 if feminine else 9,
        "jowl": 0.62 + 0.38 * years,  # lower-face width relative to the cheeks: a young face narrows to the chin
        "chin": 1.0 + 0.12 * years,  # how far the chin drops
        "bags": years, "blotches": int(round(40 * years ** 1.5)),
        "blotch_seed": int(rng.integers(2**31)),
    }


def _face(d: ImageDraw.ImageDraw, style: dict, cx: float, cy: float, w: float, h: float) -> None:
    jowl, chin = w * style["jowl"], h * style["chin"]
    outline = [(cx - w, cy - h), (cx + w, cy - h), (cx + w, cy + 0.15 * h), (cx + jowl, cy + 0.7 * chin),
               (cx + 0.35 * jowl, cy + chin), (cx - 0.35 * jowl, cy + chin), (cx - jowl, cy + 0.7 * chin),
               (cx - w, cy + 0.15 * h)]
    d.polygon(outline, fill=style["skin"])
    spots = np.random.default_rng(style["blotch_seed"])  # the same skin on every photo of the person
    for _ in range(style["blotches"]):
        x, y = cx + spots.uniform(-0.8, 0.8) * w, cy + spots.uniform(-0.8, 0.6) * h
        r = spots.uniform(2, 5)
        d.ellipse([x - r, y - r, x + r, y + r], fill=tuple(int(c * 0.78) for c in style["skin"]))
    d.chord([cx - w - 4, cy - 1.3 * h, cx + w + 4, cy - 0.55 * h], 180, 360, fill=style["hair"])
    if style["bun"]:
        d.ellipse([cx - 0.35 * w, cy - 1.55 * h, cx + 0.35 * w, cy - 1.05 * h], fill=style["hair"])
    for side in (-1, 1):
        ex = cx + side * 0.4 * w
        d.line([ex - 0.22 * w, cy - 0.32 * h, ex + 0.22 * w, cy - 0.32 * h], fill=(35, 25, 20), width=style["brow"])
        d.ellipse([ex - 0.15 * w, cy - 0.2 * h, ex + 0.15 * w, cy - 0.06 * h], fill=(245, 245, 245))
        d.ellipse([ex - 0.06 * w, cy - 0.18 * h, ex + 0.06 * w, cy - 0.08 * h], fill=(20, 20, 25))
        if style["bags"] > 0.2:  # bags under the eyes, darker with age
            shade = tuple(int(c * (1 - 0.35 * style["bags"])) for c in style["skin"])
            d.arc([ex - 0.16 * w, cy - 0.1 * h, ex + 0.16 * w, cy + 0.05 * h], 20, 160, fill=shade, width=4)
    d.polygon([(cx, cy - 0.05 * h), (cx - 0.14 * w, cy + 0.3 * h), (cx + 0.14 * w, cy + 0.3 * h)],
              fill=(165, 105, 85))
    d.line([cx - 0.28 * w, cy + 0.55 * h, cx + 0.28 * w, cy + 0.55 * h], fill=(160, 50, 55), width=6)


def _mask(d: ImageDraw.ImageDraw, rng: np.random.Generator, cx: float, top: float, bottom: float, w: float) -> None:
    colour = _colour(rng, 20, 250)
    d.chord([cx - 0.95 * w, top - (bottom - top) * 0.25, cx + 0.95 * w, bottom], 0, 180, fill=colour)
    d.rectangle([cx - 0.95 * w, top, cx + 0.95 * w, top + (bottom - top) * 0.45], fill=colour)
    d.line([cx, top, cx, bottom], fill=tuple(int(c * 0.75) for c in colour), width=3)  # the cup's seam
    for side in (-1, 1):
        d.line([cx + side * 0.95 * w, top + 6, cx + side * 1.05 * w, top - 30], fill=(235, 235, 235), width=3)


def draw_photo(style: dict, mask: int, rng: np.random.Generator) -> Image.Image:
    """One 384x512 photo of a person with mask state 0 (worn), 1 (incorrect) or 2 (none)."""
    img = Image.new("RGB", (WIDTH, HEIGHT), style["background"])
    d = ImageDraw.Draw(img)
    s = rng.uniform(0.9, 1.1)
    cx, cy = WIDTH / 2 + rng.uniform(-30, 30), HEIGHT * 0.43 + rng.uniform(-30, 30)
    w, h = 76 * s, 98 * s
    d.polygon([(cx - 175, HEIGHT), (cx - 105, cy + 1.3 * h), (cx + 105, cy + 1.3 * h), (cx + 175, HEIGHT)],
              fill=style["shirt"])
    d.rectangle([cx - 0.33 * w, cy + 0.8 * h, cx + 0.33 * w, cy + 1.35 * h], fill=style["skin"])
    _face(d, style, cx, cy, w, h)
    chin = cy + h * style["chin"]
    if mask == 0:
        _mask(d, rng, cx, cy + rng.uniform(-0.05, 0.08) * h, chin + 0.05 * h, w)
    elif mask == 1:  # the nose out: over mouth and chin, or pulled down to the chin
        top = cy + (rng.uniform(0.35, 0.45) if rng.random() < 0.6 else rng.uniform(0.62, 0.75)) * h
        _mask(d, rng, cx, top, chin + 0.1 * h, w)
    pixels = np.asarray(img.rotate(rng.uniform(-5, 5), fillcolor=style["background"]), dtype=np.float32)
    light = np.linspace(rng.uniform(0.7, 1.0), rng.uniform(1.0, 1.3), WIDTH)[None, :, None]  # light from one side
    pixels = pixels * (light if rng.random() < 0.5 else light[:, ::-1]) + rng.normal(0, 8, pixels.shape)
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=int(rng.integers(50, 96)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
