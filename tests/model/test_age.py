"""model.age: ordinal — the age bins, the ordinal loss, the fitted boundaries, the head that reads groups from
bins (checked against hand computations, scikit-learn and the 3-way head's own formula)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from model.age import (
    AGE_BINS,
    AGE_LOW,
    age_bin,
    fit_age_bounds,
    joint_targets,
    ordinal_loss,
    regroup,
    split_joint,
    training_bins,
)
from model.heads import MultiTaskHead, ordinal_head
from model.loss import MultiTaskLoss, build_loss
from utils.bootstrap import fast_macro_f1
from utils.config import LossConfig
from utils.labels import age_group, encode, split_classes


def one_hot_bins(ages, sharp: float = 30.0) -> torch.Tensor:
    """Bin log-probabilities peaked at `ages`."""
    return F.log_softmax(sharp * F.one_hot(torch.as_tensor(age_bin(np.asarray(ages))), AGE_BINS).float(), dim=1)


def class_logp(mask, gender) -> np.ndarray:
    """(N, 18) log-probabilities certain of each photo's mask and gender (age group 0, which the fit ignores)."""
    ids = [encode(m, g, 0) for m, g in zip(mask, gender)]
    return F.log_softmax(30.0 * F.one_hot(torch.tensor(ids), 18).float(), dim=1).numpy()


def test_fit_finds_the_bounds_of_a_network_that_reads_everyone_four_years_young():
    ages = np.repeat(np.arange(18, 61), 4)
    rng = np.random.default_rng(0)
    mask, gender = rng.integers(0, 3, len(ages)), rng.integers(0, 2, len(ages))
    y_true = np.array([encode(m, g, age_group(a)) for m, g, a in zip(mask, gender, ages)])
    bins = one_hot_bins(ages - 4).numpy()
    assert fit_age_bounds(class_logp(mask, gender), bins, y_true) == (26, 56)
    assert fit_age_bounds(class_logp(mask, gender), one_hot_bins(ages).numpy(), y_true) == (30, 60)


def test_fit_prefers_the_competition_bounds_among_equal_scores():
    # nobody between 25 and 35 or between 50 and 60: many bound pairs score alike, the nearest to (30, 60) wins
    ages = np.array([20, 22, 24, 40, 45, 60, 60])
    y_true = np.array([encode(0, 0, age_group(a)) for a in ages])
    bounds = fit_age_bounds(class_logp([0] * 7, [0] * 7), one_hot_bins(ages).numpy(), y_true)
    assert bounds == (30, 60)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 17), st.integers(0, 17)), min_size=1, max_size=60))
def test_the_fits_macro_f1_is_scikit_learns(pairs):
    y_true, y_pred = (np.array(v) for v in zip(*pairs))
    assert fast_macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))


