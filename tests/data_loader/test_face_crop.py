"""augment.face_crop: the window geometry, the decode, and crops reaching the cache, training and inference."""
from __future__ import annotations

import shutil
import typing

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from data_loader import faces
from data_loader.face_crop import FaceCrop, center_window, face_window
from data_loader.faces import FACES_FILE
from data_loader.images import load_image
from helpers import ROOT, tiny_overrides
from utils.config import FaceCropConfig, load_config

sizes = st.integers(min_value=8, max_value=600)
aspects = st.floats(min_value=0.4, max_value=2.5)


@given(image_w=sizes, image_h=sizes, fx=st.floats(0, 1), fy=st.floats(0, 1), fw=st.floats(0.02, 1),
       fh=st.floats(0.02, 1), margin=st.floats(0, 2), aspect=aspects)
def test_face_window_is_inside_the_image_with_the_aspect_and_holds_the_face(image_w, image_h, fx, fy, fw, fh, margin,
                                                                             aspect):
    box = (fx * image_w * (1 - fw), fy * image_h * (1 - fh), fw * image_w, fh * image_h)
    x0, y0, x1, y1 = face_window(box, image_w=image_w, image_h=image_h, margin=margin, aspect=aspect)
    assert 0 <= x0 < x1 <= image_w and 0 <= y0 < y1 <= image_h
    width, height = x1 - x0, y1 - y0
    assert abs(width - height * aspect) <= 1.5 + aspect  # rounding to whole pixels
    wanted_w = max(box[2] * (1 + 2 * margin), box[3] * (1 + 2 * margin) * aspect)
    if wanted_w <= image_w - 2 and wanted_w / aspect <= image_h - 2:  # room for the widened face: what of it is in
        x, y, w, h = box                                                # the image is in the window
        assert x0 <= max(0, x - margin * w) + 1 and min(image_w, x + w + margin * w) - 1 <= x1
        assert y0 <= max(0, y - margin * h) + 1 and min(image_h, y + h + margin * h) - 1 <= y1


@given(image_w=sizes, image_h=sizes, scale=st.floats(0.1, 1), aspect=aspects)
def test_center_window_is_centred_with_the_aspect(image_w, image_h, scale, aspect):
    x0, y0, x1, y1 = center_window(image_w=image_w, image_h=image_h, scale=scale, aspect=aspect)
    assert 0 <= x0 < x1 <= image_w and 0 <= y0 < y1 <= image_h
    assert abs((x0 + x1) - image_w) <= 2 and abs((y0 + y1) - image_h) <= 2
    assert abs((x1 - x0) - (y1 - y0) * aspect) <= 1.5 + aspect
    assert max(x1 - x0 - image_w * scale, y1 - y0 - image_h * scale) <= 1  # at most `scale` of each side


def test_detector_names_in_the_config_are_the_detectors():
    assert set(typing.get_args(FaceCropConfig.model_fields["detector"].annotation)) == set(faces.DETECTORS)


def crop_for(folder, out_hw=(128, 96), draft=False, **kwargs) -> FaceCrop:
    boxes = faces.face_boxes([folder], "mtcnn")
    return FaceCrop(boxes, out_hw=out_hw, draft=draft, **kwargs)


def test_crop_cuts_the_face_window_and_falls_back_to_the_centre(face_photos, tmp_path):
    folder, truth = face_photos
    data = tmp_path / "photos"
    shutil.copytree(folder, data)
    Image.new("RGB", (384, 512), (90, 140, 60)).save(data / "blank.jpg")
    crop = crop_for(data, margin=0.25)
    for name in truth:
        path = str(data / name)
        assert crop.has_face(path)
        full = load_image(path)
        x0, y0, x1, y1 = crop.window(path, 384, 512)
        assert np.array_equal(crop.cut(path), full[y0:y1, x0:x1])
        x, y, w, h = truth[name]  # the true face, with most of the margin, is in the crop
        assert x0 <= x and x + w <= x1 and y0 <= y and y + h <= y1
        assert abs((x1 - x0) / (y1 - y0) - 96 / 128) < 0.01
    blank = str(data / "blank.jpg")
    assert not crop.has_face(blank)
    assert crop.window(blank, 384, 512) == center_window(image_w=384, image_h=512, scale=0.7, aspect=0.75)
    raised = FaceCrop(crop.boxes, out_hw=(128, 96), min_score=1.0, draft=False)
    assert not raised.has_face(str(data / "normal.jpg"))  # below min_score: the fallback too


