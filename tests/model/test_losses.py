import pytest
import torch
import torch.nn.functional as F

from model.loss import build_loss, inverse_frequency
from utils.config import LossConfig

torch.manual_seed(0)
LOGITS = torch.randn(16, 18) * 3
TARGETS = torch.randint(0, 18, (16,))


def loss(name, **kw):
    return build_loss(LossConfig(name=name, **kw), TARGETS.tolist())


def test_ce_matches_torch_including_weights_and_smoothing():
    assert torch.allclose(loss("ce")(LOGITS, TARGETS), F.cross_entropy(LOGITS, TARGETS), atol=1e-6)
    w = torch.rand(18).tolist()
    assert torch.allclose(loss("ce", class_weights=w)(LOGITS, TARGETS),
                          F.cross_entropy(LOGITS, TARGETS, weight=torch.tensor(w)), atol=1e-6)
    assert torch.allclose(loss("label_smoothing", label_smoothing=0.1)(LOGITS, TARGETS),
                          F.cross_entropy(LOGITS, TARGETS, label_smoothing=0.1), atol=1e-6)


def test_focal_downweights_easy_examples():
    easy = torch.full((4, 18), -5.0)
    easy[torch.arange(4), torch.arange(4)] = 5.0
    targets = torch.arange(4)
    ce, focal = loss("ce")(easy, targets), loss("focal", gamma=2.0)(easy, targets)
    assert focal < ce * 1e-3
    assert torch.allclose(loss("focal", gamma=0.0)(LOGITS, TARGETS), loss("ce")(LOGITS, TARGETS))
    assert not torch.allclose(loss("focal_ls", label_smoothing=0.1)(LOGITS, TARGETS),
                              loss("focal")(LOGITS, TARGETS))


@pytest.mark.parametrize("name", ["ce", "focal", "label_smoothing", "focal_ls", "soft_f1"])
def test_soft_targets_accepted_and_differentiable(name):
    logits = LOGITS.clone().requires_grad_(True)
    a, b = F.one_hot(TARGETS, 18).float(), F.one_hot(TARGETS.roll(1), 18).float()
    smoothing = 0.1 if name in ("label_smoothing", "focal_ls") else 0.0
    value = loss(name, label_smoothing=smoothing)(logits, 0.7 * a + 0.3 * b)
    value.backward()
    assert torch.isfinite(value) and logits.grad.abs().sum() > 0
    if name == "ce":
        expected = 0.7 * F.cross_entropy(LOGITS, TARGETS) + 0.3 * F.cross_entropy(LOGITS, TARGETS.roll(1))
        assert torch.allclose(value, expected, atol=1e-5)


def test_soft_f1_is_one_minus_macro_f1():
    perfect = F.one_hot(TARGETS, 18).float() * 50
    assert loss("soft_f1")(perfect, TARGETS) < 0.05
    assert loss("soft_f1")(torch.zeros(16, 18), TARGETS) > 0.8


def test_auto_class_weights_are_inverse_frequency():
    weights = inverse_frequency([0, 0, 0, 1, 2, 2], 4)
    assert weights[3] == 0 and weights[0] * 3 == pytest.approx(weights[1]) == pytest.approx(weights[2] * 2 / 1)
    assert sum(weights) / 3 == pytest.approx(1.0)
    auto = build_loss(LossConfig(class_weights="auto"), [0, 0, 0, 1])
    assert auto.weights[1] == pytest.approx(3 * auto.weights[0])


def test_bad_class_weights_rejected():
    from utils.config import load_config
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="loss.class_weights"):
        load_config(None, ["loss.class_weights=[1, 2]"])


@pytest.mark.parametrize("name, extra", [("ce", {}), ("focal_ls", {"label_smoothing": 0.1}), ("soft_f1", {}),
                                         ("ce", {"class_weights": "auto"})])
