"""`inference.py --probs`: ImageID and the 18 probabilities, rows in info.csv order, atomically."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import inference
from helpers import fails_in_one_line, untrained_checkpoint
from predict.submission import POOLED_COLUMNS, scores_to_probabilities, write_probabilities
from utils.run_dir import PROB_COLUMNS


def test_probs_sum_to_one_follow_info_csv_and_match_the_submission(demo_data, tmp_path):
    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth", seed=2)
    out, probs = tmp_path / "sub.csv", tmp_path / "probs.csv"
    inference.main(["--ckpt", str(ckpt), "--data", str(demo_data / "eval"), "--out", str(out), "--probs", str(probs)])
    frame = pd.read_csv(probs, dtype={"ImageID": str})
    info = pd.read_csv(demo_data / "eval" / "info.csv", dtype=str)
    assert list(frame.columns) == ["ImageID", *PROB_COLUMNS]
    assert frame["ImageID"].tolist() == info["ImageID"].tolist()
    values = frame[PROB_COLUMNS].to_numpy()
    assert np.allclose(values.sum(axis=1), 1, atol=1e-4) and (values >= 0).all()
    submission = pd.read_csv(out, dtype={"ImageID": str})
    assert (values.argmax(axis=1) == submission["ans"].to_numpy()).all()
    assert len(set(values.argmax(axis=1))) >= 1 and not list(tmp_path.glob("*.tmp"))


@pytest.mark.parametrize("bad", ["directory", "under_a_file", "info_csv", "the_checkpoint"])
def test_a_bad_probs_path_is_one_line_and_nothing_is_written(demo_data, tmp_path, capsys, bad):
    ckpt = untrained_checkpoint(demo_data, tmp_path / "run" / "best.pth")
    target = {"directory": tmp_path, "under_a_file": ckpt / "probs.csv", "info_csv": demo_data / "eval" / "info.csv",
              "the_checkpoint": ckpt}[bad]
    out = tmp_path / "sub.csv"
    before = [p.read_bytes() for p in (demo_data / "eval" / "info.csv", ckpt)]
    fails_in_one_line(inference.main, ["--ckpt", str(ckpt), "--data", str(demo_data / "eval"), "--out", str(out),
                                       "--probs", str(target)], capsys, "--probs")
    assert not out.exists() and [p.read_bytes() for p in (demo_data / "eval" / "info.csv", ckpt)] == before


def test_pooled_columns_and_offset_adjusted_probabilities(tmp_path):
    table = pd.DataFrame({"ImageID": ["b.jpg", "a.jpg"]})
    probs = np.full((2, 18), 1 / 18)
    pooled = np.eye(18)[[3, 4]]
    write_probabilities(table, probs, tmp_path / "p.csv", pooled=pooled)
    frame = pd.read_csv(tmp_path / "p.csv")
    assert list(frame.columns) == ["ImageID", *PROB_COLUMNS, *POOLED_COLUMNS]
    assert frame["ImageID"].tolist() == ["b.jpg", "a.jpg"]
    assert frame[POOLED_COLUMNS].to_numpy().argmax(axis=1).tolist() == [3, 4]
    scores = np.log(np.full((1, 18), 1 / 18)) + np.arange(18) * 0.1  # log-probabilities plus class offsets
    adjusted = scores_to_probabilities(scores)
    assert adjusted.sum() == pytest.approx(1) and adjusted.argmax() == scores.argmax() == 17
