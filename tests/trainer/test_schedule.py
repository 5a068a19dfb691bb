"""Learning-rate schedules: extending a run, plateau patience and its exact resume, logged rates."""
import pytest
import torch

import train
from helpers import ROOT, tiny_overrides
from utils.run import read_metrics


def run(demo_data, save_dir, **extra):
    return train.main(["--config", str(ROOT / "configs/demo.yaml"), *tiny_overrides(demo_data, save_dir, **extra)])


@pytest.mark.slow
def test_extending_a_run_follows_the_longer_schedule(demo_data, tmp_path):
    common = {"scheduler.name": "cosine", "scheduler.warmup_epochs": 1, "scheduler.min_lr": 1e-5}
    straight = run(demo_data, tmp_path / "a", **common, **{"trainer.epochs": 4})
    short = run(demo_data, tmp_path / "b", **common, **{"trainer.epochs": 2})
    extended = train.main(["--resume", short["run_dir"], "trainer.epochs=4"])
    assert extended["epochs"] == 4
    rows_a = read_metrics(f"{straight['run_dir']}/metrics.csv")
    rows_b = read_metrics(f"{extended['run_dir']}/metrics.csv")
    assert [r["epoch"] for r in rows_b] == [1, 2, 3, 4]
    for key in ("lr_head", "lr_backbone"):
        assert [r[key] for r in rows_a[2:]] == pytest.approx([r[key] for r in rows_b[2:]], rel=1e-6)
        assert rows_b[3][key] > 2 * 1e-5  # not stuck at min_lr


def plateau_setup(patience, warmup=0):
    from model.classifier import build_model
    from trainer.optim import build_optimizer, build_scheduler
    from utils.config import ModelConfig, OptimizerConfig, SchedulerConfig

    model = build_model(ModelConfig(backbone="resnet10t"))
    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), model)
    cfg = SchedulerConfig(name="plateau", decay_rate=0.5, patience=patience, warmup_epochs=warmup, warmup_lr=0.01)
    return opt, build_scheduler(cfg, opt, epochs=30, updates_per_epoch=4, monitor_mode="max")


def test_plateau_patience_is_the_configured_one():
    for patience in (1, 3):
        opt, sched = plateau_setup(patience)
        sched.step(1, 0.5)
        epochs_to_decay = next(e for e in range(2, 20) if (sched.step(e, 0.5), opt.param_groups[0]["lr"])[1] < 0.1)
        assert epochs_to_decay == 2 + patience


def test_plateau_warmup_then_full_rate():
    opt, sched = plateau_setup(2, warmup=2)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched.step(1, 0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.055)
    sched.step(2, 0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_plateau_state_resumes_exactly():
    opt, sched = plateau_setup(3)
    for epoch, value in enumerate([0.5, 0.4, 0.4], start=1):  # two bad epochs so far
        sched.step(epoch, value)
    state = sched.state_dict()
    opt2, sched2 = plateau_setup(3)
    sched2.load_state_dict(state)
    for s, o in ((sched, opt), (sched2, opt2)):
        s.step(4, 0.4)  # third bad epoch
        assert o.param_groups[0]["lr"] == pytest.approx(0.1)
        s.step(5, 0.4)  # fourth: decays in both
        assert o.param_groups[0]["lr"] == pytest.approx(0.05)


def test_plateau_run_resumes_from_checkpoint(demo_data, tmp_path):
    extra = {"scheduler.name": "plateau", "scheduler.patience": 1, "trainer.epochs": 2}
    done = run(demo_data, tmp_path, **extra)
    state = torch.load(f"{done['run_dir']}/last.pth", weights_only=True)
    assert "plateau" in state["scheduler"] and state["scheduler"]["plateau"]["patience"] == 1


def test_plateau_resumed_inside_its_warmup_ends_it_on_the_saved_rates():
    opt, sched = plateau_setup(2, warmup=3)
    opt.param_groups[0]["lr"] = 0.2  # the run's rate differs from what the new build starts from
    sched.base_lrs = [0.2]
    sched.step(1, 0.3)
    opt2, sched2 = plateau_setup(2, warmup=3)
    sched2.load_state_dict(sched.state_dict())
    sched2.step(2, 0.3)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.01 + (0.2 - 0.01) * 2 / 3)
    sched2.step(3, 0.3)
    assert opt2.param_groups[0]["lr"] == pytest.approx(0.2)


def test_plateau_never_decays_below_min_lr():
    from model.classifier import build_model
    from trainer.optim import build_optimizer, build_scheduler
    from utils.config import ModelConfig, OptimizerConfig, SchedulerConfig

    opt = build_optimizer(OptimizerConfig(name="sgd", lr=0.1), build_model(ModelConfig(backbone="resnet10t")))
    cfg = SchedulerConfig(name="plateau", decay_rate=0.1, patience=0, min_lr=0.004)
    sched = build_scheduler(cfg, opt, epochs=30, updates_per_epoch=4, monitor_mode="max")
    rates = []
    for epoch in range(1, 6):
        sched.step(epoch, 0.5)
        rates.append(opt.param_groups[0]["lr"])
    assert rates[:2] == pytest.approx([0.1, 0.01]) and rates[2:] == pytest.approx([0.004] * 3)


def test_a_one_epoch_plateau_warmup_ends_after_epoch_one():
    opt, sched = plateau_setup(2, warmup=1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.01)
    sched.step(1, 0.1)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)
