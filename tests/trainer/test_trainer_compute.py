import torch


def test_channels_last_trains_and_matches_layout(make_trainer):
    trainer = make_trainer(**{"trainer.channels_last": "true"})
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    images, targets = trainer.to_device(torch.randn(2, 3, 64, 48), torch.tensor([0, 1]))
    assert images.is_contiguous(memory_format=torch.channels_last)
    metrics = trainer.run_epoch()
    assert torch.isfinite(torch.tensor(metrics["train_loss"])) and "val_f1" in metrics
