import torch
import torch.nn.functional as F

from model.classifier import build_model
from model.heads import MultiTaskHead
from model.loss import build_loss
from utils.config import LossConfig, ModelConfig
from utils.labels import decode, encode


def test_multi_head_composes_18_classes_from_three_tasks():
    torch.manual_seed(0)
    head = MultiTaskHead(16).eval()
    features = torch.randn(5, 16)
    logp = head(features)
    assert logp.shape == (5, 18)
    assert torch.allclose(logp.exp().sum(1), torch.ones(5), atol=1e-5)
    p_mask, p_gender, p_age = (h(features).softmax(1) for h in (head.mask, head.gender, head.age))
    c = encode(2, 1, 0)
    assert torch.allclose(logp[:, c].exp(), p_mask[:, 2] * p_gender[:, 1] * p_age[:, 0], atol=1e-6)
    pred = decode(int(logp[0].argmax()))
    assert pred == (int(p_mask[0].argmax()), int(p_gender[0].argmax()), int(p_age[0].argmax()))


def test_multi_task_loss_is_sum_of_task_losses():
    torch.manual_seed(0)
    head = MultiTaskHead(16)
    features, targets = torch.randn(8, 16), torch.randint(0, 18, (8,))
    tasks = [torch.tensor([decode(int(t))[k] for t in targets]) for k in range(3)]
    loss = build_loss(LossConfig(task_weights=(1.0, 2.0, 0.5)), multi_task=True)(head(features), targets)
    expected = sum(w * F.cross_entropy(h(features), t)
                   for w, h, t in zip((1.0, 2.0, 0.5), (head.mask, head.gender, head.age), tasks))
    assert torch.allclose(loss, expected, atol=1e-5)


def test_multi_head_model_trains(make_trainer):
    assert build_model(ModelConfig(backbone="resnet18", head="multi"))(torch.randn(2, 3, 64, 48)).shape == (2, 18)
    metrics = make_trainer(**{"model.head": "multi"}).run_epoch()
    assert {"val_f1", "val_f1_mask", "val_f1_gender", "val_f1_age"} <= set(metrics)
