"""What an epoch and a run hand on, on the toy set: the epoch told to the loaders, the scheduler stepped on the
monitored metric, a timm schedule recomputed on resume, the batch mixer's targets, the weight average's score, file and
log line, and the grad scaler: undone before clipping, and across a checkpoint with the AMP name."""
from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch.nn import functional as F

from helpers import Toy, toy_trainer
from trainer.optim import build_scheduler, part_lrs
from trainer.trainer import EvalResult
from utils.config import EmaConfig, SchedulerConfig, SwaConfig
from utils.dist_info import DistInfo


def test_the_plateau_scheduler_is_stepped_with_the_epoch_count_and_the_monitored_metric():
    trainer = toy_trainer(scores=[0.5, 0.6, 0.4], epochs=3)
    cfg = SchedulerConfig(name="plateau", patience=0, decay_rate=0.5, warmup_epochs=1, warmup_lr=0.01, min_lr=0.0)
    trainer.scheduler = build_scheduler(cfg, trainer.optimizer, epochs=3, updates_per_epoch=5)
    rates = [trainer.run_epoch()["lr_head"] for _ in range(3)]
    # epoch 1 warms up from 0.01; the base rate after it; 0.4 < best 0.6 with patience 0 halves it
    assert rates == [0.01, 0.1, 0.1]
    assert part_lrs(trainer.optimizer)["lr_head"] == pytest.approx(0.05)


def test_a_resumed_timm_schedule_is_recomputed_at_the_update_count_for_this_runs_epochs():
    """`--resume RUN trainer.epochs=N`: the rate continues on an N-epoch schedule, not the saved one."""
    cfg = SchedulerConfig(name="cosine", warmup_epochs=0, min_lr=0.0)
    short = toy_trainer(epochs=2)
    short.scheduler = build_scheduler(cfg, short.optimizer, epochs=2, updates_per_epoch=5)
    short.run_epoch()
    state = copy.deepcopy(short.state_dict())
    longer = toy_trainer(epochs=4)
    longer.scheduler = build_scheduler(cfg, longer.optimizer, epochs=4, updates_per_epoch=5)
    longer.load_state_dict(state)
    fresh = toy_trainer(epochs=4)
    fresh.scheduler = build_scheduler(cfg, fresh.optimizer, epochs=4, updates_per_epoch=5)
    fresh.scheduler.step_update(num_updates=5)
    assert part_lrs(short.optimizer)["lr_head"] == pytest.approx(0.05)  # half-way down a 2-epoch cosine
    assert part_lrs(longer.optimizer)["lr_head"] == pytest.approx(part_lrs(fresh.optimizer)["lr_head"])
    assert part_lrs(longer.optimizer)["lr_head"] == pytest.approx(0.1 * (1 + 2 ** -0.5) / 2)  # a quarter of 4


def test_the_mixers_targets_reach_the_loss_and_the_true_labels_the_epochs_accuracy():
    seen = []

    def criterion(logits, targets):
        seen.append((logits.detach().argmax(1), targets.clone()))
        return F.cross_entropy(logits, targets)

    trainer = toy_trainer(epochs=1, criterion=criterion)
    soft = torch.full((2, 18), 1 / 18)
    trainer.mixer = lambda images, targets: (images, soft)
    metrics = trainer.train_epoch()
    assert len(seen) == 5 and all(torch.equal(targets, soft) for _, targets in seen)
    predicted = torch.cat([p for p, _ in seen])
    assert metrics["train_acc"] == pytest.approx((predicted == Toy().labels).float().mean().item())


def scripted_with_classes(trainer, scores):
    """Validation that reports `scores[epoch]` and one per-class F1 (which the log line leaves out)."""
    def scripted() -> tuple[dict, EvalResult]:
        metrics = {"val_f1": scores[trainer.epoch], "val_loss": 1.0, "val_f1_c00_wear_male_young": 0.25}
        return metrics, EvalResult(metrics, None, None, [])
    trainer.evaluate_monitored = scripted


def test_the_logger_and_the_callbacks_get_the_epochs_metrics_and_the_log_line_shows_them(caplog):
    logged, called = [], []

    class Logger:
        def log_epoch(self, epoch, metrics, summary):
            logged.append((epoch, dict(metrics)))

    trainer = toy_trainer(epochs=2)
    trainer.val_loader = trainer.train_loader
    scripted_with_classes(trainer, [0.5, 0.4])
    trainer.run_logger = Logger()
    trainer.callbacks = [lambda tr, epoch, metrics, judged, improved: called.append((tr, dict(metrics)))]
    with caplog.at_level(logging.INFO, logger="trainer"):
        first, second = trainer.run_epoch(), trainer.run_epoch()
    assert logged == [(1, first), (2, second)] and first["val_f1_c00_wear_male_young"] == 0.25
    assert [(tr is trainer, m) for tr, m in called] == [(True, first), (True, second)]
    lines = [m for m in caplog.messages if m.startswith("epoch ")]
    shown = [" ".join(f"{k}={v:.4g}" for k, v in m.items() if k != "val_f1_c00_wear_male_young")
             for m in (first, second)]
    assert lines == [f"epoch 1/2 {shown[0]} *best*", f"epoch 2/2 {shown[1]}"]
    assert shown[0].startswith("train_loss=") and " val_f1=0.5 val_loss=1 " in shown[0]


def swa_trainer(tmp_path, **cfg):
    trainer = toy_trainer(tmp_path, scores=[0.5, 0.6, 0.4], epochs=3, swa=SwaConfig(epochs=2, bn_update=False),
                          **cfg)
    return trainer


