"""predict.submission: the files a prediction ends in, checked against pandas' own reading of them."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from predict.submission import (
    POOLED_COLUMNS,
    scores_to_probabilities,
    write_probabilities,
    write_pseudo_labels,
    write_submission,
)
from utils.run_dir import PROB_COLUMNS

TABLE = pd.DataFrame({"ImageID": ["0042.jpg", "b.jpg", "a.jpg", "c.jpg"]})  # info.csv order, not sorted


def rows(*best, confidence=(0.95, 0.9, 0.5, 0.899999)):
    """Probabilities whose argmax is `best` with the given confidence, the rest spread evenly."""
    probs = np.zeros((len(best), 18))
    for i, (c, p) in enumerate(zip(best, confidence)):
        probs[i] = (1 - p) / 17
        probs[i, c] = p
    return probs


def test_the_submission_is_the_argmax_in_info_csv_order(tmp_path):
    out = write_submission(TABLE, rows(3, 17, 0, 5), tmp_path / "submission.csv")
    written = pd.read_csv(out, dtype={"ImageID": str})
    assert list(written.columns) == ["ImageID", "ans"]
    assert written["ImageID"].tolist() == TABLE["ImageID"].tolist() and written["ans"].tolist() == [3, 17, 0, 5]
    assert out.read_text().splitlines()[1] == "0042.jpg,3"  # class ids as integers, ids as written


def test_pseudo_labels_keep_the_confident_photos_at_or_above_the_threshold(tmp_path):
    probs = rows(3, 17, 0, 5)
    kept = write_pseudo_labels(TABLE, probs, np.log(probs), tmp_path / "pseudo.csv", min_prob=0.9)
    written = pd.read_csv(tmp_path / "pseudo.csv", dtype={"ImageID": str})
    assert kept == 2 and written["ImageID"].tolist() == ["0042.jpg", "b.jpg"]  # 0.9 itself is kept
    assert written["label"].tolist() == [3, 17] and written["probability"].tolist() == [0.95, 0.9]
    assert write_pseudo_labels(TABLE, probs, np.log(probs), tmp_path / "most.csv", min_prob=0.6) == 3
    assert write_pseudo_labels(TABLE, probs, np.log(probs), tmp_path / "none.csv", min_prob=0.99) == 0
    assert pd.read_csv(tmp_path / "none.csv").columns.tolist() == ["ImageID", "label", "probability"]


def test_pseudo_labels_follow_the_scores_and_report_that_classes_probability(tmp_path):
    """A fitted ensemble's offsets can move the argmax away from the most probable class: the label is the
    scores' argmax and its probability the one of that class."""
    probs = rows(3, 17, 0, 5, confidence=(0.6, 0.6, 0.6, 0.6))
    scores = np.log(probs)
    scores[:, 9] += 10  # class 9 wins every row by its offset
    write_pseudo_labels(TABLE, probs, scores, tmp_path / "pseudo.csv", min_prob=0.0)
    written = pd.read_csv(tmp_path / "pseudo.csv")
    assert written["label"].tolist() == [9] * 4
    assert written["probability"].to_numpy() == pytest.approx(probs[:, 9], abs=1e-6)


def test_the_probabilities_file_holds_each_class_column_rounded_to_six_digits(tmp_path):
    probs = softmax(np.random.default_rng(0).normal(size=(4, 18)) * 3, axis=1)
    pooled = softmax(np.random.default_rng(1).normal(size=(4, 18)), axis=1)
    write_probabilities(TABLE, probs, tmp_path / "plain.csv")
    plain = pd.read_csv(tmp_path / "plain.csv", dtype={"ImageID": str})
    assert list(plain.columns) == ["ImageID", *PROB_COLUMNS] and plain["ImageID"].tolist() == TABLE["ImageID"].tolist()
    assert plain[PROB_COLUMNS].to_numpy() == pytest.approx(probs, rel=1e-5)
    write_probabilities(TABLE, probs, tmp_path / "pooled.csv", pooled=pooled)
    both = pd.read_csv(tmp_path / "pooled.csv")
    assert list(both.columns) == ["ImageID", *PROB_COLUMNS, *POOLED_COLUMNS]
    assert POOLED_COLUMNS[0] == "pooled_00" and POOLED_COLUMNS[-1] == "pooled_17"
    assert both[POOLED_COLUMNS].to_numpy() == pytest.approx(pooled, rel=1e-5)
    assert max(len(cell) for cell in (tmp_path / "plain.csv").read_text().replace("\n", ",").split(",")) <= 12


@pytest.mark.parametrize("scale", [1.0, 1000.0, 10000.0])
def test_scores_become_scipys_softmax_even_when_large(scale):
    scores = np.random.default_rng(2).normal(size=(5, 18)) * scale
    probs = scores_to_probabilities(scores)
    assert np.isfinite(probs).all() and probs == pytest.approx(softmax(scores, axis=1), abs=1e-12)
    assert (probs.argmax(1) == scores.argmax(1)).all()


def test_pseudo_labels_default_to_a_probability_of_at_least_0_9_written_to_six_digits(tmp_path):
    probs = rows(3, 17, 0, 5, confidence=(0.9, 0.8999, 0.91234567, 0.95))
    assert write_pseudo_labels(TABLE, probs, np.log(probs), tmp_path / "pseudo.csv") == 3
    written = pd.read_csv(tmp_path / "pseudo.csv", dtype={"ImageID": str})
    assert written["ImageID"].tolist() == ["0042.jpg", "a.jpg", "c.jpg"]
    assert (tmp_path / "pseudo.csv").read_text().splitlines()[2] == "a.jpg,0,0.912346"
