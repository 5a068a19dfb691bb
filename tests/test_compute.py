import torch

from conftest import ROOT, tiny_overrides
from data_loader.transforms import resolve_augment
from trainer.build import build_trainer
from utils.config import load_config


def test_channels_last_trains_and_matches_layout(demo_data, tmp_path):
    cfg = resolve_augment(load_config(ROOT / "configs/demo.yaml",
                                      tiny_overrides(demo_data, tmp_path, **{"trainer.channels_last": "true"})))
    trainer = build_trainer(cfg, tmp_path)
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images, targets = trainer._to_device(torch.randn(2, 3, 64, 48), torch.tensor([0, 1]))
    assert images.is_contiguous(memory_format=torch.channels_last)
    metrics = trainer.run_epoch()
    assert torch.isfinite(torch.tensor(metrics["train_loss"])) and "val_f1" in metrics
