"""Face detection on real photos, and faces.csv: written once, reused while files are unchanged."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from data_loader import faces
from data_loader.faces import FACES_FILE, best_face, create_detector, read_face_table, update_face_table
from helpers import ROOT, scaled
from tools import faces as faces_cli
from utils.errors import DataError, UserError


def iou(a, b) -> float:
    ax1, ay1, bx1, by1 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    inter = max(0, min(ax1, bx1) - max(a[0], b[0])) * max(0, min(ay1, by1) - max(a[1], b[1]))
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


@pytest.mark.parametrize("state", ["normal", "mask", "incorrect"])
def test_mtcnn_finds_a_real_face_with_and_without_a_mask(face_photos, state):
    folder, truth = face_photos
    image = np.asarray(Image.open(folder / f"{state}.jpg"))
    box, score = best_face(create_detector("mtcnn")(image))
    assert score >= 0.5
    assert iou(box, truth[f"{state}.jpg"]) >= 0.4


def test_mtcnn_finds_nothing_confident_in_a_photo_without_a_face():
    from sklearn.datasets import load_sample_image

    image = np.asarray(Image.fromarray(load_sample_image("flower.jpg")).resize((384, 512)))
    found = best_face(create_detector("mtcnn")(image))
    assert found is None or found[1] < 0.5


def test_haar_finds_an_unmasked_face_or_says_opencv_has_no_cascades(face_photos):
    import cv2

    folder, truth = face_photos
    if not (Path(getattr(getattr(cv2, "data", None), "haarcascades", "") or "/nonexistent")
            / "haarcascade_frontalface_alt2.xml").is_file():
        with pytest.raises(UserError, match="ships no Haar cascades"):
            create_detector("haar")
        return
    box, _ = best_face(create_detector("haar")(np.asarray(Image.open(folder / "normal.jpg"))))
    assert iou(box, truth["normal.jpg"]) >= 0.4


def test_unknown_detector_is_named_with_a_suggestion():
    with pytest.raises(UserError, match="'mtcn'.*did you mean: mtcnn"):
        create_detector("mtcn")


def test_best_face_prefers_the_score_then_the_larger_box():
    assert best_face([]) is None
    assert best_face([((0, 0, 10, 10), 0.6), ((5, 5, 3, 3), 0.9)])[1] == 0.9
    assert best_face([((0, 0, 10, 10), 0.9), ((5, 5, 30, 30), 0.9)])[0] == (5, 5, 30, 30)


@pytest.fixture()
def counting_detector(monkeypatch):
    """Replace the detectors with one that counts its calls and finds a fixed box."""
    calls = []

    def factory():
        def detect(image):
            calls.append(image.shape)
            return [((10.0, 20.0, 30.0, 40.0), 0.9)]
        return detect

    monkeypatch.setitem(faces.DETECTORS, "mtcnn", factory)
    monkeypatch.setitem(faces.DETECTORS, "haar", factory)
    return calls


def test_face_table_is_reused_while_files_are_unchanged(face_photos, tmp_path, counting_detector):
    folder, _ = face_photos
    data = tmp_path / "data"
    shutil.copytree(folder, data / "sub")
    (data / "sub" / "._normal.jpg").write_bytes(b"AppleDouble junk")  # never an image
    table = update_face_table(data, "mtcnn", workers=0)
    assert sorted(table["path"]) == ["sub/incorrect.jpg", "sub/mask.jpg", "sub/normal.jpg"]
    assert len(counting_detector) == 3 and (table["width"] == 384).all() and (table["height"] == 512).all()
    written = (data / FACES_FILE).stat().st_mtime_ns

    update_face_table(data, "mtcnn", workers=0)
    assert len(counting_detector) == 3  # nothing detected again
    assert (data / FACES_FILE).stat().st_mtime_ns == written  # nor rewritten

    Image.open(data / "sub" / "mask.jpg").transpose(Image.FLIP_LEFT_RIGHT).save(data / "sub" / "mask.jpg")
    (data / "sub" / "incorrect.jpg").unlink()
    table = update_face_table(data, "mtcnn", workers=0)
    assert len(counting_detector) == 4  # only the changed file
    assert sorted(table["path"]) == ["sub/mask.jpg", "sub/normal.jpg"]
    assert sorted(read_face_table(data / FACES_FILE)["path"]) == ["sub/mask.jpg", "sub/normal.jpg"]

    update_face_table(data, "haar", workers=0)
    assert len(counting_detector) == 6  # another detector: everything again
    assert not [p for p in os.listdir(data) if p.endswith(".tmp")]


def many_photos(folder: Path, out: Path) -> Path:
    """Enough copies of the photos in `folder` for the detection to use worker processes."""
    out.mkdir()
    for k in range(faces.MIN_PARALLEL // 3 + 1):
        for photo in folder.glob("*.jpg"):
            shutil.copy(photo, out / f"{k:02d}_{photo.name}")
    return out


@pytest.mark.slow  # a subprocess or a worker pool: make test only
def test_parallel_detection_equals_serial(face_photos, tmp_path):
    folder, _ = face_photos
    serial = many_photos(folder, tmp_path / "serial")
    parallel = shutil.copytree(serial, tmp_path / "parallel")
    a = update_face_table(serial, "mtcnn", workers=0)
    b = update_face_table(parallel, "mtcnn", workers=2)
    cols = ["path", "width", "height", "x", "y", "w", "h", "score"]
    assert len(a) >= faces.MIN_PARALLEL and a[cols].equals(b[cols]) and (a["score"] >= 0.5).all()


@pytest.mark.slow
def test_parallel_detection_after_torch_has_run_its_thread_pool(face_photos, tmp_path):
    """Training calls the detector after torch's OpenMP pool has run; forked workers hung there."""
    folder, _ = face_photos
    photos = many_photos(folder, tmp_path / "photos")
    script = (f"import torch\ntorch.set_num_threads(2)\nx = torch.randn(256, 256)\n(x @ x).sum()\n"
              f"from data_loader.faces import update_face_table\nif __name__ == '__main__':\n"
              f"    print(len(update_face_table({str(photos)!r}, 'mtcnn', workers=2)))\n")
    (tmp_path / "run.py").write_text(script)
    done = subprocess.run([sys.executable, str(tmp_path / "run.py")], cwd=ROOT, capture_output=True, text=True,
                          timeout=scaled(180))
    assert done.returncode == 0, done.stderr[-400:]
    assert int(done.stdout.strip()) == len(list(photos.glob("*.jpg"))) >= faces.MIN_PARALLEL


