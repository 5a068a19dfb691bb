"""One step and one epoch of the Trainer on a toy set: clipping, pseudo-label weights, a stop request,
non-finite losses and their messages, evaluation, and what an epoch reports to the logger and callbacks."""
from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from helpers import Toy, toy_trainer
from trainer.trainer import Interrupted, NonFiniteLoss
from utils.config import EmaConfig, MonitorSpec
from utils.dist_info import DistInfo


def flat(model: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


class Recording(nn.Module):
    """Cross-entropy that records the sample weights it is given."""

    def __init__(self) -> None:
        super().__init__()
        self.weights: list = []

    def forward(self, logits, targets, sample_weight=None):
        self.weights.append(None if sample_weight is None else sample_weight.tolist())
        return F.cross_entropy(logits, targets)


class NanAt(nn.Module):
    """Cross-entropy, NaN at the given calls (0-based)."""

    def __init__(self, calls: set[int]) -> None:
        super().__init__()
        self.bad, self.calls = calls, 0

    def forward(self, logits, targets):
        loss = F.cross_entropy(logits, targets)
        bad, self.calls = self.calls in self.bad, self.calls + 1
        return loss * float("nan") if bad else loss


class StopAfter:
    """A stop request that turns true after `n` looks (a signal arriving mid-epoch)."""

    def __init__(self, n: int) -> None:
        self.n, self.looks = n, 0

    def __bool__(self) -> bool:
        self.looks += 1
        return self.looks > self.n


def test_grad_clip_bounds_the_update_and_each_update_counts_and_clears_the_gradients():
    def first_update(**cfg):
        trainer = toy_trainer(**cfg)
        images, targets, _ = next(iter(trainer.train_loader))
        before = flat(trainer.model)
        trainer.train_step(images, targets, 0)
        return (flat(trainer.model) - before).norm().item(), trainer

    clipped, trainer = first_update(grad_clip=0.01)
    assert clipped == pytest.approx(0.1 * 0.01, rel=1e-4)  # SGD's first step: lr x the clipped gradient
    assert trainer.global_step == 1 and all(p.grad is None for p in trainer.model.parameters())
    free, _ = first_update()
    assert free > 3 * clipped


def test_pseudo_label_weights_reach_the_loss_batch_by_batch():
    criterion = Recording()
    trainer = toy_trainer(criterion=criterion)
    trainer.train_loader.dataset.sample_weights = torch.tensor([1.0] * 6 + [0.25, 0.25, 0.5, 0.5])
    trainer.train_epoch()
    assert criterion.weights == [[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [0.25, 0.25], [0.5, 0.5]]
    plain = Recording()
    toy_trainer(criterion=plain).train_epoch()
    assert plain.weights == [None] * 5


def test_a_stop_request_interrupts_before_the_next_batch():
    trainer = toy_trainer()
    trainer.stop_request = True
    with pytest.raises(Interrupted) as caught:
        trainer.train_epoch()
    assert str(caught.value) == "epoch 1 step 0" and trainer.global_step == 0
    trainer = toy_trainer()
    trainer.epoch, trainer.stop_request = 1, StopAfter(2)
    with pytest.raises(Interrupted) as caught:
        trainer.train_epoch()
    assert str(caught.value) == "epoch 2 step 2" and trainer.global_step == 2


def test_a_non_finite_loss_stops_with_where_it_happened_and_the_last_good_checkpoint(tmp_path):
    advice = "(lower optimizer.lr, or allow a few bad steps with trainer.max_bad_steps)"
    trainer = toy_trainer(criterion=NanAt({3}))
    with pytest.raises(NonFiniteLoss) as caught:
        trainer.train_epoch()
    assert str(caught.value) == ("loss became NaN/Inf at epoch 1 step 3; stopped, no checkpoint was written yet "
                                 f"{advice}")
    trainer = toy_trainer(tmp_path, criterion=NanAt({0}))
    (tmp_path / "last.pth").write_bytes(b"x")
    with pytest.raises(NonFiniteLoss) as caught:
        trainer.train_epoch()
    assert str(caught.value) == (f"loss became NaN/Inf at epoch 1 step 0; stopped, {tmp_path / 'last.pth'} is the last "
                                 f"good checkpoint {advice}")


def test_a_non_finite_loss_is_caught_within_postfix_every_steps_and_named_by_its_first_step():
    """The loss is looked at on the host only every POSTFIX_EVERY steps (no sync per step), so a NaN at
    step 21 of 50 stops the epoch at step 40, naming step 21, not the later bad step 23."""
    from torch.utils.data import ConcatDataset

    criterion = NanAt({21, 23})
    trainer = toy_trainer(criterion=criterion)
    trainer.train_loader = DataLoader(ConcatDataset([Toy()] * 5), batch_size=1)
    with pytest.raises(NonFiniteLoss, match=r"^loss became NaN/Inf at epoch 1 step 21; "):
        trainer.train_epoch()
    assert criterion.calls == 41  # steps 0-40: POSTFIX_EVERY is 20


def test_allowed_bad_steps_are_skipped_with_a_warning_until_one_too_many(caplog):
    trainer = toy_trainer(criterion=NanAt({1, 3}), max_bad_steps=1)
    with caplog.at_level(logging.WARNING, logger="trainer.trainer"), pytest.raises(NonFiniteLoss) as caught:
        trainer.train_epoch()
    assert caplog.messages == ["loss is nan at epoch 1 step 1: step skipped (1/1 bad steps allowed)"]
    assert str(caught.value) == ("loss is nan at epoch 1 step 3: more than trainer.max_bad_steps=1 bad steps; "
                                 "stopped, no checkpoint was written yet")
    assert trainer.bad_steps == 2 and trainer.global_step == 2  # steps 0 and 2 updated the weights
    assert torch.isfinite(flat(trainer.model)).all()
    lenient = toy_trainer(criterion=NanAt({1, 3}), max_bad_steps=2)
    metrics = lenient.train_epoch()
    assert lenient.bad_steps == 2 and lenient.global_step == 3 and np.isfinite(metrics["train_loss"])


def test_evaluate_scores_every_image_of_the_loader_with_the_given_weights():
    trainer = toy_trainer()
    toy = Toy()
    result = trainer.evaluate(trainer.train_loader, "holdout")
    with torch.no_grad():
        logits = trainer.model(toy.images)
    assert result.paths == toy.paths and result.y_true.tolist() == toy.labels.tolist()
    np.testing.assert_allclose(result.probs, logits.softmax(1).numpy(), rtol=1e-5, atol=1e-6)
    assert result.metrics["holdout_loss"] == pytest.approx(F.cross_entropy(logits, toy.labels).item(), rel=1e-5)
    assert result.metrics["holdout_acc"] == pytest.approx((logits.argmax(1) == toy.labels).float().mean().item())
    other = copy.deepcopy(trainer.model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(1.0)
        other_logits = other(toy.images)
    np.testing.assert_allclose(trainer.evaluate(trainer.train_loader, model=other).probs,
                               other_logits.softmax(1).numpy(), rtol=1e-5, atol=1e-6)
    assert "val_f1" in trainer.evaluate(trainer.train_loader).metrics  # the default prefix


@pytest.mark.parametrize("monitor,judged", [("max val_f1", "val_f1"), ("max ema_val_f1", "ema_val_f1")])
def test_the_monitor_judges_the_ema_weights_only_when_its_metric_says_so(monitor, judged):
    trainer = toy_trainer(ema=EmaConfig(decay=0.5), monitor=MonitorSpec.parse(monitor), epochs=1)
    trainer.val_loader = trainer.train_loader
    trainer.train_epoch()
    metrics, result = trainer.evaluate_monitored()
    assert {"val_f1", "ema_val_f1", "val_loss", "ema_val_loss"} <= metrics.keys()
    assert metrics["val_loss"] != metrics["ema_val_loss"]
    assert judged in result.metrics and result.metrics[judged] == metrics[judged]


def test_an_epoch_reports_rates_and_time_logs_before_its_callbacks_and_saves_last(tmp_path, monkeypatch, caplog):
    events = []

    class Logger:
        def log_epoch(self, epoch, metrics, summary):
            events.append(("log", epoch, summary["best_epoch"]))

    trainer = toy_trainer(tmp_path, scores=[0.5, 0.4], epochs=2)
    trainer.run_logger = Logger()
    trainer.callbacks = [lambda tr, epoch, metrics, judged, improved: events.append(
        ("callback", epoch, improved, judged.metrics["val_f1"], metrics["lr_head"]))]
    monkeypatch.setattr(trainer, "_save", lambda improved: events.append(("save", improved)))
    with caplog.at_level(logging.INFO, logger="trainer.trainer"):
        first = trainer.run_epoch()
        trainer.run_epoch()
    assert events == [("log", 1, 1), ("callback", 1, True, 0.5, 0.1), ("save", True),
                      ("log", 2, 1), ("callback", 2, False, 0.4, 0.1), ("save", False)]
    assert first["lr_head"] == 0.1 and 0 < first["epoch_time"] < 60 and first["val_f1"] == 0.5
    lines = [m for m in caplog.messages if m.startswith("epoch ")]
    assert lines[0].startswith("epoch 1/2 train_loss=") and lines[0].endswith(" *best*")
    assert lines[1].startswith("epoch 2/2 ") and not lines[1].endswith("*best*")


def test_without_validation_every_epoch_is_best_and_patience_is_off(tmp_path, caplog):
    trainer = toy_trainer(tmp_path, epochs=3, early_stop_patience=1)
    trainer.val_loader = DataLoader([], batch_size=2)  # an empty validation set counts as none
    judged = []
    trainer.callbacks = [lambda tr, epoch, metrics, result, improved: judged.append((result, improved))]
    with caplog.at_level(logging.INFO, logger="trainer.trainer"):
        summary = trainer.fit()
    assert judged == [(None, True)] * 3
    assert "no validation set: best.pth follows the last epoch; patience rules are off" in caplog.messages
    assert summary["epochs"] == 3 and summary["stopped_early"] is False  # summary.json: false, not null
    assert sum(m.endswith(" *best*") for m in caplog.messages) == 3
    assert (tmp_path / "best.pth").is_file() and (tmp_path / "last.pth").is_file()


def test_early_stopping_says_so_in_the_log(caplog):
    trainer = toy_trainer(scores=[0.5, 0.4, 0.4, 0.9], epochs=4, early_stop_patience=2)
    with caplog.at_level(logging.INFO, logger="trainer.trainer"):
        trainer.fit()
    assert "early stopping: val_f1 has not improved for 2 epochs" in caplog.messages and trainer.epoch == 3


def test_only_the_main_rank_with_a_run_directory_writes_checkpoints(tmp_path):
    trainer = toy_trainer(tmp_path / "other")
    trainer.dist = DistInfo(rank=1, world_size=2)
    trainer._save(improved=True)
    assert not (tmp_path / "other").exists()
    toy_trainer(None)._save(improved=True)  # no run directory: nothing to write, no error
    main = toy_trainer(tmp_path / "main")
    main._save(improved=False)
    assert sorted(p.name for p in (tmp_path / "main").iterdir()) == ["last.pth"]


def test_a_checkpoint_from_before_the_freeze_rename_still_loads():
    """Checkpoints before 0.4 call the freeze schedule "melting" and have no bad-step count."""
    trainer = toy_trainer(epochs=2)
    trainer.train_epoch()
    trainer.bad_steps = 3
    state = copy.deepcopy(trainer.state_dict())
    state["melting"] = state.pop("freeze")
    del state["bad_steps"]
    restored = toy_trainer(epochs=2)
    restored.load_state_dict(state)
    assert restored.bad_steps == 0 and restored.global_step == 5
    assert torch.equal(flat(restored.model), flat(trainer.model))


def test_the_ema_weights_and_the_counters_come_back_from_a_checkpoint_and_the_summary_says_where_it_stands():
    trainer = toy_trainer(ema=EmaConfig(decay=0.5), epochs=3, scores=[0.5, 0.7, 0.6])
    trainer.run_epoch()
    trainer.run_epoch()
    trainer.bad_steps, trainer.stopped_early = 2, True
    state = copy.deepcopy(trainer.state_dict())
    restored = toy_trainer(ema=EmaConfig(decay=0.5), epochs=3)
    restored.load_state_dict(state)
    ema, raw = restored.ema.module.state_dict(), restored.model.state_dict()
    assert all(torch.equal(ema[k], v) for k, v in trainer.ema.module.state_dict().items())
    assert any(not torch.equal(ema[k], raw[k]) for k in raw)  # the EMA is not the raw weights
    assert (restored.bad_steps, restored.stopped_early, restored.epoch, restored.global_step) == (2, True, 2, 10)
    assert restored.summary() == {"epochs": 2, "max_epochs": 3, "metric": "val_f1", "best": 0.7, "best_epoch": 2,
                                  "stopped_early": True, "device": "cpu", "amp": "fp32"}
    plain = toy_trainer(epochs=3)
    plain.load_state_dict(state)  # a checkpoint with EMA weights into a run without EMA: they are not needed
    assert plain.ema is None and torch.equal(flat(plain.model), flat(restored.model))


@pytest.mark.parametrize("channels_last", [True, False])
def test_channels_last_applies_to_the_weights_and_to_every_batch(channels_last):
    from model.classifier import MaskClassifier

    conv = MaskClassifier(nn.Sequential(nn.Conv2d(3, 4, 2), nn.Flatten(), nn.Linear(4, 6)), nn.Linear(6, 18))
    trainer = toy_trainer(model=conv, channels_last=channels_last)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    weight = trainer.model.backbone[0].weight
    assert weight.is_contiguous(memory_format=layout) and not weight.is_contiguous(
        memory_format=torch.contiguous_format if channels_last else torch.channels_last)
    images, targets, _ = next(iter(trainer.train_loader))
    moved, same = trainer.to_device(images, targets)
    assert moved.is_contiguous(memory_format=layout) and torch.equal(moved, images) and torch.equal(same, targets)
    if channels_last:
        assert not moved.is_contiguous()  # really reordered, not a layout both formats accept


def test_without_fp16_the_loss_is_not_scaled():
    """fp32 (and bf16) train without a grad scaler; a scaler left on would skip steps on an inf gradient."""
    trainer = toy_trainer()
    assert trainer.amp_dtype is None and not trainer.scaler.is_enabled()
    assert trainer.state_dict()["scaler"] == {}


def test_compile_wraps_the_model_the_step_calls_and_checkpoints_keep_the_plain_names():
    plain, compiled = toy_trainer(), toy_trainer(compile=True)
    assert plain.net is plain.model
    assert compiled.net is not compiled.model and compiled.net._orig_mod is compiled.model  # torch.compile's wrapper
    assert list(compiled.state_dict()["model"]) == list(plain.state_dict()["model"])  # no "_orig_mod." prefix