def reference_ordinal(bin_logp: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Threshold by threshold: BCE of P(bin >= k) against the target's, k = 1..K-1, averaged."""
    p, t = bin_logp.exp().double(), targets.double()
    losses = []
    for k in range(1, p.shape[1]):
        above, want = p[:, k:].sum(1), t[:, k:].sum(1)
        losses.append(-(want * above.log() + (1 - want) * (1 - above).log()))
    return torch.stack(losses, 1).mean(1)


def test_ordinal_loss_is_the_mean_binary_cross_entropy_over_age_thresholds():
    torch.manual_seed(0)
    logp = torch.randn(6, AGE_BINS).log_softmax(1)
    targets = torch.rand(6, AGE_BINS).softmax(1)  # mixed ages too
    assert torch.allclose(ordinal_loss(logp, targets).double(), reference_ordinal(logp, targets), atol=1e-5)


def test_ordinal_loss_grows_with_the_distance_from_the_true_age():
    target = F.one_hot(torch.tensor([40 - AGE_LOW]), AGE_BINS).float()
    losses = [float(ordinal_loss(one_hot_bins([40 + d], sharp=4.0), target)) for d in (0, 2, 5, 10)]
    assert all(a < b for a, b in zip(losses, losses[1:])) and losses[0] < losses[-1] / 3


def test_joint_targets_carry_class_and_age_through_a_mixture():
    classes, ages = torch.tensor([3, 17]), np.array([25, 70])  # 70 is clipped into the last bin
    joint = joint_targets(classes, torch.as_tensor(age_bin(ages)))
    soft = 0.75 * F.one_hot(joint, 18 * AGE_BINS).float() + 0.25 * F.one_hot(joint.flip(0), 18 * AGE_BINS).float()
    class_t, bin_t = split_joint(soft)
    assert torch.allclose(class_t[0], 0.75 * F.one_hot(torch.tensor(3), 18) + 0.25 * F.one_hot(torch.tensor(17), 18))
    assert bin_t[0, 25 - AGE_LOW] == 0.75 and bin_t[0, AGE_BINS - 1] == 0.25
    assert torch.equal(split_joint(joint)[0].argmax(1), classes)


def test_training_bins_give_pseudo_labels_the_median_age_of_their_group():
    ages = np.array([20, 22, 28, 40, 50, -1, -1])
    labels = np.array([encode(0, 0, 0)] * 3 + [encode(0, 0, 1)] * 2 + [encode(1, 1, 0), encode(2, 0, 1)])
    assert (training_bins(ages, labels) + AGE_LOW).tolist() == [20, 22, 28, 40, 50, 22, 45]
    # no training photo of the group has an age: the middle of the group's ages, inside the group
    unknown = np.array([-1, -1, -1])
    bins = training_bins(unknown, np.array([encode(0, 0, 0), encode(0, 0, 1), encode(0, 0, 2)])) + AGE_LOW
    assert [age_group(a) for a in bins] == [0, 1, 2]
    assert bins.tolist() == [(18 + 29) // 2, (30 + 59) // 2, 60]  # the middle of 18..29, of 30..59, and 60


def test_ages_read_as_floats_fall_in_whole_year_bins():
    bins = age_bin(np.array([17.0, 18.0, 45.0, 45.9, 60.0, 71.5]))
    assert bins.dtype == np.int64 and bins.tolist() == [0, 0, 27, 27, 42, 42]
    assert training_bins(np.array([33.0, -1.0]), np.array([encode(0, 0, 1)] * 2)).tolist() == [15, 15]


def test_fit_reads_women_as_women():
    # everyone a woman without a mask: the fit must score her classes (ids 3..5), not men's or negative ids
    ages = np.array([24] * 6 + [35] * 6 + [58] * 6)
    truth = np.array([encode(0, 1, g) for g in [0] * 6 + [1] * 6 + [2] * 6])
    assert fit_age_bounds(class_logp([0] * 18, [1] * 18), one_hot_bins(ages).numpy(), truth) == (30, 58)


def test_ordinal_head_reads_groups_from_its_bins_under_its_bounds():
    torch.manual_seed(0)
    head = MultiTaskHead(16, age="ordinal").eval()
    features = torch.randn(5, 16)
    head.age_bounds.copy_(torch.tensor([27.0, 55.0]))
    logp = head(features)
    assert logp.shape == (5, 18) and torch.allclose(logp.exp().sum(1), torch.ones(5), atol=1e-5)
    bins = head.age(features).softmax(1)
    ages = torch.arange(AGE_LOW, AGE_LOW + AGE_BINS)
    p_mask, p_gender = head.mask(features).softmax(1), head.gender(features).softmax(1)
    middle = bins[:, (ages >= 27) & (ages < 55)].sum(1)
    assert torch.allclose(logp[:, encode(1, 0, 1)].exp(), p_mask[:, 1] * p_gender[:, 0] * middle, atol=1e-5)
    head.emit_bins = True
    out = head(features)
    assert out.shape == (5, 18 + AGE_BINS) and torch.allclose(out[:, :18], logp)
    moved = torch.tensor([33.0, 58.0])
    head.age_bounds.copy_(moved)
    assert torch.allclose(regroup(out[:, :18], out[:, 18:], moved), head(features)[:, :18], atol=1e-5)


def test_ordinal_head_bounds_are_saved_with_the_weights():
    head = MultiTaskHead(8, age="ordinal")
    head.age_bounds.copy_(torch.tensor([26.0, 57.0]))
    fresh = MultiTaskHead(8, age="ordinal")
    fresh.load_state_dict(head.state_dict())
    assert fresh.age_bounds.tolist() == [26.0, 57.0] and not fresh.emit_bins
    assert ordinal_head(torch.nn.Sequential()) is None and ordinal_head(MultiTaskHead(8)) is None


def test_ordinal_loss_adds_the_age_bins_to_the_mask_and_gender_losses():
    torch.manual_seed(0)
    head = MultiTaskHead(16, age="ordinal")
    head.emit_bins = True
    features, classes = torch.randn(8, 16), torch.randint(0, 18, (8,))
    bins = torch.as_tensor(age_bin(np.random.default_rng(0).integers(18, 61, 8)))
    weights = (1.0, 2.0, 0.5)
    loss_fn = build_loss(LossConfig(task_weights=weights), multi_task=True, ordinal_age=True)
    out = head(features)
    mask, gender, _ = split_classes(classes)
    expected = (F.cross_entropy(head.mask(features), mask) + 2.0 * F.cross_entropy(head.gender(features), gender)
                + 0.5 * ordinal_loss(out[:, 18:], F.one_hot(bins, AGE_BINS)).mean())
    assert torch.allclose(loss_fn(out, joint_targets(classes, bins)), expected, atol=1e-5)
    # validation outputs (18 columns, 18-class targets): the per-task loss of the 3-way head
    head.emit_bins = False
    plain = MultiTaskLoss(build_loss(LossConfig()), weights)
    assert torch.allclose(loss_fn(head(features), classes), plain(head(features), classes))
