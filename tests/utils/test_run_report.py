"""report.png (utils/run_report.py, tools/report.py): a readable PNG of the promised width whose numbers come
from the run's files."""
from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from helpers import fails_in_one_line, make_run, noisy, photos
from tools import report
from utils.logger import rows_to_csv
from utils.run_dir import RunDir
from utils.run_report import WIDTH_PX, collect, draw, write_report

pytestmark = pytest.mark.figures  # these tests are about the pictures: drawn for real

EPOCHS = 4


def finished_run(path, seed=0, accuracy=0.7, people=30):
    """A run directory with metrics.csv (every column distinct), summary.json, config.yaml and predictions."""
    paths, labels = photos(people, seed=seed)
    make_run(path, paths, labels, noisy(labels, accuracy, seed), name="demo",
             model={"backbone": "resnet10t", "head": "linear"}, augment={"image_size": [128, 96]},
             trainer={"epochs": EPOCHS})
    rng = np.random.default_rng(seed)
    rows = [{"epoch": e, **{k: float(v) for k, v in zip(
        ("train_loss", "val_loss", "train_f1", "val_f1", "val_f1_mask", "val_f1_gender", "val_f1_age",
         "train_f1_mask", "train_f1_gender", "train_f1_age"), rng.random(10))}} for e in range(1, EPOCHS + 1)]
    RunDir(path).metrics.write_text(rows_to_csv(rows))
    RunDir(path).summary.write_text(json.dumps({"best_epoch": 3, "model": "best", "model_f1": 0.61234,
                                                "model_f1_pm": 0.0456}))
    return rows


def lines_by_label(fig):
    return {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}


def test_the_curves_drawn_are_the_columns_of_metrics_csv(tmp_path):
    rows = finished_run(tmp_path / "run")
    fig = draw(collect(tmp_path / "run"))
    try:
        lines = lines_by_label(fig)
        for column in ("train_loss", "val_loss", "train_f1", "val_f1", "val_f1_age", "train_f1_gender"):
            assert list(lines[column].get_xdata()) == [r["epoch"] for r in rows]
            assert list(lines[column].get_ydata()) == pytest.approx([r[column] for r in rows]), column
        assert "resnet10t" in fig._suptitle.get_text() and "best epoch 3" in fig._suptitle.get_text()
        assert "val F1 0.6123 ± 0.0456 (best.pth)" in fig._suptitle.get_text()
    finally:
        plt.close(fig)


def test_the_confusion_counts_and_class_bars_come_from_the_predictions(tmp_path):
    from sklearn.metrics import f1_score

    finished_run(tmp_path / "run")
    data = collect(tmp_path / "run")
    fig = draw(data)
    try:
        y, p = data.predictions.labels, data.predictions.preds
        bars = [patch.get_height() for ax in fig.axes for patch in ax.patches if ax.get_title().startswith("per-class")]
        assert bars == pytest.approx(f1_score(y, p, labels=range(18), average=None, zero_division=0))
        mask_ax = next(ax for ax in fig.axes if ax.get_title().startswith("mask"))
        cells = [t.get_text().split("\n")[0] for t in mask_ax.texts]
        expected = np.bincount((y // 6) * 3 + p // 6, minlength=9)
        assert [int(c) for c in cells] == expected.tolist()
    finally:
        plt.close(fig)


def test_report_png_is_a_png_1600_px_wide_written_atomically(tmp_path):
    finished_run(tmp_path / "run")
    out = write_report(tmp_path / "run")
    with Image.open(out) as image:
        assert image.format == "PNG" and image.size[0] == WIDTH_PX and 800 < image.size[1] < 1400
    assert not list((tmp_path / "run").glob("*.tmp*"))


def test_a_k_fold_run_and_a_repeated_run_show_their_members_side_by_side(tmp_path):
    import pandas as pd

    repeated = RunDir(tmp_path / "rep")
    for k, seed in enumerate((42, 43)):
        finished_run(repeated.member(seed).path, seed=0, accuracy=0.5 + 0.3 * k)
    data = collect(repeated.path)
    assert data.members == ["seed 42", "seed 43"] and len(data.per_class) == 2
    assert len(data.predictions) == 2 * 7 * 30  # both seeds' predictions pooled
    kfold = RunDir(tmp_path / "kfold")
    frames = []
    for fold in range(3):
        finished_run(kfold.fold(fold).path, seed=fold)
        frames.append(pd.read_csv(kfold.fold(fold).val_predictions, dtype={"person": str}).assign(fold=fold))
    frames[1]["path"] = frames[1]["path"].str.replace("/images/", "/images1/")  # three folds, three sets of people
    frames[2]["path"] = frames[2]["path"].str.replace("/images/", "/images2/")
    pd.concat(frames).to_csv(kfold.oof, index=False)
    data = collect(kfold.path)
    assert data.members == ["fold 0", "fold 1", "fold 2"] and len(data.predictions) == 3 * 7 * 30
    fig = draw(data)
    try:
        per_class = next(ax for ax in fig.axes if ax.get_title().startswith("per-class"))
        assert len(per_class.patches) == 3 * 18 and "fold 2 val_f1" in lines_by_label(fig)
    finally:
        plt.close(fig)


def test_without_metrics_one_line_and_without_predictions_curves_only(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    fails_in_one_line(report.main, [str(tmp_path / "empty")], capsys, "no metrics.csv")
    fails_in_one_line(report.main, [str(tmp_path / "nothing")], capsys, "no such run directory")
    finished_run(tmp_path / "run")
    RunDir(tmp_path / "run").val_predictions.unlink()
    data = collect(tmp_path / "run")
    assert data.predictions is None and "no validation predictions" in data.notes[0]
    assert report.main([str(tmp_path / "run")]) == [RunDir(tmp_path / "run").report]
    assert not (tmp_path / "empty" / "report.png").exists()
