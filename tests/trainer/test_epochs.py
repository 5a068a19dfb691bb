"""The Trainer across epochs, with scripted validation scores: exactly when it stops early, when the
patience counter restarts, which batches make one optimizer update, what the EMA holds after its first
updates (against timm's own arithmetic), the order of the checkpoint writes, and resuming an optimizer."""
from __future__ import annotations

import copy
import logging
import re

import pytest
import torch
from timm.utils import ModelEmaV3
from torch import nn
from torch.utils.data import DataLoader

from helpers import BATCH, N_IMAGES, Toy, toy_trainer
from trainer.trainer import Trainer
from utils.config import EmaConfig, FreezeConfig


def test_early_stopping_stops_at_the_exact_epoch():
    # best at epoch 2 (0.6); epochs 3, 4 do not improve: patience 2 stops after epoch 4
    trainer = toy_trainer(scores=[0.5, 0.6, 0.6, 0.55, 0.9, 0.9], epochs=6, early_stop_patience=2)
    summary = trainer.fit()
    assert summary["epochs"] == 4 and summary["stopped_early"] and summary["best_epoch"] == 2
    assert trainer.monitor.best == 0.6 and trainer.monitor.bad_epochs == 2


def test_without_patience_it_trains_every_epoch():
    trainer = toy_trainer(scores=[0.5, 0.4, 0.3, 0.2], epochs=4)
    summary = trainer.fit()
    assert summary["epochs"] == 4 and not summary["stopped_early"] and summary["best_epoch"] == 1


def test_unfreezing_restarts_the_patience_count(caplog):
    # frozen until 2 epochs without improvement (epochs 2, 3); the unfreeze resets the count, so early
    # stopping (patience 3) needs 3 more bad epochs: 4, 5, 6 -> stops after epoch 6, not after epoch 4
    trainer = toy_trainer(scores=[0.5, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4], epochs=8, early_stop_patience=3,
                          freeze=FreezeConfig(patience=2))
    with caplog.at_level("INFO", logger="trainer.freeze"):
        summary = trainer.fit()
    assert "freeze: backbone unfrozen no improvement for 2 epoch(s)" in caplog.messages
    assert trainer.freeze.unfrozen_at == 3
    assert summary["epochs"] == 6 and summary["stopped_early"]


@pytest.mark.parametrize("accumulate, seen_steps, n_updates", [
    # 5 batches, accumulate 2: updates after batches 2 and 4, and the last (odd) batch is its own update
    (2, [(0, False, 2), (1, True, 2), (2, False, 2), (3, True, 2), (4, True, 1)], 3),
    # accumulate 3: updates after batches 3 and 5, the last two weighing a half each
    (3, [(0, False, 3), (1, False, 3), (2, True, 3), (3, False, 2), (4, True, 2)], 2),
])
def test_accumulation_groups_batches_into_updates_inside_the_epoch(monkeypatch, accumulate, seen_steps, n_updates):
    trainer = toy_trainer(epochs=1, accumulate_steps=accumulate)
    updates = []
    real = trainer.optimizer.step

    def counting_step(*args, **kwargs):
        updates.append(trainer.global_step)
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer.optimizer, "step", counting_step)
    seen = []
    original = trainer.train_step

    def spy(images, targets, step, update=True, sample_weight=None, group_size=None):
        seen.append((step, update, group_size))
        return original(images, targets, step, update=update, sample_weight=sample_weight, group_size=group_size)

    monkeypatch.setattr(trainer, "train_step", spy)
    trainer.train_epoch()
    assert seen == seen_steps
    assert updates == list(range(n_updates)) and trainer.global_step == n_updates


