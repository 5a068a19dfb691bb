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
