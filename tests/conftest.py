"""Shared fixtures: a small synthetic data set, a tiny trainer, real face photos, a PostgreSQL server.
Plain helpers (paths, overrides, the one-line-failure check) live in helpers.py."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

# one thread per pytest-xdist worker (`make test-fast`): two workers of two threads each on 2 cores ran 4x slower
torch.set_num_threads(1 if "PYTEST_XDIST_WORKER" in os.environ else min(2, os.cpu_count() or 1))

from support.mutation import (  # noqa: E402,F401 - pytest_configure is a hook: imported so pytest finds it
    order_for_mutation,
    pytest_configure,
    under_mutmut,
    unmutated_mutmut_run,
)
from support.shared import made_once  # noqa: E402

from helpers import GRACE_HOPPER_FACE, ROOT, draw_mask, tiny_overrides  # noqa: E402,F401 - fixtures use them
from tools.synthetic import generate  # noqa: E402 - after the thread setting

TRAIN_PEOPLE, EVAL_PEOPLE = 30, 6


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """30 train people (210 images) and 6 eval people (42 images) in the competition layout, drawn once for all
    xdist workers of a session (read-only: a test that changes data copies it).

    Under mutmut every mutant is a new session: the data is drawn once, by unmutated code (mutmut's stats
    run), kept in `mutants/.test-data/` and copied for each session instead of drawn again (6 s each)."""
    mutant = under_mutmut()
    if mutant is None and not unmutated_mutmut_run():  # one copy for all xdist workers
        return made_once(tmp_path_factory, f"demo-{TRAIN_PEOPLE}-{EVAL_PEOPLE}-3",
                         lambda out: generate(out, TRAIN_PEOPLE, EVAL_PEOPLE, seed=3, workers=1))
    out = tmp_path_factory.mktemp("data")
    kept = Path(".test-data") / f"demo-{TRAIN_PEOPLE}-{EVAL_PEOPLE}-3"
    if mutant is not None and kept.is_dir():
        shutil.copytree(kept, out, dirs_exist_ok=True)
        return out
    generate(out, TRAIN_PEOPLE, EVAL_PEOPLE, seed=3, workers=1)
    if unmutated_mutmut_run():
        partial = kept.with_name(f"{kept.name}.{os.getpid()}.tmp")
        shutil.copytree(out, partial)
        partial.replace(kept)
    return out


@pytest.fixture()
def tiny_args(demo_data, tmp_path):
    """`train.py` argv for a tiny run of configs/demo.yaml; keyword overrides win."""
    def make(**extra: object) -> list[str]:
        overrides = tiny_overrides(demo_data, tmp_path / "saved", **extra)
        return ["--config", str(ROOT / "configs" / "demo.yaml"), *overrides]
    return make


@pytest.fixture(scope="session")
def finished_run(demo_data, tmp_path_factory) -> Path:
    """One finished tiny run of configs/demo.yaml, made once for all xdist workers, for tests that only need some
    finished run (its checkpoints, config, predictions); take it through `run_copy`, never change it."""
    import train

    def make(save_dir: Path) -> None:
        done = train.main(["--config", str(ROOT / "configs" / "demo.yaml"), *tiny_overrides(demo_data, save_dir)])
        Path(done["run_dir"]).rename(save_dir / "run")

    return made_once(tmp_path_factory, "finished-run", make) / "run"


@pytest.fixture()
def run_copy(finished_run, tmp_path) -> Path:
    """A private copy of `finished_run` (a test may damage or extend it); its config reads the shared data."""
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


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
    """A PostgreSQL server started for this test session (tests/support/postgres_server.py)."""
    from support.postgres_server import postgres_server

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


@pytest.fixture(autouse=True)
def cheap_figures(request, monkeypatch) -> None:
    """Pictures are drawn for real only in tests marked `figures` (support/figures.py says why)."""
    if "figures" not in request.keywords:
        from support.figures import use_cheap_figures

        use_cheap_figures(monkeypatch)


def pytest_collection_modifyitems(config, items):
    """`gpu` tests run only where CUDA works (`pytest -m gpu` on a GPU machine); elsewhere they skip. Under
    mutmut the tests are ordered and chosen first (`support.mutation.order_for_mutation`)."""
    order_for_mutation(config, items)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (run with `pytest -m gpu` on one)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


def pytest_keyboard_interrupt(excinfo):
    """Ctrl-C stops the test run's child processes too (training runs, torchrun agents, tune.py)."""
    from helpers import stop_descendants

    stop_descendants(os.getpid())