def test_no_face_is_an_empty_box_with_score_zero(tmp_path, monkeypatch):
    monkeypatch.setitem(faces.DETECTORS, "mtcnn", lambda: (lambda image: []))
    Image.new("RGB", (48, 64), (120, 30, 30)).save(tmp_path / "plain.png")
    table = update_face_table(tmp_path, "mtcnn", workers=0)
    assert table.loc[0, "score"] == 0 and np.isnan(table.loc[0, ["x", "y", "w", "h"]].astype(float)).all()


def test_an_undecodable_file_has_no_box_and_stops_nothing(face_photos, tmp_path, caplog):
    folder, _ = face_photos
    shutil.copy(folder / "normal.jpg", tmp_path / "good.jpg")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    table = update_face_table(tmp_path, "mtcnn", workers=0).set_index("path")
    assert table.loc["good.jpg", "score"] >= 0.5
    assert table.loc["broken.jpg", "score"] == 0 and table.loc["broken.jpg", "width"] == 0
    assert "1 image(s) could not be decoded" in caplog.text


def test_cli_writes_faces_csv_and_bad_input_is_one_line(face_photos, tmp_path, capsys, counting_detector):
    folder, _ = face_photos
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    faces_cli.main(["--data", str(data)])
    assert "3 images, a face (score >= 0.5) in 3 (100.0%)" in capsys.readouterr().out
    assert (data / FACES_FILE).is_file()

    for argv, message in [(["--data", str(tmp_path / "missing")], "missing: not a directory"),
                          (["--data", str(tmp_path / "data"), "--detector", "dlib"], "unknown face detector 'dlib'")]:
        with pytest.raises(SystemExit) as exit_info:
            faces_cli.main(argv)
        assert exit_info.value.code == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1

    (data / FACES_FILE).write_text("path,width\nx.jpg,3\n")
    with pytest.raises(DataError, match=r"faces.csv: missing column\(s\) height"):
        update_face_table(data, "mtcnn", workers=0)
