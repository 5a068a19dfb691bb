"""Shared fixtures: a small synthetic data set and a tiny, fast config."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, os.cpu_count() or 1))

from tools.synthetic import generate  # noqa: E402 - after the thread setting

TRAIN_PEOPLE, EVAL_PEOPLE = 30, 6


def fake_images(n_people: int, seed: int = 0) -> pd.DataFrame:
    """An image table of `n_people` people (7 images each), without files."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n_people):
        gender, group = int(rng.integers(2)), int(rng.choice(3, p=[0.45, 0.45, 0.1]))
        rows += [(f"{k:06d}", gender, group, m) for m in (0, 0, 0, 0, 0, 1, 2)]
    return pd.DataFrame(rows, columns=["person_id", "gender", "age_group", "mask"])


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """30 train people (210 images) and 6 eval people (42 images) in the competition layout."""
    out = tmp_path_factory.mktemp("data")
    generate(out, TRAIN_PEOPLE, EVAL_PEOPLE, seed=3, workers=1)
    return out


def tiny_overrides(data: Path, save_dir: Path, **extra: object) -> list[str]:
    """Overrides that make any config tiny and fast on CPU."""
    base = {
        "name": "tiny",
        "save_dir": save_dir,
        "data.train_dir": data / "train",
        "data.eval_dir": data / "eval",
        "data.batch_size": 16,
        "data.num_workers": 0,
        "augment.image_size": "[64, 48]",
        "model.backbone": "mobilenetv3_small_050",
        "model.pretrained": "false",
        "trainer.epochs": 1,
        "trainer.device": "cpu",
    }
    base.update(extra)
    return [f"{k}={v}" for k, v in base.items()]


@pytest.fixture()
def tiny_args(demo_data, tmp_path):
    """`train.py` argv for a tiny run of configs/demo.yaml; keyword overrides win."""
    def make(**extra: object) -> list[str]:
        overrides = tiny_overrides(demo_data, tmp_path / "saved", **extra)
        return ["--config", str(ROOT / "configs" / "demo.yaml"), *overrides]
    return make


@pytest.fixture()
def make_trainer(demo_data, tmp_path):
    """A tiny Trainer over configs/demo.yaml writing checkpoints to `tmp_path` (or `run_dir`);
    keyword overrides win (`make_trainer(**{"trainer.epochs": 2})`)."""
    from trainer.build import build_trainer
    from utils.config import load_config

    def make(run_dir: Path | None = None, **extra: object):
        run_dir = run_dir or tmp_path
        cfg = load_config(ROOT / "configs" / "demo.yaml", tiny_overrides(demo_data, run_dir / "saved", **extra))
        return build_trainer(cfg, run_dir=run_dir)
    return make


GRACE_HOPPER_FACE = (155, 105, 222, 222)  # x, y, w, h of the face in matplotlib's grace_hopper.jpg (512 x 600)


def draw_mask(image, face, state: str, color=(150, 190, 220)):
    """A copy of PIL `image` with a mask drawn over the `face` box: `mask` (nose to chin), `incorrect`
    (mouth and chin only) or `normal` (none)."""
    from PIL import ImageDraw

    image = image.copy()
    if state != "normal":
        x, y, w, h = face
        top = y + (0.52 if state == "mask" else 0.70) * h
        ImageDraw.Draw(image).polygon([(x + 0.10 * w, top), (x + 0.90 * w, top), (x + 0.86 * w, y + 0.95 * h),
                                       (x + 0.5 * w, y + 1.08 * h), (x + 0.14 * w, y + 0.95 * h)], fill=color)
    return image


@pytest.fixture(scope="session")
def face_photos(tmp_path_factory) -> tuple[Path, dict[str, tuple[float, float, float, float]]]:
    """A real face (matplotlib's public-domain photo of Grace Hopper) framed like a competition photo
    (384 x 512), without a mask, with a drawn mask and with one worn under the nose; returns the
    directory and each file's true face box."""
    from matplotlib import cbook
    from PIL import Image

    out = tmp_path_factory.mktemp("faces")
    source = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")
    fx, fy, fw, fh = GRACE_HOPPER_FACE
    truth = {}
    for state in ("normal", "mask", "incorrect"):
        width = int(2.0 * fw)
        x0, y0 = int(fx + fw / 2 - 0.5 * width), int(fy + fh / 2 - 0.35 * width * 4 / 3)
        frame = draw_mask(source, GRACE_HOPPER_FACE, state).crop((x0, y0, x0 + width, y0 + width * 4 // 3))
        frame.resize((384, 512), Image.BILINEAR).save(out / f"{state}.jpg", quality=92)
        k = 384 / width
        truth[f"{state}.jpg"] = ((fx - x0) * k, (fy - y0) * k, fw * k, fh * k)
    return out, truth


@pytest.fixture(scope="session")
def postgres_server_url() -> Path:
    """A PostgreSQL server started for this test session (tests/postgres_server.py)."""
    from postgres_server import postgres_server

    yield from postgres_server()


@pytest.fixture()
def postgres_url(postgres_server_url, request) -> str:
    """A fresh, empty database on the session's PostgreSQL server, for one test."""
    import re

    import psycopg

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40] + f"_{os.getpid()}"
    with psycopg.connect(postgres_server_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_server_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture(params=["sqlite", "postgresql"])
def study_storage(request) -> str | None:
    """The study storage a tune test runs on: the default SQLite file (None) or a PostgreSQL database."""
    return None if request.param == "sqlite" else request.getfixturevalue("postgres_url")