def test_sample_weight_zero_drops_a_sample(name, extra):
    from model.loss import build_loss
    from utils.config import LossConfig

    torch.manual_seed(0)
    loss = build_loss(LossConfig(name=name, **extra), train_labels=list(range(18)) * 2)
    logits, targets = torch.randn(6, 18), torch.tensor([0, 5, 7, 9, 11, 17])
    weight = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0])
    assert loss(logits, targets, weight) == pytest.approx(float(loss(logits[:3], targets[:3])), rel=1e-5)
    assert loss(logits, targets, torch.ones(6)) == pytest.approx(float(loss(logits, targets)), rel=1e-5)


def test_multi_task_loss_takes_sample_weights():
    from model.loss import build_loss
    from utils.config import LossConfig

    loss = build_loss(LossConfig(name="ce"), multi_task=True)
    logits, targets = torch.randn(4, 18).log_softmax(1), torch.tensor([0, 6, 12, 17])
    half = loss(logits, targets, torch.tensor([1.0, 1.0, 0.0, 0.0]))
    assert half == pytest.approx(float(loss(logits[:2], targets[:2])), rel=1e-5)


def focal_by_hand(logits, targets, gamma, weights=None, eps=0.0):
    """The focal loss of Lin et al. written out per sample and class: -sum_c t_c (1 - p_c)^gamma log p_c,
    with t the (smoothed) one-hot target, averaged with the true classes' weights."""
    total, norm = 0.0, 0.0
    for row, y in zip(logits.tolist(), targets.tolist()):
        p = torch.tensor(row, dtype=torch.float64).softmax(0).tolist()
        t = [(1 - eps) * (c == y) + eps / len(p) for c in range(len(p))]
        w = [1.0] * len(p) if weights is None else weights
        total += sum(-t[c] * (1 - p[c]) ** gamma * __import__("math").log(p[c]) * w[c] for c in range(len(p)))
        norm += sum(t[c] * w[c] for c in range(len(p)))
    return total / norm


@pytest.mark.parametrize("gamma, eps, weighted", [(2.0, 0.0, False), (1.5, 0.0, True), (2.0, 0.1, False),
                                                  (0.5, 0.2, True)])
def test_focal_loss_is_the_textbook_formula(gamma, eps, weighted):
    weights = torch.rand(18, generator=torch.Generator().manual_seed(1)).add(0.1).tolist() if weighted else None
    name = "focal_ls" if eps else "focal"
    value = loss(name, gamma=gamma, label_smoothing=eps, class_weights=weights)(LOGITS, TARGETS)
    assert float(value) == pytest.approx(focal_by_hand(LOGITS, TARGETS, gamma, weights, eps), rel=1e-5)


def test_smoothing_applies_only_to_the_losses_that_take_it():
    plain = float(loss("ce")(LOGITS, TARGETS))
    assert float(loss("focal", gamma=0.0, label_smoothing=0.3)(LOGITS, TARGETS)) == pytest.approx(plain, rel=1e-6)
    assert float(loss("ce", label_smoothing=0.3)(LOGITS, TARGETS)) == pytest.approx(
        float(F.cross_entropy(LOGITS, TARGETS, label_smoothing=0.3)), rel=1e-6)
    assert float(loss("label_smoothing", gamma=2.0, label_smoothing=0.1)(LOGITS, TARGETS)) == pytest.approx(
        float(F.cross_entropy(LOGITS, TARGETS, label_smoothing=0.1)), rel=1e-6)  # gamma is the focal losses'


def soft_f1_by_hand(probs, onehot, weights=None):
    """1 - the (weighted) mean over present classes of 2 TP / (2 TP + FP + FN) on probabilities."""
    scores, ws = [], []
    for c in range(probs.shape[1]):
        p, t = probs[:, c], onehot[:, c]
        if t.sum() == 0:
            continue
        tp, fp, fn = (p * t).sum(), (p * (1 - t)).sum(), ((1 - p) * t).sum()
        scores.append(float(2 * tp / (2 * tp + fp + fn)))
        ws.append(1.0 if weights is None else weights[c])
    return 1 - sum(s * w for s, w in zip(scores, ws)) / sum(ws)