@pytest.mark.parametrize("accumulate", [2, 3])
def test_accumulated_epoch_equals_big_batches(accumulate):
    """Accumulated batches of 2 make the same update as one batch of 2 * accumulate (mean loss over all),
    and the epoch's last, short group weighs as a whole update, as in timm's train.py (not part of one)."""
    acc = toy_trainer(epochs=1, accumulate_steps=accumulate)
    big = toy_trainer(epochs=1)
    big.train_loader = DataLoader(Toy(), batch_size=accumulate * BATCH, shuffle=False)
    acc.train_epoch()
    big.train_epoch()
    # 10 images: accumulate 2 = updates on [0-3], [4-7], [8-9]; 3 = [0-5], [6-9]; the big batches alike
    for a, b in zip(acc.model.parameters(), big.model.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_ema_without_warmup_copies_the_first_update_then_moves_by_its_decay():
    """Written out by hand from timm's rule: update 1 copies the weights (its decay is 0), later updates
    keep `decay` of the average, so a decay left at timm's 0.9999 default would hardly move."""
    trainer = toy_trainer(epochs=1, ema=EmaConfig(decay=0.5, warmup=False))
    raw = []
    for step, (images, targets, _) in enumerate(list(trainer.train_loader)[:3]):
        trainer.train_step(images, targets, step)
        raw.append(copy.deepcopy(trainer.model.state_dict()))
    for key, value in trainer.ema.module.state_dict().items():
        expected = 0.5 * (0.5 * raw[0][key] + 0.5 * raw[1][key]) + 0.5 * raw[2][key]
        torch.testing.assert_close(value, expected)
        assert not torch.allclose(value, raw[2][key])


def test_ema_matches_timm_model_ema_v3_on_its_first_updates():
    """The Trainer's EMA after 3 updates equals timm's ModelEmaV3 stepped the same way (warmup on: the
    decay ramps up, so update order and step numbers matter)."""
    trainer = toy_trainer(epochs=1, ema=EmaConfig(decay=0.9, warmup=True))
    reference_model = copy.deepcopy(trainer.model)
    reference = ModelEmaV3(copy.deepcopy(trainer.model), decay=0.9, use_warmup=True)
    batches = [(img, lab) for img, lab, _ in trainer.train_loader][:3]
    opt = torch.optim.SGD(reference_model.parameters(), lr=0.1, momentum=0.9)
    for step, (images, targets) in enumerate(batches, start=1):
        trainer.train_step(images, targets, step - 1)
        opt.zero_grad()
        nn.CrossEntropyLoss()(reference_model(images), targets).backward()
        opt.step()
        reference.update(reference_model, step=step)
    for ours, theirs in zip(trainer.ema.module.state_dict().values(), reference.module.state_dict().values()):
        torch.testing.assert_close(ours, theirs)
    raw = trainer.model.state_dict()
    assert any(not torch.allclose(raw[k], v) for k, v in trainer.ema.module.state_dict().items())


def test_best_checkpoint_is_written_before_last(tmp_path, monkeypatch):
    from trainer import trainer as trainer_module

    written = []
    monkeypatch.setattr(trainer_module, "save_checkpoint", lambda state, path: written.append(path.name))
    trainer = toy_trainer(tmp_path, scores=[0.5, 0.4, 0.7], epochs=3)
    trainer.fit()
    assert written == ["best.pth", "last.pth", "last.pth", "best.pth", "last.pth"]


def test_optimizer_state_restores_into_a_fresh_optimizer():
    """Resuming restores momentum: one more step from the restored state equals the uninterrupted step."""
    straight = toy_trainer(epochs=2)
    straight.train_epoch()
    state = copy.deepcopy(straight.state_dict())
    state.update(epoch=1, monitor=straight.monitor.state_dict(), rng=state["rng"])
    resumed = toy_trainer(epochs=2)
    resumed.load_state_dict(state)
    assert resumed.optimizer.state_dict()["state"], "momentum buffers restored"
    images, targets, _ = next(iter(straight.train_loader))
    straight.train_step(images, targets, 0)
    resumed.train_step(images, targets, 0)
    for a, b in zip(straight.model.parameters(), resumed.model.parameters()):
        assert torch.equal(a, b)


def plateau_trainer() -> Trainer:
    from trainer.plateau import PlateauScheduler

    trainer = toy_trainer(epochs=4)
    trainer.scheduler = PlateauScheduler(trainer.optimizer, mode="max", patience=3, factor=0.5, min_lr=0.0,
                                         warmup_epochs=0, warmup_lr=0.0)
    return trainer


def test_a_plateau_schedule_resumes_its_patience_and_an_older_checkpoint_restarts_it(caplog):
    straight = plateau_trainer()
    straight.scheduler.step(1, 0.5)
    straight.scheduler.step(2, 0.4)  # one epoch without improvement
    state = copy.deepcopy(straight.state_dict())
    resumed = plateau_trainer()
    resumed.load_state_dict(state)
    assert resumed.scheduler.plateau.num_bad_epochs == 1 and resumed.scheduler.plateau.best == 0.5
    assert not caplog.messages
    older = plateau_trainer()
    older.load_state_dict({**state, "scheduler": None})  # saved without the plateau state
    assert older.scheduler.plateau.num_bad_epochs == 0
    assert caplog.messages == ["scheduler.name=plateau: this checkpoint holds no plateau state; patience restarts"]


@pytest.mark.parametrize("mode, scores, best_epoch", [
    ("max", [0.3, 0.5, 0.4], 2), ("min", [0.3, 0.5, 0.1], 3),
    ("max", [0.5, 0.5, 0.3], 1), ("min", [0.3, 0.3, 0.5], 1),  # a tie keeps the earlier epoch
])
def test_the_monitor_direction_picks_the_best_epoch(mode, scores, best_epoch):
    trainer = toy_trainer(scores=scores, epochs=3, monitor=f"{mode} val_f1")
    assert trainer.fit()["best_epoch"] == best_epoch


def test_without_a_terminal_progress_lines_are_logged(monkeypatch, caplog):
    from trainer import trainer as trainer_module

    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 0.0)
    caplog.set_level("INFO")
    trainer = toy_trainer(epochs=2)
    trainer.train_epoch()  # under pytest stderr is no terminal, so the progress bar is off
    lines = [r.getMessage() for r in caplog.records if "train: step" in r.getMessage()]
    assert [re.sub(r"loss \d+\.\d{4}$", "loss L", line) for line in lines] == [
        f"epoch 1/2 train: step {i}/5 ({20 * i}%), loss L" for i in range(1, 6)]
    caplog.clear()
    monkeypatch.setattr(trainer_module, "PROGRESS_SECONDS", 60.0)
    trainer.train_epoch()  # well under a minute: no line
    assert not [m for m in caplog.messages if "train: step" in m]


