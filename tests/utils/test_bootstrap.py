"""The people bootstrap (utils/bootstrap.py): scores against scikit-learn, people moving together, coverage."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from utils.bootstrap import (
    f1_half_width,
    macro_f1_of,
    person_confusions,
    person_index,
    resample_counts,
    resampled_images,
    scores_of,
)
from utils.labels import TASKS, split_classes


def people_set(n_people: int, accuracy: float, rng: np.random.Generator, photos: int = 7):
    """Labels of n people (a person's photos share gender and age; masks 5/1/1), and predictions right with
    probability `accuracy`, else a random class."""
    person = np.repeat(np.arange(n_people), photos)
    gender_age = rng.integers(0, 6, n_people)[person]
    mask = np.tile([0, 0, 0, 0, 0, 1, 2][:photos], n_people)
    labels = mask * 6 + gender_age
    right = rng.random(len(labels)) < accuracy
    preds = np.where(right, labels, rng.integers(0, 18, len(labels)))
    return person, labels, preds


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), n_people=st.integers(1, 30), accuracy=st.floats(0, 1))
def test_resampled_scores_equal_scikit_learn_on_the_same_photos(seed, n_people, accuracy):
    rng = np.random.default_rng(seed)
    person, labels, preds = people_set(n_people, accuracy, rng)
    index, n = person_index(person.astype(str))
    counts = resample_counts(n, 4, rng)
    per_person = person_confusions(labels, preds, index, n)
    for row in counts:
        photos = resampled_images(index, row)
        scores = scores_of(row @ per_person)
        y, p = labels[photos], preds[photos]
        assert scores["f1"] == pytest.approx(f1_score(y, p, average="macro", zero_division=0))
        for task, ty, tp in zip(TASKS, split_classes(y), split_classes(p)):
            assert scores[f"f1_{task}"] == pytest.approx(f1_score(ty, tp, average="macro", zero_division=0))
        per_class = f1_score(y, p, labels=range(18), average=None, zero_division=0)
        assert [scores[f"f1_c{c:02d}"] for c in range(18)] == pytest.approx(per_class)


def test_a_persons_photos_always_move_together():
    rng = np.random.default_rng(1)
    person = rng.permutation(np.repeat(np.arange(50), 7))  # photos of a person scattered through the file
    index, n = person_index(np.array([f"{p:06d}_male_Asian_40" for p in person]))
    counts = resample_counts(n, 200, rng)
    assert counts.sum(axis=1).tolist() == [50] * 200  # P people drawn, with replacement
    assert (counts == 0).any() and (counts >= 2).any()
    for row in counts[:20]:
        drawn = np.bincount(index[resampled_images(index, row)], minlength=n)
        assert drawn.tolist() == (row * 7).astype(int).tolist()  # all 7 photos, as often as the person


def test_macro_f1_counts_only_classes_present_in_truth_or_prediction():
    conf = np.zeros((18, 18))
    conf[0, 0], conf[1, 1], conf[1, 0] = 3, 1, 1  # classes 0 and 1 only
    expected = f1_score([0, 0, 0, 1, 1], [0, 0, 0, 1, 0], average="macro", zero_division=0)
    assert macro_f1_of(conf) == pytest.approx(expected)


def simulate_pair(n_people, rng, acc_a=0.6, acc_b=0.7, shared=0.0):
    """Two models on the same people; B copies A's prediction on a `shared` share of the photos."""
    person, labels, preds_a = people_set(n_people, acc_a, rng)
    right = rng.random(len(labels)) < acc_b
    preds_b = np.where(right, labels, rng.integers(0, 18, len(labels)))
    copy = rng.random(len(labels)) < shared
    return person, labels, preds_a, np.where(copy, preds_a, preds_b)


def paired_interval(person, labels, preds_a, preds_b, rng, resamples=400):
    index, n = person_index(person)
    counts = resample_counts(n, resamples, rng)
    f1_a = scores_of(counts @ person_confusions(labels, preds_a, index, n))["f1"]
    f1_b = scores_of(counts @ person_confusions(labels, preds_b, index, n))["f1"]
    return np.percentile(f1_b - f1_a, [2.5, 97.5])


def test_the_interval_covers_the_true_difference_about_95_percent_of_the_time():
    """A known effect: the population difference is measured on 20,000 people; 200 validation sets of 60
    people each get a paired interval, and about 95 % of them must cover it."""
    rng = np.random.default_rng(7)
    person, labels, a, b = simulate_pair(20000, rng)
    truth = (scores_of(person_confusions(labels, b, *person_index(person)).sum(axis=0))["f1"]
             - scores_of(person_confusions(labels, a, *person_index(person)).sum(axis=0))["f1"])
    assert truth > 0.05  # a real effect to cover
    covered = 0
    for _ in range(200):
        low, high = paired_interval(*simulate_pair(60, rng), rng)
        covered += low <= truth <= high
    assert 0.89 <= covered / 200 <= 0.99, covered


def test_paired_is_narrower_than_unpaired_on_correlated_predictions():
    rng = np.random.default_rng(3)
    person, labels, a, b = simulate_pair(120, rng, acc_a=0.6, acc_b=0.62, shared=0.8)
    low, high = paired_interval(person, labels, a, b, rng)
    index, n = person_index(person)
    f1_a = scores_of(resample_counts(n, 400, rng) @ person_confusions(labels, a, index, n))["f1"]
    f1_b = scores_of(resample_counts(n, 400, rng) @ person_confusions(labels, b, index, n))["f1"]
    u_low, u_high = np.percentile(f1_b - f1_a, [2.5, 97.5])
    assert (high - low) < 0.6 * (u_high - u_low)


def test_half_width_shrinks_with_more_people():
    rng = np.random.default_rng(0)
    person, labels, preds = people_set(40, 0.7, rng)
    small = f1_half_width(labels, preds, person, seed=1)
    person, labels, preds = people_set(640, 0.7, rng)
    large = f1_half_width(labels, preds, person, seed=1)
    assert large < small / 2.5  # 16x the people: about a quarter of the width


def test_no_people_give_no_interval_and_one_person_a_zero_width():
    from utils.bootstrap import f1_half_width, paired_f1_delta, person_index

    index, n = person_index(np.array([], dtype=str))
    assert n == 0 and len(index) == 0
    empty = np.array([], dtype=np.int64)
    assert np.isnan(f1_half_width(empty, empty, np.array([], dtype=str)))
    assert all(np.isnan(v) for v in paired_f1_delta(empty, empty, empty, np.array([], dtype=str)))
    one = np.array([3, 4, 4])
    assert f1_half_width(one, one, np.array(["p"] * 3), n_resamples=50) == 0.0
    assert paired_f1_delta(one, one, np.array([3, 3, 4]), np.array(["p"] * 3), n_resamples=50)[1:] == (
        pytest.approx(-1 / 3), pytest.approx(-1 / 3))


def test_every_person_is_drawn_about_once_per_resample():
    from utils.bootstrap import resample_counts

    counts = resample_counts(5, 4000, np.random.default_rng(0))
    assert counts.shape == (4000, 5) and (counts.sum(axis=1) == 5).all()
    assert np.allclose(counts.mean(axis=0), 1.0, atol=0.06) and (counts[:, 0] > 0).any()


def test_half_width_is_half_the_interval_of_scikit_learns_scores_on_the_resampled_photos():
    from sklearn.metrics import f1_score

    from utils.bootstrap import f1_half_width, interval, person_index, resample_counts, resampled_images

    person_ids, y_true, y_pred = people_set(25, 0.6, np.random.default_rng(4))
    people = person_ids.astype(str)
    person, n_people = person_index(people)
    counts = resample_counts(n_people, 200, np.random.default_rng(11))
    scores = []
    for row in counts:
        idx = resampled_images(person, row)
        labels = np.union1d(y_true[idx], y_pred[idx])
        scores.append(f1_score(y_true[idx], y_pred[idx], labels=labels, average="macro", zero_division=0))
    low, high = interval(np.array(scores))
    width = f1_half_width(y_true, y_pred, people, n_resamples=200, seed=11)
    assert width == pytest.approx((high - low) / 2)
    assert f1_half_width(y_true, y_pred, people, n_resamples=200, rng=np.random.default_rng(11)) == width
    assert f1_half_width(y_true, y_pred, people, n_resamples=200, seed=11) == width  # repeatable