@pytest.mark.parametrize("weighted", [False, True])
def test_soft_f1_is_the_macro_f1_of_probabilities_over_present_classes(weighted):
    targets = torch.tensor([0, 0, 3, 3, 3, 7, 9, 9])  # most classes absent
    logits = torch.randn(8, 18, generator=torch.Generator().manual_seed(2)) * 2
    weights = [0.5 + c / 10 for c in range(18)] if weighted else None
    value = build_loss(LossConfig(name="soft_f1", class_weights=weights))(logits, targets)
    expected = soft_f1_by_hand(logits.double().softmax(1), F.one_hot(targets, 18).double(), weights)
    assert float(value) == pytest.approx(expected, rel=1e-5)


def test_soft_f1_counts_a_weighted_sample_as_that_many_copies():
    """A pseudo-label weighs 0.5 by default: its weight multiplies each soft count once (it multiplied the
    true positives twice, and a weight of 2 made false positives negative)."""
    targets = torch.tensor([0, 1, 1, 2])
    logits = torch.randn(4, 18, generator=torch.Generator().manual_seed(3))
    soft_f1 = build_loss(LossConfig(name="soft_f1"))
    twice = soft_f1(torch.cat([logits, logits[:1]]), torch.cat([targets, targets[:1]]))
    assert float(soft_f1(logits, targets, torch.tensor([2.0, 1.0, 1.0, 1.0]))) == pytest.approx(float(twice), rel=1e-5)


def test_multi_task_loss_is_the_cross_entropy_of_each_tasks_marginal():
    from utils.labels import split_classes

    logits = torch.randn(6, 18, generator=torch.Generator().manual_seed(4))
    targets = torch.tensor([0, 4, 8, 11, 13, 17])
    task_weights = (1.0, 0.5, 2.0)
    value = build_loss(LossConfig(name="ce", task_weights=list(task_weights)), multi_task=True)(logits, targets)
    probs = logits.double().softmax(1)
    expected = 0.0
    tasks = zip(task_weights, split_classes(torch.arange(18)), split_classes(targets), (3, 2, 3))
    for weight, ids, task_targets, size in tasks:
        marginal = torch.stack([probs[:, ids == k].sum(1) for k in range(size)], dim=1)
        expected += weight * F.nll_loss(marginal.log(), task_targets)
    assert float(value) == pytest.approx(float(expected), rel=1e-5)


@pytest.mark.parametrize("emit_bins", [True, False])
def test_the_ordinal_loss_drops_a_zero_weighted_sample_from_every_task(emit_bins):
    """A pseudo-label's weight reaches the mask and gender losses and the age bins' (training outputs), and
    the per-task loss of validation outputs (18 columns)."""
    import numpy as np

    from model.age import age_bin, joint_targets
    from model.heads import MultiTaskHead

    torch.manual_seed(5)
    head = MultiTaskHead(8, age="ordinal")
    head.emit_bins = emit_bins
    features, classes = torch.randn(6, 8), torch.tensor([0, 4, 8, 11, 13, 17])
    bins = torch.as_tensor(age_bin(np.array([19, 25, 33, 47, 58, 60])))
    targets = joint_targets(classes, bins) if emit_bins else classes
    loss_fn = build_loss(LossConfig(task_weights=(1.0, 1.0, 1.0)), multi_task=True, ordinal_age=True)
    with torch.no_grad():
        out = head(features)
    kept = loss_fn(out, targets, torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]))
    assert float(kept) == pytest.approx(float(loss_fn(out[:3], targets[:3])), rel=1e-5)
    doubled = loss_fn(out, targets, torch.tensor([2.0, 1.0, 1.0, 1.0, 1.0, 1.0]))
    copies = loss_fn(torch.cat([out, out[:1]]), torch.cat([targets, targets[:1]]))
    assert float(doubled) == pytest.approx(float(copies), rel=1e-5)