def test_the_weight_averages_score_is_of_the_averaged_weights_and_its_log_line_says_which(tmp_path, caplog):
    trainer = swa_trainer(tmp_path)
    with caplog.at_level(logging.INFO, logger="trainer"):
        trainer.fit()
    averaged = trainer.evaluate(trainer.val_loader, "swa_val", trainer.swa.module).metrics
    raw = trainer.evaluate(trainer.val_loader, "swa_val").metrics
    assert trainer.swa_metrics["swa_val_loss"] == averaged["swa_val_loss"] != raw["swa_val_loss"]
    f1 = trainer.swa_metrics["swa_val_f1"]
    assert caplog.messages[-1] == (f"swa: the weights of epochs 2-3 averaged; val macro-F1 {f1:.4f} "
                                   f"(best epoch 2: 0.6000)")


def test_the_weight_average_log_line_names_the_batchnorm_pass_and_a_missing_score(caplog):
    trainer = toy_trainer(epochs=4, swa=SwaConfig(epochs=3, bn_update=True))
    with caplog.at_level(logging.INFO, logger="trainer"):
        trainer.fit()
    assert trainer.swa_metrics == {}
    assert caplog.messages[-1] == "swa: the weights of epochs 2-4 averaged, BatchNorm recomputed; no validation set"


def test_the_weight_average_file_is_written_by_the_main_rank_only_and_holds_no_ema(tmp_path):
    other = toy_trainer(tmp_path / "other", epochs=1, swa=SwaConfig(epochs=1, bn_update=False))
    other.run_epoch()  # no validation: the average is not evaluated, so no process group is needed
    other.dist = DistInfo(rank=1, world_size=2)
    other.finish_swa()
    assert (tmp_path / "other" / "last.pth").is_file() and not (tmp_path / "other" / "swa.pth").exists()
    main = swa_trainer(tmp_path / "main", ema=EmaConfig(decay=0.5))
    main.fit()
    averaged = torch.load(tmp_path / "main" / "swa.pth", weights_only=True)
    assert averaged["ema"] is None  # inference must load the averaged weights, not the EMA's
    assert torch.load(tmp_path / "main" / "last.pth", weights_only=True)["ema"] is not None


def test_a_checkpoint_with_or_without_a_weight_average_loads_into_a_run_without_or_with_one():
    averaging = toy_trainer(epochs=3, swa=SwaConfig(epochs=3, bn_update=False))
    averaging.run_epoch()
    with_average = copy.deepcopy(averaging.state_dict())
    plain = toy_trainer(epochs=3)
    plain.load_state_dict(with_average)  # averaging turned off on resume: the average is not needed
    assert plain.swa is None and plain.epoch == 1
    plain.run_epoch()
    turned_on = toy_trainer(epochs=3, swa=SwaConfig(epochs=3, bn_update=False))
    turned_on.load_state_dict(copy.deepcopy(plain.state_dict()))  # averaging turned on: it starts empty
    assert turned_on.swa.count == 0 and turned_on.epoch == 2


def test_the_grad_scalers_state_comes_back_from_a_checkpoint_and_the_summary_names_the_amp_dtype():
    trainer = toy_trainer(epochs=2)
    trainer.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)  # fp16 on a GPU
    trainer.train_epoch()
    assert trainer.scaler.get_scale() == 1024.0 * 2 ** 5  # grown after each of the 5 finite steps
    restored = toy_trainer(epochs=2)
    restored.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=1)
    restored.load_state_dict(copy.deepcopy(trainer.state_dict()))
    assert restored.scaler.get_scale() == 1024.0 * 2 ** 5
    restored.amp_dtype = torch.float16
    assert restored.summary()["amp"] == "fp16"


def test_each_epoch_tells_the_training_and_validation_loaders_which_epoch_it_is():
    from torch.utils.data import DataLoader, Sampler

    class Told(Toy):
        def __init__(self, name: str, heard: list) -> None:
            super().__init__()
            self.name, self.heard = name, heard

        def set_epoch(self, epoch: int) -> None:
            self.heard.append((self.name, epoch))

    class Ordered(Sampler):
        def __init__(self, heard: list) -> None:
            self.heard = heard

        def __iter__(self):
            return iter(range(len(Toy())))

        def __len__(self) -> int:
            return len(Toy())

        def set_epoch(self, epoch: int) -> None:
            self.heard.append(("sampler", epoch))

    heard: list = []
    trainer = toy_trainer(epochs=2)
    trainer.train_loader = DataLoader(Told("train", heard), batch_size=2, sampler=Ordered(heard))
    trainer.val_loader = DataLoader(Told("val", heard), batch_size=2)
    trainer.fit()
    # sampler first (the shuffle order), then the dataset (augmentation seeds); validation after training
    assert heard == [("sampler", 0), ("train", 0), ("val", 0), ("sampler", 1), ("train", 1), ("val", 1)]


def test_with_a_grad_scaler_clipping_sees_the_true_gradients():
    """fp16's loss scaling must be undone before clipping: the clipped update is the same as without it."""
    scaled, plain = toy_trainer(grad_clip=0.01), toy_trainer(grad_clip=0.01)
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    images, targets, _ = next(iter(plain.train_loader))
    scaled.train_step(images, targets, 0)
    plain.train_step(images, targets, 0)
    for a, b in zip(scaled.model.parameters(), plain.model.parameters()):
        torch.testing.assert_close(a, b)
