import pytest
import timm
import torch
from torch import nn

from model.classifier import build_model
from model.heads import ShallowHead
from utils.config import ModelConfig


@pytest.mark.parametrize("backbone,size", [
    ("resnet18", 64),
    ("convnext_atto", 64),
    ("efficientnet_b0", 64),
    ("swin_tiny_patch4_window7_224", 224),
])
def test_shallow_head_on_backbone_families(backbone, size):
    model = build_model(ModelConfig(backbone=backbone, head="shallow", hidden_dim=64)).eval()
    assert isinstance(model.head, ShallowHead)
    out = model(torch.randn(2, 3, size, size))
    assert out.shape == (2, 18)
    first, last = model.head[0], model.head[-1]
    assert first.in_features == model.backbone(torch.randn(1, 3, size, size)).shape[1]
    assert first.out_features == 64 and last.out_features == 18


def test_shallow_head_layers_in_order():
    head = ShallowHead(32, 18, hidden_dim=16, activation="relu", dropout=0.2)
    kinds = [type(m) for m in head]
    assert kinds == [nn.Linear, nn.ReLU, nn.BatchNorm1d, nn.Dropout, nn.Linear]
    assert head[3].p == 0.2


def test_linear_head_is_single_layer():
    model = build_model(ModelConfig(backbone="resnet18", head="linear"))
    linears = [m for m in model.head.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 1 and linears[0].out_features == 18


def test_pretrained_path_loads_backbone_weights(tmp_path):
    source = timm.create_model("resnet18", num_classes=1000)  # with its own 1000-class classifier
    path = tmp_path / "resnet18_local.pth"
    torch.save(source.state_dict(), path)
    model = build_model(ModelConfig(backbone="resnet18", pretrained_path=path))
    assert torch.equal(model.backbone.conv1.weight, source.conv1.weight)
    assert torch.equal(model.backbone.layer4[1].conv2.weight, source.layer4[1].conv2.weight)
    assert model(torch.randn(1, 3, 64, 64)).shape == (1, 18)


def test_pretrained_path_missing_is_config_error(tmp_path):
    from utils.errors import ConfigError

    with pytest.raises(ConfigError, match="model.pretrained_path"):
        build_model(ModelConfig(backbone="resnet18", pretrained_path=tmp_path / "nope.pth"))


def test_offline_pretrained_is_one_line_at_once(monkeypatch):
    import time

    import pytest

    from model import classifier
    from utils.config import ModelConfig
    from utils.errors import ConfigError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(classifier, "weights_cached", lambda backbone: False)
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        classifier.build_model(ModelConfig(backbone="resnet18", pretrained=True))
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "model.pretrained_path" in message and "model.pretrained=false" in message and "\n" not in message
    monkeypatch.setattr(classifier, "weights_cached", lambda backbone: True)  # cached: timm loads it, no check
    assert classifier.hub_reachable() is False


def test_probe_refuses_an_input_the_backbone_cannot_take_and_changes_nothing():
    import pytest
    import torch

    from model.classifier import build_model
    from trainer.build import probe_model
    from utils.config import load_config
    from utils.errors import ConfigError

    swin = load_config(None, ["model.backbone=swin_tiny_patch4_window7_224", "augment.image_size=[64,48]"])
    with pytest.raises(ConfigError, match=r"augment.image_size \[64, 48\]: model.backbone swin_tiny_patch4_window7_224 "
                                          r"cannot take it \(Input height \(64\) doesn't match model \(224\)"):
        probe_model(build_model(swin.model), swin)
    ok = load_config(None, ["model.backbone=mobilenetv3_small_050", "augment.image_size=[64,48]"])
    model = build_model(ok.model)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rng = torch.get_rng_state()
    probe_model(model, ok)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # BN statistics too
    assert torch.equal(rng, torch.get_rng_state()) and all(p.grad is None for p in model.parameters())


def test_probe_refuses_a_batch_of_one_through_batchnorm():
    import pytest

    from model.classifier import build_model
    from trainer.build import probe_model
    from utils.config import load_config
    from utils.errors import ConfigError

    config = load_config(None, ["model.backbone=mobilenetv3_small_050", "augment.image_size=[64,48]",
                                "model.head=shallow", "data.batch_size=1"])  # the shallow head has BatchNorm1d
    with pytest.raises(ConfigError, match="data.batch_size=1: .* BatchNorm, which cannot train on one image"):
        probe_model(build_model(config.model), config)