def test_draft_decoding_still_covers_the_network_input(face_photos):
    folder, _ = face_photos
    path = str(folder / "mask.jpg")
    full, draft = crop_for(folder, out_hw=(64, 48)), crop_for(folder, out_hw=(64, 48), draft=True)
    small, big = draft.cut(path), full.cut(path)
    assert small.shape[0] < big.shape[0] and small.shape[0] >= 64 and small.shape[1] >= 48
    same_size = np.asarray(Image.fromarray(big).resize(small.shape[1::-1], Image.BILINEAR), dtype=float)
    assert np.abs(same_size - small).mean() < 12  # the same picture, at a lower resolution


def test_fingerprint_changes_with_settings_and_boxes(face_photos):
    folder, _ = face_photos
    crop = crop_for(folder)
    assert crop.fingerprint() == crop_for(folder).fingerprint()
    assert crop.fingerprint() != crop_for(folder, margin=0.5).fingerprint()
    moved = dict(crop.boxes)
    key = next(iter(moved))
    box, score, w, h = moved[key]
    moved[key] = ((box[0] + 1, *box[1:]), score, w, h)
    assert crop.fingerprint() != FaceCrop(moved, out_hw=(128, 96), draft=False).fingerprint()


@pytest.fixture()
def face_data(demo_data, tmp_path):
    """A copy of the synthetic data set (faces.csv is written into it)."""
    shutil.copytree(demo_data, tmp_path / "data")
    return tmp_path / "data"


@pytest.mark.slow
@pytest.mark.parametrize("cache", ["memory", "disk"])
def test_training_and_validation_see_the_crops_the_cache_holds(face_data, tmp_path, cache):
    from trainer.build import build_parts

    overrides = tiny_overrides(face_data, tmp_path / "saved", **{"data.cache": cache, "data.cache_dir": tmp_path / "c",
                                                                 "augment.face_crop.margin": 0.2})
    config = load_config(ROOT / "configs" / "demo.yaml", overrides)
    parts = build_parts(config)
    assert (face_data / "train" / FACES_FILE).is_file()
    train_set, val_set = parts.train_loader.dataset, parts.val_loader.dataset
    crop = train_set.crop
    assert crop is not None and crop.margin == 0.2 and train_set.cache.shape[1:3] == (64, 48)
    for dataset in (train_set, val_set):
        for index in (0, len(dataset) - 1):
            path = dataset.paths[index]
            expected = np.asarray(Image.fromarray(crop.cut(path)).resize((48, 64), Image.BILINEAR))
            assert np.array_equal(dataset.decoded(index), expected)


@pytest.mark.slow
def test_inference_crops_the_eval_images_like_training(face_data, tmp_path):
    from helpers import predict_with
    from trainer.lifecycle import run_training
    from utils.run_dir import RunDir

    config = load_config(ROOT / "configs" / "demo.yaml", tiny_overrides(face_data, tmp_path / "saved",
                                                                          **{"augment.face_crop.margin": 0.3}))
    run = RunDir(tmp_path / "run")
    run_training(config, run_dir=run)
    assert not (face_data / "eval" / FACES_FILE).exists()
    cpu = torch.device("cpu")
    table, probs = predict_with([run.best], device=cpu, num_workers=0)
    assert (face_data / "eval" / FACES_FILE).is_file()  # the eval photos were cut to their faces too

    state = torch.load(run.best, weights_only=False)  # the same weights, the config without the crop
    state["config"]["augment"]["face_crop"] = None
    torch.save(state, tmp_path / "plain.pth")
    (face_data / "eval" / FACES_FILE).unlink()
    _, plain = predict_with([tmp_path / "plain.pth"], device=cpu, num_workers=0)
    assert not (face_data / "eval" / FACES_FILE).exists()
    assert len(table) == len(probs) == len(plain) and not np.allclose(probs, plain, atol=1e-4)


def boxes_for(found: dict[str, bool]) -> dict:
    """Face-table entries: a confident box where `found`, none elsewhere."""
    return {f"/d/images/p/{stem}.jpg": ((10.0, 10.0, 50.0, 50.0), 0.99 if hit else 0.0, 384, 512)
            for stem, hit in found.items()}


def test_detection_rates_per_mask_state_and_the_shortcut_warning():
    # as on synthetic data: faces found without a mask, rarely with one
    skewed = {**{f"mask{i}": i == 1 for i in range(1, 6)}, "incorrect_mask": False, "normal": True}
    crop = FaceCrop(boxes_for(skewed), out_hw=(64, 48), draft=False)
    assert crop.rates_by_mask() == {"wear": 0.2, "incorrect": 0.0, "not": 1.0}
    warning = crop.label_leak_warning()
    assert warning is not None and "wear 20%, incorrect 0%, not 100%" in warning and "shortcut" in warning
    even = {**{f"mask{i}": True for i in range(1, 6)}, "incorrect_mask": True, "normal": True}
    assert FaceCrop(boxes_for(even), out_hw=(64, 48), draft=False).label_leak_warning() is None
