"""A loss that becomes NaN/Inf: the run stops naming the epoch and step and keeps the last good
checkpoint, or skips up to `trainer.max_bad_steps` such steps."""
import pytest
import torch

from trainer.trainer import NonFiniteLoss


class NanAt(torch.nn.Module):
    """Cross-entropy that returns NaN on the listed calls."""

    def __init__(self, bad_calls):
        super().__init__()
        self.bad_calls, self.calls = set(bad_calls), 0

    def forward(self, logits, targets):
        loss = torch.nn.functional.cross_entropy(logits, targets)
        self.calls += 1
        return loss * float("nan") if self.calls - 1 in self.bad_calls else loss


def test_nan_loss_stops_with_epoch_and_step(make_trainer, tmp_path):
    trainer = make_trainer()
    trainer.criterion = NanAt({3})
    with pytest.raises(NonFiniteLoss, match=r"NaN/Inf at epoch 1 step 3"):
        trainer.fit()
    assert not (tmp_path / "last.pth").exists() and not (tmp_path / "best.pth").exists()


def test_nan_loss_keeps_last_good_checkpoint(make_trainer, tmp_path):
    trainer = make_trainer(**{"trainer.epochs": 2})
    trainer.run_epoch()
    good = torch.load(tmp_path / "last.pth", weights_only=True)["model"]
    trainer.criterion = NanAt({0})
    with pytest.raises(NonFiniteLoss, match="epoch 2 step 0"):
        trainer.run_epoch()
    kept = torch.load(tmp_path / "last.pth", weights_only=True)
    assert kept["epoch"] == 1
    assert all(torch.equal(v, good[k]) for k, v in kept["model"].items())


def test_max_bad_steps_skips_a_few(make_trainer, tmp_path):
    trainer = make_trainer(**{"trainer.max_bad_steps": 2})
    trainer.criterion = NanAt({1, 4})
    trainer.fit()
    assert trainer.bad_steps == 2
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    trainer2 = make_trainer(tmp_path / "b", **{"trainer.max_bad_steps": 1})
    trainer2.criterion = NanAt({1, 4})
    with pytest.raises(NonFiniteLoss, match="trainer.max_bad_steps=1"):
        trainer2.fit()
