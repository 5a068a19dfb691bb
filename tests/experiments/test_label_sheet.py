"""The review sheet of label suspects (experiments/label_sheet.py), read back as the reviewer sees it: the PNG."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from experiments.label_sheet import LABEL_PX, ORDER, PER_PAGE, ROW_PX, THUMB_HW, page_paths, thumbnails, write_sheet

COLOURS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200), (90, 60, 20)]
TILE_W = THUMB_HW[1] + 4  # a thumbnail and its white gap


def person(folder: Path, skip: tuple[str, ...] = ()) -> list[str]:
    """A person's 7 photos, each one flat colour (COLOURS in ORDER), written in a shuffled order."""
    folder.mkdir(parents=True)
    paths = []
    for stem, colour in reversed(list(zip(ORDER, COLOURS))):
        if stem not in skip:
            Image.new("RGB", (48, 64), colour).save(folder / f"{stem}.png")
            paths.append(str(folder / f"{stem}.png"))
    return paths


def suspects(tmp_path: Path, n: int) -> pd.DataFrame:
    photos = ";".join(person(tmp_path / "p"))
    return pd.DataFrame({"id": [f"{k:06d}" for k in range(n)], "field": "gender", "written": "male",
                         "suggested": "female", "score": 0.875, "near_boundary": [k % 2 == 1 for k in range(n)],
                         "photos": photos})


def test_a_persons_thumbnails_are_its_photos_in_stem_order_with_grey_for_a_missing_one(tmp_path):
    strip = thumbnails(person(tmp_path / "a", skip=("mask3",)) + [str(tmp_path / "a" / "mask3.png")])
    assert strip.shape == (THUMB_HW[0], len(ORDER) * TILE_W, 3) and strip.dtype == np.uint8
    for k, (stem, colour) in enumerate(zip(ORDER, COLOURS)):
        tile = strip[:, k * TILE_W:k * TILE_W + THUMB_HW[1]]
        assert (tile == (128 if stem == "mask3" else np.array(colour))).all(), stem
        assert (strip[:, k * TILE_W + THUMB_HW[1]:(k + 1) * TILE_W] == 255).all()  # the gap is white


def test_pages_after_the_first_are_numbered_from_2(tmp_path):
    first = tmp_path / "label_issues.png"
    assert page_paths(first, 1) == [first]
    assert page_paths(first, 3) == [first, tmp_path / "label_issues_2.png", tmp_path / "label_issues_3.png"]


@pytest.mark.figures
def test_each_suspect_row_shows_its_photos_under_its_label_and_stale_pages_go(tmp_path):
    table = suspects(tmp_path, PER_PAGE + 2)
    first = tmp_path / "out" / "label_issues.png"
    first.parent.mkdir()
    for name in ("label_issues_3.png", "label_issues_notes.png"):  # a stale page of an earlier call; a user's file
        (first.parent / name).write_bytes(b"old")
    pages = write_sheet(table, first)
    assert pages == page_paths(first, 2)
    assert sorted(p.name for p in first.parent.iterdir()) == ["label_issues.png", "label_issues_2.png",
                                                              "label_issues_notes.png"]
    strip = thumbnails(table["photos"][0].split(";"))
    for path, rows in ((pages[0], PER_PAGE), (pages[1], 2)):
        image = np.asarray(Image.open(path).convert("RGB"))
        assert image.shape[:2] == (rows * (ROW_PX + LABEL_PX) + 30, strip.shape[1])
        for k in range(rows):
            top = 30 + k * (ROW_PX + LABEL_PX)
            shown = image[top + LABEL_PX:top + LABEL_PX + THUMB_HW[0]].astype(int)
            assert np.abs(shown - strip).max() <= 2, (path.name, k)  # the photos, where the row says
            label = image[top:top + LABEL_PX].astype(int)
            red = (label[..., 0] > 150) & (label[..., 1] < 90) & (label[..., 2] < 90)
            inked = (label.sum(axis=2) < 600).sum()
            assert inked > 50, (path.name, k)  # every row has its label line
            near_boundary = bool(table["near_boundary"][k + (PER_PAGE if path == pages[1] else 0)])
            assert (red.sum() > 20) != near_boundary, (path.name, k)  # drafted suspects in red, the rest in grey


def test_the_label_line_names_the_suspect_its_labels_and_its_place(tmp_path):
    from experiments.label_sheet import draw_page

    rows = suspects(tmp_path, 2)
    fig = draw_page(rows, start=25)
    texts = [t.get_text() for t in fig.texts]
    assert texts[0] == "  ".join(f"{k + 1}:{s}" for k, s in enumerate(ORDER))
    assert texts[1] == "#26 000000 gender: written male → suggested female (score 0.88)"
    assert texts[2] == "#27 000001 gender: written male → suggested female (score 0.88) · near a group boundary: " \
                       "not drafted"
    heights = [t.get_position()[1] for t in fig.texts]
    assert heights == sorted(heights, reverse=True) and all(0 < h < 1 for h in heights)  # top to bottom, on it
    assert fig.get_figwidth() * fig.dpi == pytest.approx(len(ORDER) * TILE_W)
    assert fig.get_figheight() * fig.dpi == pytest.approx(2 * (ROW_PX + LABEL_PX) + 30)


@pytest.mark.figures
def test_a_sheet_without_suspects_is_one_page_saying_so(tmp_path):
    pages = write_sheet(suspects(tmp_path, 0), tmp_path / "label_issues.png")
    assert pages == [tmp_path / "label_issues.png"]
    image = np.asarray(Image.open(pages[0]).convert("L"))
    assert (image < 128).sum() > 30  # "no suspects" is written on it


def test_the_second_page_numbers_its_suspects_on_from_the_first(tmp_path, monkeypatch):
    import experiments.label_sheet as sheet

    starts = []
    real = sheet.draw_page
    monkeypatch.setattr(sheet, "draw_page", lambda rows, start: starts.append((len(rows), start)) or real(rows, start))
    monkeypatch.setattr(sheet, "atomic_write_with", lambda path, write: None)  # the numbering, not the pictures
    sheet.write_sheet(suspects(tmp_path, PER_PAGE * 2 + 1), tmp_path / "label_issues.png")
    assert starts == [(PER_PAGE, 0), (PER_PAGE, PER_PAGE), (1, 2 * PER_PAGE)]