def test_weight_averaging_is_the_mean_of_the_last_epochs_weights(tmp_path):
    from utils.config import SwaConfig

    trainer = toy_trainer(tmp_path, scores=[0.5, 0.6, 0.4], epochs=3, swa=SwaConfig(epochs=2, bn_update=False))
    ends = []
    original = trainer.run_epoch

    def recording():
        metrics = original()
        ends.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})
        return metrics

    trainer.run_epoch = recording
    summary = trainer.fit()
    averaged = torch.load(tmp_path / "swa.pth", weights_only=True)
    for key, value in averaged["model"].items():
        torch.testing.assert_close(value, (ends[1][key] + ends[2][key]) / 2)  # epochs 2 and 3, not 1
    assert "optimizer" not in averaged and averaged["epoch"] == 3
    measured = trainer.evaluate(trainer.val_loader, "swa_val", trainer.swa.module).metrics["swa_val_f1"]
    assert summary["swa_val_f1"] == measured  # the averaged weights' own validation score
    assert trainer.swa.count == 2


def test_weight_averaging_recomputes_batchnorm_over_the_training_data(tmp_path):
    from utils.config import SwaConfig

    trainer = toy_trainer(tmp_path, epochs=2, swa=SwaConfig(epochs=1))
    trainer.model.backbone = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(12, affine=False), nn.Linear(12, 6))
    trainer.optimizer = torch.optim.SGD(trainer.model.parameters(), lr=0.1)
    trainer.swa = type(trainer.swa)(trainer.swa.cfg, trainer.model)
    trainer.net = trainer.model
    trainer.fit()
    bn = trainer.swa.module.backbone[1]
    inputs = Toy().images.flatten(1)
    torch.testing.assert_close(bn.running_mean, inputs.mean(0))  # one cumulative pass, not a moving average
    batch_vars = torch.stack([inputs[i:i + BATCH].var(0) for i in range(0, N_IMAGES, BATCH)])
    torch.testing.assert_close(bn.running_var, batch_vars.mean(0))  # torch's update_bn: mean of batch variances


def test_a_run_that_stops_before_the_averaged_epochs_writes_no_average(tmp_path, caplog):
    from utils.config import SwaConfig

    trainer = toy_trainer(tmp_path, scores=[0.5, 0.4, 0.4, 0.4], epochs=6, early_stop_patience=2,
                          swa=SwaConfig(epochs=2))
    with caplog.at_level(logging.WARNING, logger="trainer.trainer"):
        trainer.fit()
    assert trainer.epoch == 3 and not (tmp_path / "swa.pth").exists()
    assert caplog.messages == ["swa: the run stopped at epoch 3, before its first averaged epoch 5; no swa.pth"]


def test_the_weight_average_resumes_with_its_count(tmp_path):
    from utils.config import SwaConfig

    first = toy_trainer(tmp_path, epochs=3, swa=SwaConfig(epochs=3, bn_update=False))
    first.run_epoch()
    first.run_epoch()
    state = copy.deepcopy(first.state_dict())
    resumed = toy_trainer(tmp_path, epochs=3, swa=SwaConfig(epochs=3, bn_update=False))
    resumed.load_state_dict(state)
    assert resumed.swa.count == 2
    for a, b in zip(resumed.swa.module.state_dict().values(), first.swa.module.state_dict().values()):
        assert torch.equal(a, b)


def test_a_fixed_freeze_ends_after_its_epochs_and_says_so(caplog):
    trainer = toy_trainer(epochs=3, freeze=FreezeConfig(epochs=2))
    with caplog.at_level("INFO", logger="trainer.freeze"):
        trainer.fit()
    assert trainer.freeze.unfrozen_at == 2
    assert [m for m in caplog.messages if m.startswith("freeze:")] == ["freeze: backbone unfrozen after 2 epoch(s)"]
